//! What leaves a server layer: the rules every layer of this module applies to a status before
//! it goes out (see the module docs, [What leaves a layer](super#what-leaves-a-layer)).

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};

use crate::grpc::{self, details};
use crate::{pb, Code};

/// The most bytes of status headers a layer of this module lets out with an error: the
/// Trailers-Only headers or the trailers that carry it, counted as HTTP/2 counts a header list
/// (name + value + 32 per entry).
///
/// Default clients drop a header list past 8 KiB and lose the code with it (grpcio and
/// grpc-java; see the wire contract's [size rule](crate::grpc#size-the-code-always-arrives)), and
/// tonic's client fails the call past its own limit: so a handler's 1 MiB message with details
/// of its own, or 1 MiB of its metadata beside an error, would replace the true code by
/// `RESOURCE_EXHAUSTED` on the client. 7 KiB leaves room for `:status` and the response headers a
/// proxy adds; the errors this crate builds take at most
/// [`MAX_ERROR_METADATA_BYTES`](crate::grpc::MAX_ERROR_METADATA_BYTES) of it.
///
/// # Examples
///
/// ```
/// assert!(clarifai_status::server::MAX_ERROR_HEADER_BYTES < 8 * 1024);
/// ```
pub const MAX_ERROR_HEADER_BYTES: usize = 7 * 1024;

/// The longest `content-type` let out with an error as it is.
const MAX_CONTENT_TYPE_LEN: usize = 128;

/// The longest `grpc-retry-pushback-ms` let out as it is (`-2147483648`).
const MAX_PUSHBACK_LEN: usize = 11;

/// The entries that say the status: never dropped to fit (each is capped instead).
const STATUS_NAMES: [HeaderName; 6] = [
    grpc::GRPC_STATUS_NAME,
    grpc::GRPC_MESSAGE_NAME,
    grpc::DETAILS_NAME,
    grpc::CODE_NAME,
    grpc::PUSHBACK_NAME,
    http::header::CONTENT_TYPE,
];

/// Makes status headers from a handler or an upstream safe for every client: see
/// [`grpc::sanitize`].
pub(crate) fn sanitize(headers: &mut HeaderMap) {
    grpc::sanitize(headers);
}

/// What a layer does to a status it passes on without stamping it (`InBodyToErrorLayer`'s errors, and
/// `ErrorToInBodyLayer`'s for services it is not set for): [`sanitize`], and on an error, a
/// `clarifai-status-code` or Clarifai details claiming a success or an in-progress code are
/// removed, so the error carries no code rather than a false one. Costs one lookup when there
/// is no status.
pub(crate) fn repair(headers: &mut HeaderMap) {
    if !headers.contains_key(&grpc::GRPC_STATUS_NAME) {
        return;
    }
    sanitize(headers);
    if grpc::read_grpc_code(headers) == Some(tonic::Code::Ok) {
        return;
    }
    let claims = |code: Option<Code>| code.is_some_and(|c| !c.is_failure());
    if claims(grpc::parse_code_header(
        headers.get(&grpc::CODE_NAME).map(HeaderValue::as_bytes),
    )) {
        headers.remove(&grpc::CODE_NAME);
    }
    let details = headers
        .get(&grpc::DETAILS_NAME)
        .and_then(|v| grpc::decode_base64(v.as_bytes()));
    if claims(details.and_then(|bytes| details::decode(&bytes).code)) {
        headers.remove(&grpc::DETAILS_NAME);
    }
}

/// The size of a header list as HTTP/2's `SETTINGS_MAX_HEADER_LIST_SIZE` counts it.
pub(crate) fn list_size(headers: &HeaderMap) -> usize {
    headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 32)
        .sum()
}

/// The decoded `grpc-message`.
fn message_of(headers: &HeaderMap) -> String {
    headers
        .get(&grpc::GRPC_MESSAGE_NAME)
        .map(|v| {
            percent_encoding::percent_decode(v.as_bytes())
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_default()
}

/// Makes a (sanitized) gRPC error say `code` and fit [`MAX_ERROR_HEADER_BYTES`]:
/// 1. `clarifai-status-code` is `code`; a `content-type` over 128 bytes becomes
///    `application/grpc`, a `grpc-retry-pushback-ms` over 11 bytes is written again as what it
///    says;
/// 2. `grpc-message` is cut to [`MAX_MESSAGE_BYTES`](grpc::MAX_MESSAGE_BYTES) as encoded;
/// 3. the details are the crate's own (the code, the message, and the retry delay and Clarifai
///    `ErrorInfo` metadata of the old ones, cut) when there were none, when they are Clarifai's
///    and claim another meaning than a failure or hold the message before its cut, or when they
///    alone pass [`MAX_ERROR_METADATA_BYTES`](grpc::MAX_ERROR_METADATA_BYTES); details of the
///    service's own that say no Clarifai code are kept otherwise;
/// 4. while the list is over the limit, the largest entries that are not the status's are
///    dropped (the handler's own metadata), then the details lose all but code, message and
///    retry delay.
pub(crate) fn stamp_error(headers: &mut HeaderMap, grpc_code: tonic::Code, code: Code) {
    if grpc::parse_code_header(headers.get(&grpc::CODE_NAME).map(HeaderValue::as_bytes))
        != Some(code)
    {
        headers.insert(grpc::CODE_NAME, HeaderValue::from(code.number()));
    }
    // A gRPC content type is short; a longer one from an upstream is written as gRPC's own.
    if headers
        .get(http::header::CONTENT_TYPE)
        .is_some_and(|v| v.len() > MAX_CONTENT_TYPE_LEN)
    {
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
    }
    // A pushback is a short decimal (gRFC A6): anything longer is written again as what it says.
    if headers
        .get(&grpc::PUSHBACK_NAME)
        .is_some_and(|v| v.len() > MAX_PUSHBACK_LEN)
    {
        let value = match grpc::read_pushback(headers) {
            Some(grpc::Pushback::After(delay)) => {
                HeaderValue::from(i32::try_from(delay.as_millis()).unwrap_or(i32::MAX))
            }
            _ => HeaderValue::from_static("-1"),
        };
        headers.insert(grpc::PUSHBACK_NAME, value);
    }
    let mut message = message_of(headers);
    let mut cut = false;
    if let Cow::Owned(capped) = grpc::cap_message(&message) {
        set_message(headers, &capped);
        message = capped;
        cut = true;
    }
    let details = headers
        .get(&grpc::DETAILS_NAME)
        .map(|v| (v.len(), grpc::decode_base64(v.as_bytes())));
    let (rebuild, decoded) = match details {
        None => (true, details::Decoded::default()),
        Some((encoded_len, bytes)) => {
            let decoded = details::decode(bytes.as_deref().unwrap_or_default());
            let rebuild = match decoded.code {
                // Clarifai's details claiming a success, or holding the message before its cut.
                Some(carried) => !carried.is_failure() || cut,
                None => false,
            };
            (
                rebuild || encoded_len > grpc::MAX_ERROR_METADATA_BYTES,
                decoded,
            )
        }
    };
    if rebuild {
        set_details(headers, grpc_code, &message, code, &decoded);
    }
    if list_size(headers) > MAX_ERROR_HEADER_BYTES {
        drop_largest_other(headers);
    }
    if list_size(headers) > MAX_ERROR_HEADER_BYTES {
        // The details' own metadata is what is left to shed.
        set_details(
            headers,
            grpc_code,
            &message,
            code,
            &details::Decoded::default(),
        );
    }
}

/// Drops the largest entries that are not the status's until `headers` fit
/// [`MAX_ERROR_HEADER_BYTES`] (or only the status's are left).
pub(crate) fn drop_largest_other(headers: &mut HeaderMap) {
    let mut others: Vec<(HeaderName, usize)> = Vec::new();
    for (name, value) in headers.iter() {
        if STATUS_NAMES.contains(name) {
            continue;
        }
        let size = name.as_str().len() + value.len() + 32;
        match others.iter_mut().find(|(n, _)| n == name) {
            Some((_, total)) => *total += size,
            None => others.push((name.clone(), size)),
        }
    }
    others.sort_by_key(|(_, size)| std::cmp::Reverse(*size));
    let mut size = list_size(headers);
    for (name, bytes) in others {
        if size <= MAX_ERROR_HEADER_BYTES {
            break;
        }
        headers.remove(&name);
        size -= bytes;
    }
}

fn set_message(headers: &mut HeaderMap, message: &str) {
    let encoded = percent_encoding::utf8_percent_encode(message, grpc::MESSAGE_SET).to_string();
    match HeaderValue::from_str(&encoded) {
        Ok(value) => {
            headers.insert(grpc::GRPC_MESSAGE_NAME, value);
        }
        Err(_) => {
            headers.remove(&grpc::GRPC_MESSAGE_NAME);
        }
    }
}

/// Makes the details the crate's own: `code`, `message`, and from the old ones (`kept`) the retry
/// delay and the Clarifai `ErrorInfo` metadata, each value cut to
/// [`MAX_FIELD_BYTES`](grpc::MAX_FIELD_BYTES).
fn set_details(
    headers: &mut HeaderMap,
    grpc_code: tonic::Code,
    message: &str,
    code: Code,
    kept: &details::Decoded,
) {
    let values: Vec<(&str, Cow<'_, str>)> = kept
        .metadata
        .iter()
        .filter(|(key, _)| key.as_str() != "code")
        .map(|(key, value)| {
            let value = grpc::cap_text(value, grpc::MAX_FIELD_BYTES, char::len_utf8);
            (key.as_str(), value)
        })
        .collect();
    let metadata: Vec<(&str, &[u8])> = values
        .iter()
        .map(|(key, value)| (*key, value.as_bytes()))
        .collect();
    let bytes = details::encode(grpc_code as i32, message, code, &metadata, kept.retry_after);
    let encoded = base64::Engine::encode(&base64::engine::general_purpose::STANDARD_NO_PAD, bytes);
    match HeaderValue::from_str(&encoded) {
        Ok(value) => {
            headers.insert(grpc::DETAILS_NAME, value);
        }
        Err(_) => {
            headers.remove(&grpc::DETAILS_NAME);
        }
    }
}

/// Cuts the texts of an in-body status as the wire contract cuts an error's: the description to
/// [`MAX_MESSAGE_BYTES`](grpc::MAX_MESSAGE_BYTES), `details`, `developer_notes` and `req_id` to
/// [`MAX_FIELD_BYTES`](grpc::MAX_FIELD_BYTES), each on a character boundary with a note of the
/// original length.
pub(crate) fn cap_status(status: &mut pb::Status) {
    fn cap(text: &mut String, max: usize) {
        if let Cow::Owned(capped) = grpc::cap_text(text, max, char::len_utf8) {
            *text = capped;
        }
    }
    cap(&mut status.description, grpc::MAX_MESSAGE_BYTES);
    cap(&mut status.details, grpc::MAX_FIELD_BYTES);
    cap(&mut status.developer_notes, grpc::MAX_FIELD_BYTES);
    cap(&mut status.req_id, grpc::MAX_FIELD_BYTES);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn handler_metadata_is_dropped_largest_first_to_fit() {
        let big = "b".repeat(1 << 20);
        let small = "s".repeat(100);
        let mut headers = error(&[
            ("grpc-status", "14"),
            ("x-big", &big),
            ("x-small", &small),
            ("content-type", "application/grpc"),
        ]);
        stamp_error(&mut headers, tonic::Code::Unavailable, Code::new(40031));
        assert!(list_size(&headers) <= MAX_ERROR_HEADER_BYTES);
        assert!(headers.get("x-big").is_none());
        assert_eq!(headers["x-small"], small.as_str());
        assert_eq!(headers["clarifai-status-code"], "40031");
        assert_eq!(grpc::read_code(&headers), Some(Code::new(40031)));
    }

    #[test]
    fn huge_details_of_the_handlers_own_become_the_crates() {
        let status = tonic::Status::with_details(
            tonic::Code::Unavailable,
            "m".repeat(1 << 20),
            tonic::Status::from(crate::StatusCode::RpcServerUnavailable)
                .details()
                .to_vec()
                .into(),
        );
        let mut headers = status.into_http::<()>().into_parts().0.headers;
        stamp_error(&mut headers, tonic::Code::Unavailable, Code::new(40031));
        assert!(list_size(&headers) <= MAX_ERROR_HEADER_BYTES);
        let back = tonic::Status::from_header_map(&headers).unwrap();
        assert!(back.message().len() <= grpc::MAX_MESSAGE_BYTES);
        use crate::grpc::ClarifaiStatusExt as _;
        assert_eq!(back.clarifai_code(), Code::new(40031));
    }

    #[test]
    fn repair_removes_false_claims_and_bytes_no_reader_can_use() {
        let success = tonic::Status::from(crate::StatusCode::Success);
        let mut headers = error(&[
            ("grpc-status", "14"),
            ("clarifai-status-code", "10000"),
            ("grpc-status-details-bin", "!!!"),
        ]);
        repair(&mut headers);
        assert_eq!(headers.get("clarifai-status-code"), None);
        assert_eq!(headers.get("grpc-status-details-bin"), None);
        assert!(tonic::Status::from_header_map(&headers).is_some());
        // Clarifai details claiming SUCCESS on an error go too; on OK they stay.
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD_NO_PAD,
            success.details(),
        );
        let mut headers = error(&[("grpc-status", "14"), ("grpc-status-details-bin", &encoded)]);
        repair(&mut headers);
        assert_eq!(headers.get("grpc-status-details-bin"), None);
        let mut headers = error(&[("grpc-status", "0"), ("grpc-status-details-bin", &encoded)]);
        repair(&mut headers);
        assert!(headers.get("grpc-status-details-bin").is_some());
    }

    #[test]
    fn in_body_texts_are_cut() {
        let mut status = pb::Status {
            code: 40031,
            description: "d".repeat(5 << 20),
            details: "é".repeat(10_000),
            ..Default::default()
        };
        cap_status(&mut status);
        assert!(status.description.len() <= grpc::MAX_MESSAGE_BYTES);
        assert!(status.details.len() <= grpc::MAX_FIELD_BYTES);
        assert!(status.details.ends_with("[truncated from 20000 bytes]"));
    }
}
