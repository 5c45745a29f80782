//! The test server's rewriting of h2's own answers (`testing`'s `H2Answers`): any client bytes
//! handed to h2 in any chunks, any server bytes sent out in any chunks. No panic; a client that
//! does not start with the HTTP/2 preface gets nothing past the part that matches to h2; only
//! client `SETTINGS` frames grow.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    clarifai_status::__fuzz::h2_answers(data);
});
