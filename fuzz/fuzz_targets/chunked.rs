//! Fuzzes the chunked body decoder: no panics, and the same result whether the input arrives
//! in one piece or in small pieces into a tiny output buffer.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ocivision::http::fuzz_chunked(data);
});
