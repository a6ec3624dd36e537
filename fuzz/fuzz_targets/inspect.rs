//! The util.inspect printer (`ward prettylist`, `describe`'s objects): any JSON printed;
//! and jlist's string escaping (spec/jsontext.rs), which must equal serde_json's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::client::inspect;
use ward_fuzz::spec::jsontext;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = inspect::parse(src) {
        let _ = inspect::inspect(&n);
    }
    let mut out = String::new();
    jsontext::write_str(src, &mut out);
    assert_eq!(out, serde_json::to_string(src).unwrap());
});
