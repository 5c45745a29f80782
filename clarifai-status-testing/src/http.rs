//! The HTTP side: `GET /v2/raise/{code}`, `GET /v2/_tester/calls`, and the REST stand-in for
//! every other path under `/v2/`, all in Clarifai's REST shape.

use std::time::Duration;

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::routing::any;
use axum::Router;

use super::scenario::clip;
use super::service::{bad_request, scenario_text, Tester};
use clarifai_status::{pb, rest, Code, StatusCode};

/// The router: `GET /v2/raise/{code}` and `GET /v2/_tester/calls`, the REST stand-in for any
/// other method and path under `/v2/` (but `/v2/_tester/`), counting calls in `tester`'s
/// counters; any other path answers `CONN_DOES_NOT_EXIST` (HTTP 404).
pub(crate) fn router(tester: Tester) -> Router {
    Router::new()
        .route("/v2/raise/{code}", any(raise))
        .route("/v2/_tester/calls", any(calls))
        .fallback(fallback)
        .with_state(tester)
}

/// `GET /v2/_tester/calls`: every call counter, as JSON.
async fn calls(State(tester): State<Tester>, method: http::Method) -> http::Response<String> {
    if let Some(refused) = refuse_method(&method) {
        return refused;
    }
    let calls: Vec<serde_json::Value> = tester
        .calls()
        .into_iter()
        .map(|c| serde_json::json!({"key": c.key, "method": c.method, "count": c.count}))
        .collect();
    let mut response = http::Response::new(serde_json::json!({ "calls": calls }).to_string());
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Any route not matched above: the REST stand-in under `/v2/`, else `CONN_DOES_NOT_EXIST`.
async fn fallback(
    State(tester): State<Tester>,
    method: http::Method,
    uri: http::Uri,
    headers: http::HeaderMap,
) -> Answer {
    let path = uri.path();
    if !path.starts_with("/v2/") || path.starts_with("/v2/_tester/") {
        return no_route().await;
    }
    let label = format!("{method} {path}");
    let answer = tester.stand_in(scenario_text(&headers), &label, None);
    if !answer.delay.is_zero() {
        tokio::time::sleep(answer.delay).await;
    }
    let mut response = rest::response(&answer.status);
    if let Some(delay) = answer.retry_after {
        if Code::new(answer.status.code).outcome() == clarifai_status::Outcome::Failure {
            rest::set_retry_after(&mut response, delay);
        }
    }
    response
}

type Answer = http::Response<String>;

/// `CONN_METHOD_NOT_ALLOWED` (11103) for a method other than `GET` (or `HEAD`) on the tester's own
/// paths, in the REST shape like every other answer; `None` for `GET` and `HEAD`.
fn refuse_method(method: &http::Method) -> Option<Answer> {
    if method == http::Method::GET || method == http::Method::HEAD {
        return None;
    }
    let code = StatusCode::ConnMethodNotAllowed;
    Some(rest::response(&pb::Status {
        code: code as i32,
        description: code.description().to_owned(),
        details: format!(
            "`{}` is not allowed here: /v2/raise/{{code}} and /v2/_tester/calls answer GET",
            clip(method.as_str())
        ),
        ..Default::default()
    }))
}

async fn raise(
    State(tester): State<Tester>,
    method: http::Method,
    code: Result<Path<String>, PathRejection>,
    uri: http::Uri,
) -> Answer {
    if let Some(refused) = refuse_method(&method) {
        return refused;
    }
    let decision = read(code, uri.query()).and_then(|(code, params)| {
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
    query: Option<&str>,
) -> Result<(Code, Params), String> {
    let Path(code) = code.map_err(|e| format!("bad path: {e}"))?;
    // Names in any case, as `clarifai-status explain` and the scenarios' `code` take them.
    let code: Code = code.to_ascii_uppercase().parse().map_err(|_| {
        format!(
            "unknown status code `{}` (a number, or a name in any case)",
            clip(&code)
        )
    })?;
    Ok((code, Params::parse(&query_pairs(query.unwrap_or(""))?)?))
}

/// The `name=value` pairs of a query, percent-decoded (`+` is a space), as UTF-8. Invalid UTF-8
/// is rejected, not replaced: `zz%FF` and `zz%FE` must not both read as `zz` and the replacement
/// character, and share a counter.
fn query_pairs(query: &str) -> Result<Vec<(String, String)>, String> {
    let decode = |part: &str| {
        let spaced = part.replace('+', " ");
        percent_encoding::percent_decode_str(&spaced)
            .decode_utf8()
            .map(|text| text.into_owned())
            .map_err(|_| format!("query part `{}` is not UTF-8 once decoded", clip(part)))
    };
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((decode(name)?, decode(value)?))
        })
        .collect()
}

async fn no_route() -> Answer {
    let code = StatusCode::ConnDoesNotExist;
    rest::response(&pb::Status {
        code: code as i32,
        description: code.description().to_owned(),
        details: "no such route; the tester serves /v2/... (GET /v2/raise/{code}, GET /v2/_tester/calls, and any other path as Clarifai's REST API)".to_owned(),
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
    fn query_pairs_decode_strictly() {
        assert_eq!(
            query_pairs("key=a+b%21&fail_times=2&&flag").unwrap(),
            pairs(&[("key", "a b!"), ("fail_times", "2"), ("flag", "")])
        );
        assert_eq!(
            query_pairs("key=zz%EF%BF%BD").unwrap(),
            pairs(&[("key", "zz\u{FFFD}")])
        );
        for bad in ["key=zz%FF", "key=zz%FE", "k%C3=v", "key=%ED%A0%80"] {
            let err = query_pairs(bad).unwrap_err();
            assert!(err.ends_with("is not UTF-8 once decoded"), "{bad}: {err}");
        }
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
}
