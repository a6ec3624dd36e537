//! Ecosystem files in the JavaScript literal subset (`module.exports = {...}`), then checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::spec::{appkeys, jsonish};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = jsonish::parse_module(src) {
        let _ = appkeys::check("fuzz.config.js", &p.positions, &p.value);
    }
});
