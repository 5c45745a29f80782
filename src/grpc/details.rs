//! The `grpc-status-details-bin` payload: a `google.rpc.Status` holding one Clarifai `ErrorInfo`
//! and, when a delay is known, a `RetryInfo`.
//!
//! Encoding is written out by hand (one exactly-sized allocation, no intermediate messages or
//! maps) because through prost's `rpc::Status`, `Any` and `ErrorInfo` messages (a `HashMap` and
//! three allocations) building a coded `tonic::Status` measured about twice as slow, on every
//! failing call's path. Decoding goes through the prost types and is fallible everywhere: the
//! bytes come from a peer.

use std::time::Duration;

use bytes::{BufMut, Bytes};
use prost::encoding::{encode_key, encode_varint, encoded_len_varint, WireType};
use prost::Message;

use crate::pb::rpc;
use crate::Code;

/// `ErrorInfo.domain` of every Clarifai error.
pub(crate) const DOMAIN: &str = "api.clarifai.com";
pub(crate) const ERROR_INFO_TYPE: &str = "type.googleapis.com/google.rpc.ErrorInfo";
pub(crate) const RETRY_INFO_TYPE: &str = "type.googleapis.com/google.rpc.RetryInfo";
/// `ErrorInfo.metadata` key of the decimal code.
pub(crate) const META_CODE: &str = "code";

fn key_len(tag: u32) -> usize {
    encoded_len_varint(u64::from(tag << 3))
}

/// Length of a length-delimited field with `len` bytes of payload.
fn delimited_len(tag: u32, len: usize) -> usize {
    key_len(tag) + encoded_len_varint(len as u64) + len
}

fn put_delimited(buf: &mut Vec<u8>, tag: u32, len: usize) {
    encode_key(tag, WireType::LengthDelimited, buf);
    encode_varint(len as u64, buf);
}

fn put_str(buf: &mut Vec<u8>, tag: u32, s: &[u8]) {
    put_delimited(buf, tag, s.len());
    buf.put_slice(s);
}

/// A map<string, string> entry's payload length.
fn entry_len(key: &str, value: &[u8]) -> usize {
    delimited_len(1, key.len()) + delimited_len(2, value.len())
}

fn put_entry(buf: &mut Vec<u8>, key: &str, value: &[u8]) {
    put_delimited(buf, 3, entry_len(key, value));
    put_str(buf, 1, key.as_bytes());
    put_str(buf, 2, value);
}

/// Encodes the details of a Clarifai error: `google.rpc.Status { code, message, details: [ErrorInfo,
/// RetryInfo?] }`. `grpc_code` and `message` must be the `tonic::Status`'s own (peers such as
/// Python's `grpc_status` reject details that disagree with the status). `metadata` follows the
/// `code` entry in the `ErrorInfo`.
pub(crate) fn encode(
    grpc_code: i32,
    message: &str,
    code: Code,
    metadata: &[(&str, &[u8])],
    retry_after: Option<Duration>,
) -> Bytes {
    let reason = code.name().as_bytes();
    let mut digits = itoa::Buffer::new();
    let number = digits.format(code.number()).as_bytes();

    let mut info_len = delimited_len(1, reason.len()) + delimited_len(2, DOMAIN.len());
    info_len += delimited_len(3, entry_len(META_CODE, number));
    for (key, value) in metadata {
        info_len += delimited_len(3, entry_len(key, value));
    }
    let info_any_len = delimited_len(1, ERROR_INFO_TYPE.len()) + delimited_len(2, info_len);

    let retry = retry_after.map(|d| {
        // google.protobuf.Duration's range ends at 10,000 years.
        const MAX_SECONDS: u64 = 315_576_000_000;
        let seconds = d.as_secs().min(MAX_SECONDS) as i64;
        let nanos = d.subsec_nanos();
        let mut duration_len = 0;
        if seconds != 0 {
            duration_len += key_len(1) + encoded_len_varint(seconds as u64);
        }
        if nanos != 0 {
            duration_len += key_len(2) + encoded_len_varint(u64::from(nanos));
        }
        let retry_len = delimited_len(1, duration_len);
        let any_len = delimited_len(1, RETRY_INFO_TYPE.len()) + delimited_len(2, retry_len);
        (seconds, nanos, duration_len, retry_len, any_len)
    });

    let mut total = 0;
    if grpc_code != 0 {
        total += key_len(1) + encoded_len_varint(grpc_code as i64 as u64);
    }
    if !message.is_empty() {
        total += delimited_len(2, message.len());
    }
    total += delimited_len(3, info_any_len);
    if let Some((.., any_len)) = retry {
        total += delimited_len(3, any_len);
    }

    let mut buf = Vec::with_capacity(total);
    if grpc_code != 0 {
        encode_key(1, WireType::Varint, &mut buf);
        encode_varint(grpc_code as i64 as u64, &mut buf);
    }
    if !message.is_empty() {
        put_str(&mut buf, 2, message.as_bytes());
    }
    put_delimited(&mut buf, 3, info_any_len);
    put_str(&mut buf, 1, ERROR_INFO_TYPE.as_bytes());
    put_delimited(&mut buf, 2, info_len);
    put_str(&mut buf, 1, reason);
    put_str(&mut buf, 2, DOMAIN.as_bytes());
    put_entry(&mut buf, META_CODE, number);
    for (key, value) in metadata {
        put_entry(&mut buf, key, value);
    }
    if let Some((seconds, nanos, duration_len, retry_len, any_len)) = retry {
        put_delimited(&mut buf, 3, any_len);
        put_str(&mut buf, 1, RETRY_INFO_TYPE.as_bytes());
        put_delimited(&mut buf, 2, retry_len);
        put_delimited(&mut buf, 1, duration_len);
        if seconds != 0 {
            encode_key(1, WireType::Varint, &mut buf);
            encode_varint(seconds as u64, &mut buf);
        }
        if nanos != 0 {
            encode_key(2, WireType::Varint, &mut buf);
            encode_varint(u64::from(nanos), &mut buf);
        }
    }
    debug_assert_eq!(buf.len(), total);
    Bytes::from(buf)
}

/// What the details of an error say, as far as they could be read.
#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Decoded {
    /// The Clarifai code of a Clarifai `ErrorInfo`: its `code` metadata, else its `reason` name.
    pub(crate) code: Option<Code>,
    /// The Clarifai `ErrorInfo`'s metadata (empty if there is none).
    pub(crate) metadata: std::collections::BTreeMap<String, String>,
    pub(crate) retry_after: Option<Duration>,
}

/// Reads Clarifai's `ErrorInfo` and any `RetryInfo` from details bytes. Garbage yields `Decoded`
/// with nothing set; nothing here panics.
pub(crate) fn decode(details: &[u8]) -> Decoded {
    let mut out = Decoded::default();
    if details.is_empty() {
        return out;
    }
    let Ok(status) = rpc::Status::decode(details) else {
        return out;
    };
    for any in &status.details {
        if any.type_url == ERROR_INFO_TYPE && out.code.is_none() {
            let Ok(mut info) = rpc::ErrorInfo::decode(any.value.as_slice()) else {
                continue;
            };
            if info.domain != DOMAIN {
                continue;
            }
            let from_meta = info
                .metadata
                .get(META_CODE)
                .and_then(|v| v.parse::<i32>().ok())
                .map(Code::new);
            let from_reason = || crate::StatusCode::from_name(&info.reason).map(Code::from);
            out.code = from_meta.or_else(from_reason);
            if out.code.is_some() {
                out.metadata = std::mem::take(&mut info.metadata);
            }
        } else if any.type_url == RETRY_INFO_TYPE && out.retry_after.is_none() {
            out.retry_after = rpc::RetryInfo::decode(any.value.as_slice())
                .ok()
                .and_then(|r| r.retry_delay)
                .and_then(|d| {
                    let secs = u64::try_from(d.seconds).ok()?;
                    let nanos = u32::try_from(d.nanos).ok().filter(|n| *n < 1_000_000_000)?;
                    Some(Duration::new(secs, nanos))
                });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StatusCode;

    #[test]
    fn hand_encoding_matches_prost() {
        let bytes = encode(
            16,
            "Invalid API key",
            StatusCode::ConnKeyInvalid.into(),
            &[("reqId", b"req-1")],
            Some(Duration::new(2, 500)),
        );
        let status = rpc::Status::decode(bytes.as_ref()).unwrap();
        assert_eq!(status.code, 16);
        assert_eq!(status.message, "Invalid API key");
        assert_eq!(status.details.len(), 2);
        let info = rpc::ErrorInfo::decode(status.details[0].value.as_slice()).unwrap();
        assert_eq!(info.reason, "CONN_KEY_INVALID");
        assert_eq!(info.domain, DOMAIN);
        assert_eq!(info.metadata.get("code").map(String::as_str), Some("11008"));
        assert_eq!(
            info.metadata.get("reqId").map(String::as_str),
            Some("req-1")
        );
        let retry = rpc::RetryInfo::decode(status.details[1].value.as_slice()).unwrap();
        let delay = retry.retry_delay.unwrap();
        assert_eq!((delay.seconds, delay.nanos), (2, 500));
        // And byte-for-byte what prost writes for the same messages.
        assert_eq!(status.encode_to_vec(), bytes.as_ref());
    }

    #[test]
    fn decode_reads_back_what_encode_wrote() {
        for n in [0, 10000, 11008, -1, i32::MIN, i32::MAX, 12345] {
            let bytes = encode(2, "", Code::new(n), &[], None);
            let d = decode(&bytes);
            assert_eq!(d.code, Some(Code::new(n)));
            assert_eq!(d.retry_after, None);
            assert_eq!(d.metadata.len(), 1);
        }
    }

    #[test]
    fn garbage_decodes_to_nothing() {
        for bytes in [
            &b"\xff\xff\xff"[..],
            b"\x1a\x05abc",
            b"\x0a",
            &[0x1a, 0x80, 0x80, 0x80, 0x80, 0x10],
        ] {
            assert_eq!(decode(bytes), Decoded::default());
        }
    }
}
