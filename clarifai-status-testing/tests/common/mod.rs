//! What several test files share.
#![allow(dead_code)]

pub(crate) mod raw_http;
