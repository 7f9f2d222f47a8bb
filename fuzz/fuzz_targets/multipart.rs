//! Fuzzes the multipart/form-data parser: no panics, caps held, and the same parts (or the same
//! refusal) whether the body arrives whole or a few bytes at a time. Register it in
//! fuzz/Cargo.toml as `[[bin]] name = "multipart"` next to the HTTP layer's targets.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    ocivision::http::fuzz_multipart(data);
});
