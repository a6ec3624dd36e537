//! Ecosystem files in JSON (read leniently, as pm2 does), then checked key by key.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::spec::{appkeys, jsonish};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = jsonish::parse_json(src) {
        let _ = appkeys::check("fuzz.json", &p.positions, &p.value);
    }
});
