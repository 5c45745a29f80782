//! The HTTP endpoint: `GET /v2/raise/{code}` answers in Clarifai's REST shape.

use std::time::Duration;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::Router;

use super::service::{bad_request, Tester};
use crate::{pb, rest, Code, StatusCode};

/// The router serving `GET /v2/raise/{code}`, counting calls in `tester`'s counters; any other
/// path answers `CONN_DOES_NOT_EXIST` (HTTP 404).
pub(crate) fn router(tester: Tester) -> Router {
    Router::new()
        .route("/v2/raise/{code}", get(raise))
        .fallback(no_route)
        .with_state(tester)
}

type Answer = http::Response<String>;

async fn raise(
    State(tester): State<Tester>,
    code: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Answer {
    let decision = read(code, query).and_then(|(code, params)| {
        let status = pb::Status {
            code: code.number(),
            ..Default::default()
        };
        let decision = tester.decide(status, params.fail_times, &params.key)?;
        Ok((decision, params.retry_after_ms))
    });
    let (decision, retry_after_ms) = match decision {
        Ok(decided) => decided,
        Err(details) => return rest::response(&bad_request(details)),
    };
    let mut response = rest::response(&decision.status);
    if decision.failure && retry_after_ms > 0 {
        let delay = Duration::from_millis(u64::from(retry_after_ms));
        rest::set_retry_after(&mut response, delay);
    }
    response
}

/// The code and parameters of a request, or what is wrong with it.
fn read(
    code: Result<Path<String>, PathRejection>,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<(Code, Params), String> {
    let Path(code) = code.map_err(|e| format!("bad path: {e}"))?;
    let code: Code = code.parse().map_err(|e| format!("{e}"))?;
    let Query(pairs) = query.map_err(|e| format!("bad query: {e}"))?;
    Ok((code, Params::parse(&pairs)?))
}

async fn no_route() -> Answer {
    let code = StatusCode::ConnDoesNotExist;
    rest::response(&pb::Status {
        code: code as i32,
        description: code.description().to_owned(),
        details: "no such route; the tester serves GET /v2/raise/{code}".to_owned(),
        ..Default::default()
    })
}

/// The query parameters of `/v2/raise/{code}`.
#[derive(Debug, Default)]
struct Params {
    fail_times: u32,
    key: String,
    retry_after_ms: u32,
}

impl Params {
    /// Reads the known parameters; rejects unknown and repeated ones, and non-numbers.
    fn parse(pairs: &[(String, String)]) -> Result<Params, String> {
        let mut params = Params::default();
        let mut seen = [false; 3];
        for (name, value) in pairs {
            let index = match name.as_str() {
                "fail_times" => 0,
                "key" => 1,
                "retry_after_ms" => 2,
                // The name is the peer's: keep the message short whatever it sent.
                other => return Err(format!("unknown query parameter `{}`", clip(other))),
            };
            if std::mem::replace(&mut seen[index], true) {
                return Err(format!("query parameter `{name}` is repeated"));
            }
            let number = || {
                value.parse::<u32>().map_err(|_| {
                    format!(
                        "query parameter `{name}` must be a number in 0..={}, not `{}`",
                        u32::MAX,
                        clip(value)
                    )
                })
            };
            match index {
                0 => params.fail_times = number()?,
                1 => params.key.clone_from(value),
                _ => params.retry_after_ms = number()?,
            }
        }
        Ok(params)
    }
}

/// The first 64 bytes of `text` at most, cut at a character boundary.
fn clip(text: &str) -> &str {
    let mut end = text.len().min(64);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn params_read_known_names() {
        let params = Params::parse(&pairs(&[
            ("fail_times", "2"),
            ("key", "k"),
            ("retry_after_ms", "1500"),
        ]))
        .unwrap();
        assert_eq!(
            (
                params.fail_times,
                params.key.as_str(),
                params.retry_after_ms
            ),
            (2, "k", 1500)
        );
    }

    #[test]
    fn params_reject_unknown_repeated_and_non_numbers() {
        let err = Params::parse(&pairs(&[("colour", "red")])).unwrap_err();
        assert_eq!(err, "unknown query parameter `colour`");
        let err = Params::parse(&pairs(&[("key", "a"), ("key", "b")])).unwrap_err();
        assert_eq!(err, "query parameter `key` is repeated");
        let err = Params::parse(&pairs(&[("fail_times", "-1")])).unwrap_err();
        assert!(err.starts_with("query parameter `fail_times` must be a number"));
    }

    #[test]
    fn clip_cuts_at_a_char_boundary() {
        let text = "é".repeat(40);
        assert_eq!(clip(&text).len(), 64);
        assert_eq!(clip("short"), "short");
    }
}
