//! The JSON reader, `rest::parse_json`, on arbitrary bytes and on arbitrary text in the `code`
//! position of Clarifai's REST shape; and serde for `Code` and `StatusCode` on the same inputs.
#![no_main]

use clarifai_status::{rest, Code, StatusCode};
use libfuzzer_sys::fuzz_target;

fn read_all(bytes: &[u8]) {
    let _ = rest::parse_json(bytes);
    let _ = serde_json::from_slice::<Code>(bytes);
    let _ = serde_json::from_slice::<StatusCode>(bytes);
}

fuzz_target!(|data: &[u8]| {
    read_all(data);
    let text = String::from_utf8_lossy(data);
    let wrapped = format!(r#"{{"status":{{"code":{text}}}}}"#);
    read_all(wrapped.as_bytes());
    let quoted = format!(r#"{{"status":{{"code":"{text}","req_id":"{text}"}}}}"#);
    read_all(quoted.as_bytes());
});
