//! Reading the Clarifai status code of a response's first message: the in-body peek of
//! `RetryLayer` (feature `retry`), and of `StatusLayer`'s recording (features `server` and
//! `telemetry`), which also read the status's request id with [`request_id`].
//!
//! A gRPC message travels as a 1-byte compressed flag, a 4-byte big-endian length, then the
//! message (gRPC over HTTP/2, `doc/PROTOCOL-HTTP2.md`, "Length-Prefixed-Message"). Every
//! Clarifai response has `clarifai.api.status.Status status = 1`, whose `code` is field 1 in
//! turn: the code is the first varint of field 1 of field 1, within the first few bytes of the
//! message when an encoder writes fields in order (as prost, protobuf-python, grpc-go and
//! protobuf-java do).
//!
//! [`read`] takes the bytes received so far and says whether that code is known, needs more
//! bytes, or cannot be read here. It reads keys and varints with `prost::encoding` (the functions
//! prost's generated code decodes with), and never allocates.

use prost::encoding::{decode_key, decode_varint, WireType};

/// The most bytes of a response the layer holds while looking for the status code: a reply
/// whose code is not known by then is passed on as it is (the code comes within its first 20
/// bytes or so).
pub(crate) const PEEK_LIMIT: usize = 1024;

/// The most body frames (empty ones included) read while looking for the status code.
#[cfg_attr(not(feature = "retry"), allow(dead_code))]
pub(crate) const PEEK_FRAMES: usize = 64;

/// What the bytes received so far say of the first message's status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Peeked {
    /// Not known yet: more bytes are needed.
    More,
    /// The code of the first message's `status` (0 when the status has no code: proto3's
    /// default).
    Code(i32),
    /// Not readable here: a compressed message, an empty one, one whose first field is not a
    /// message at field 1 (not Clarifai-shaped, or its status unset), a malformed one.
    Not,
}

/// Reads the status code from the first bytes of a gRPC response body.
pub(crate) fn read(prefix: &[u8]) -> Peeked {
    match code(prefix) {
        Ok(code) => Peeked::Code(code),
        Err(peeked) => peeked,
    }
}

/// The longest request id [`request_id`] reads, in bytes.
#[cfg_attr(not(feature = "telemetry"), allow(dead_code))]
pub(crate) const MAX_REQUEST_ID: usize = 128;

/// The request id (`req_id`, field 7 of Clarifai's `Status`) of the first message's status, for
/// a span: only when that status is whole within `prefix`, and the id is 1 to
/// [`MAX_REQUEST_ID`] bytes of printable ASCII (`' '` to `'~'`); `None` otherwise. The last
/// occurrence wins, as protobuf decodes a repeated scalar field.
#[cfg_attr(not(feature = "telemetry"), allow(dead_code))]
pub(crate) fn request_id(prefix: &[u8]) -> Option<&str> {
    let [0, a, b, c, d, rest @ ..] = prefix else {
        return None;
    };
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    let whole = rest.len() >= len;
    let mut message = &rest[..rest.len().min(len)];
    if key(&mut message, whole).ok()? != (1, WireType::LengthDelimited) {
        return None;
    }
    let status_len = length(&mut message, whole).ok()?;
    let mut status = message.get(..status_len)?;
    let mut found = None;
    while !status.is_empty() {
        match key(&mut status, true).ok()? {
            (7, WireType::LengthDelimited) => {
                let n = length(&mut status, true).ok()?;
                found = Some(status.get(..n)?);
                skip(&mut status, n, true).ok()?;
            }
            (_, WireType::Varint) => {
                varint(&mut status, true).ok()?;
            }
            (_, WireType::SixtyFourBit) => skip(&mut status, 8, true).ok()?,
            (_, WireType::ThirtyTwoBit) => skip(&mut status, 4, true).ok()?,
            (_, WireType::LengthDelimited) => {
                let n = length(&mut status, true).ok()?;
                skip(&mut status, n, true).ok()?;
            }
            (_, WireType::StartGroup | WireType::EndGroup) => return None,
        }
    }
    let id = found?;
    let printable =
        (1..=MAX_REQUEST_ID).contains(&id.len()) && id.iter().all(|b| (b' '..=b'~').contains(b));
    // Printable ASCII is UTF-8.
    printable.then(|| std::str::from_utf8(id).ok()).flatten()
}

fn code(prefix: &[u8]) -> Result<i32, Peeked> {
    let [flag, a, b, c, d, rest @ ..] = prefix else {
        return Err(if prefix.first().is_some_and(|f| *f != 0) {
            Peeked::Not
        } else {
            Peeked::More
        });
    };
    // A compressed message would have to be decompressed first: not peeked.
    if *flag != 0 {
        return Err(Peeked::Not);
    }
    let len = u32::from_be_bytes([*a, *b, *c, *d]) as usize;
    if len == 0 {
        return Err(Peeked::Not);
    }
    let whole = rest.len() >= len;
    let mut message = &rest[..rest.len().min(len)];
    match key(&mut message, whole)? {
        (1, WireType::LengthDelimited) => {}
        _ => return Err(Peeked::Not),
    }
    let status_len = length(&mut message, whole)?;
    let status_whole = message.len() >= status_len;
    if whole && !status_whole {
        return Err(Peeked::Not);
    }
    let mut status = &message[..message.len().min(status_len)];
    loop {
        if status.is_empty() {
            return if status_whole {
                Ok(0)
            } else {
                Err(Peeked::More)
            };
        }
        match key(&mut status, status_whole)? {
            // prost reads an enum as the varint truncated to `i32`.
            (1, WireType::Varint) => return Ok(varint(&mut status, status_whole)? as i32),
            (1, _) => return Err(Peeked::Not),
            (_, WireType::Varint) => {
                varint(&mut status, status_whole)?;
            }
            (_, WireType::SixtyFourBit) => skip(&mut status, 8, status_whole)?,
            (_, WireType::ThirtyTwoBit) => skip(&mut status, 4, status_whole)?,
            (_, WireType::LengthDelimited) => {
                let n = length(&mut status, status_whole)?;
                skip(&mut status, n, status_whole)?;
            }
            (_, WireType::StartGroup | WireType::EndGroup) => return Err(Peeked::Not),
        }
    }
}

/// `More` when the bytes ran out before the end of what was being read, unless they are all
/// there is (`whole`): then the message is malformed.
fn short(whole: bool) -> Peeked {
    if whole {
        Peeked::Not
    } else {
        Peeked::More
    }
}

/// Whether `buf` holds a complete varint (a byte without the continuation bit within 10 bytes);
/// `Err` when it is cut short or too long.
fn complete_varint(buf: &[u8], whole: bool) -> Result<(), Peeked> {
    if buf.iter().take(10).any(|byte| byte & 0x80 == 0) {
        Ok(())
    } else if buf.len() >= 10 {
        Err(Peeked::Not)
    } else {
        Err(short(whole))
    }
}

fn varint(buf: &mut &[u8], whole: bool) -> Result<u64, Peeked> {
    complete_varint(buf, whole)?;
    decode_varint(buf).map_err(|_| Peeked::Not)
}

fn key(buf: &mut &[u8], whole: bool) -> Result<(u32, WireType), Peeked> {
    complete_varint(buf, whole)?;
    decode_key(buf).map_err(|_| Peeked::Not)
}

fn length(buf: &mut &[u8], whole: bool) -> Result<usize, Peeked> {
    usize::try_from(varint(buf, whole)?).map_err(|_| Peeked::Not)
}

fn skip(buf: &mut &[u8], n: usize, whole: bool) -> Result<(), Peeked> {
    if buf.len() < n {
        return Err(short(whole));
    }
    *buf = &buf[n..];
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;
    use prost::Message as _;

    fn framed(message: &impl prost::Message) -> Vec<u8> {
        let bytes = message.encode_to_vec();
        let mut framed = vec![0];
        framed.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        framed.extend_from_slice(&bytes);
        framed
    }

    /// A response whose only field is `status = 1` holding `status` (encoded by hand, in any
    /// field order), framed.
    fn framed_status(status: &[u8]) -> Vec<u8> {
        let mut message = Vec::new();
        prost::encoding::encode_key(1, WireType::LengthDelimited, &mut message);
        prost::encoding::encode_varint(status.len() as u64, &mut message);
        message.extend_from_slice(status);
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(message.len() as u32).to_be_bytes());
        bytes.extend_from_slice(&message);
        bytes
    }

    fn response(code: i32, description: &str) -> pb::BaseResponse {
        pb::BaseResponse {
            status: Some(pb::Status {
                code,
                description: description.to_owned(),
                req_id: "req-1".to_owned(),
                ..Default::default()
            }),
        }
    }

    #[test]
    fn reads_the_code_of_every_prefix_once_it_is_there() {
        let bytes = framed(&response(21354, "Model is busy, please retry"));
        // 5 bytes of framing, the key and length of `status`, the code's key and 3 bytes.
        let needed = 5 + 2 + 1 + 3;
        for n in 0..=bytes.len() {
            let want = if n < needed {
                Peeked::More
            } else {
                Peeked::Code(21354)
            };
            assert_eq!(read(&bytes[..n]), want, "{n} bytes");
        }
    }

    #[test]
    fn a_negative_code_reads_as_prost_reads_it() {
        let bytes = framed(&response(-7, ""));
        assert_eq!(read(&bytes), Peeked::Code(-7));
        let decoded = pb::BaseResponse::decode(&bytes[5..]).unwrap();
        assert_eq!(decoded.status.unwrap().code, -7);
    }

    #[test]
    fn a_status_without_a_code_is_zero_once_whole() {
        let bytes = framed(&response(0, "no code"));
        assert_eq!(read(&bytes[..bytes.len() - 1]), Peeked::More);
        assert_eq!(read(&bytes), Peeked::Code(0));
    }

    #[test]
    fn fields_before_the_code_are_skipped() {
        // description (2), percent_completed (5), then code (1): any order decodes.
        let mut status = Vec::new();
        prost::encoding::string::encode(2, &"first".to_owned(), &mut status);
        prost::encoding::uint32::encode(5, &40, &mut status);
        prost::encoding::int32::encode(1, &11005, &mut status);
        let bytes = framed_status(&status);
        assert_eq!(read(&bytes), Peeked::Code(11005));
        assert_eq!(read(&bytes[..bytes.len() - 1]), Peeked::More);
    }

    #[test]
    fn what_is_not_clarifai_shaped_is_not_read() {
        // Compressed.
        let mut bytes = framed(&response(21354, ""));
        bytes[0] = 1;
        assert_eq!(read(&bytes), Peeked::Not);
        assert_eq!(read(&[1]), Peeked::Not);
        // An empty message, a status unset.
        assert_eq!(read(&[0, 0, 0, 0, 0]), Peeked::Not);
        assert_eq!(
            read(&framed(&pb::BaseResponse { status: None })),
            Peeked::Not
        );
        // Field 1 a varint (grpc.health.v1's `status` enum).
        assert_eq!(read(&[0, 0, 0, 0, 2, 0x08, 0x01]), Peeked::Not);
        // Field 2 first.
        assert_eq!(read(&[0, 0, 0, 0, 2, 0x12, 0x00]), Peeked::Not);
    }

    #[test]
    fn malformed_bytes_are_not_read() {
        // A varint that never ends.
        let endless = [
            0, 0, 0, 0, 20, 0x0a, 0x10, 0x08, 0xff, 0xff, 0xff, 0xff, 0xff,
        ];
        assert_eq!(read(&endless), Peeked::More);
        let mut too_long = endless.to_vec();
        too_long.extend_from_slice(&[0xff; 8]);
        assert_eq!(read(&too_long), Peeked::Not);
        // A status longer than its message.
        assert_eq!(read(&[0, 0, 0, 0, 3, 0x0a, 0x7f, 0x08]), Peeked::Not);
        // A group, a code of the wrong wire type, field 0.
        assert_eq!(read(&[0, 0, 0, 0, 3, 0x0a, 0x01, 0x13]), Peeked::Not);
        assert_eq!(read(&[0, 0, 0, 0, 3, 0x0a, 0x01, 0x0d]), Peeked::Not);
        assert_eq!(read(&[0, 0, 0, 0, 2, 0x02, 0x00]), Peeked::Not);
    }

    #[test]
    fn the_request_id_is_read_when_the_status_is_whole() {
        let bytes = framed(&response(21354, "Model is busy, please retry"));
        assert_eq!(request_id(&bytes), Some("req-1"));
        // A status cut short: no id, even when its bytes are there.
        assert_eq!(request_id(&bytes[..bytes.len() - 1]), None);
        // Compressed, not Clarifai-shaped: none.
        let mut compressed = bytes.clone();
        compressed[0] = 1;
        assert_eq!(request_id(&compressed), None);
        assert_eq!(request_id(&[0, 0, 0, 0, 2, 0x08, 0x01]), None);
    }

    #[test]
    fn a_request_id_out_of_bounds_is_not_read() {
        let with_id = |id: &str| {
            framed(&pb::BaseResponse {
                status: Some(pb::Status {
                    code: 10000,
                    req_id: id.to_owned(),
                    ..Default::default()
                }),
            })
        };
        let longest = "r".repeat(MAX_REQUEST_ID);
        assert_eq!(request_id(&with_id(&longest)), Some(longest.as_str()));
        assert_eq!(request_id(&with_id(&"r".repeat(MAX_REQUEST_ID + 1))), None);
        assert_eq!(request_id(&with_id("")), None);
        assert_eq!(request_id(&with_id("tab\there")), None);
        assert_eq!(request_id(&with_id("caf\u{e9}")), None);
        assert_eq!(request_id(&with_id("new\nline")), None);
    }

    #[test]
    fn the_last_request_id_wins_as_protobuf_decodes_it() {
        let mut status = Vec::new();
        prost::encoding::int32::encode(1, &10000, &mut status);
        prost::encoding::string::encode(7, &"first".to_owned(), &mut status);
        prost::encoding::uint32::encode(5, &40, &mut status);
        prost::encoding::string::encode(7, &"second".to_owned(), &mut status);
        let bytes = framed_status(&status);
        let decoded = pb::BaseResponse::decode(&bytes[5..]).unwrap();
        assert_eq!(
            request_id(&bytes),
            Some(decoded.status.unwrap().req_id.as_str())
        );
        assert_eq!(request_id(&bytes), Some("second"));
    }

    #[test]
    fn a_huge_length_prefix_needs_more_until_the_code() {
        let bytes = [
            0, 0xff, 0xff, 0xff, 0xff, 0x0a, 0x05, 0x08, 0xea, 0xa6, 0x01,
        ];
        assert_eq!(read(&bytes), Peeked::Code(21354));
        assert_eq!(read(&bytes[..9]), Peeked::More);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any bytes: no panic, and never a code from fewer bytes than its framing.
            #[test]
            fn any_bytes_are_read_safely(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
                if let Peeked::Code(_) = read(&bytes) {
                    prop_assert!(bytes.len() >= 8);
                }
            }

            /// Any status: the code is read from the framed message, and from no shorter
            /// prefix than the one that holds it.
            #[test]
            fn any_status_is_read(code in any::<i32>(), description in ".{0,40}", req in "[a-z0-9]{0,20}") {
                let message = pb::BaseResponse { status: Some(pb::Status {
                    code, description, req_id: req, ..Default::default()
                }) };
                let bytes = framed(&message);
                prop_assert_eq!(read(&bytes), Peeked::Code(code));
                for n in 0..bytes.len() {
                    prop_assert!(matches!(read(&bytes[..n]), Peeked::More | Peeked::Code(_)));
                }
            }
        }
    }
}
