//! Fuzzes the request-head parser and the framing, target and expectation checks run on it.
//! Finds panics only; the unit tests in `src/http/request.rs` pin the expected answers.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ocivision::http::fuzz_request_head(data);
});
