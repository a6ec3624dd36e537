//! The util.inspect printer (`ward prettylist`, `describe`'s objects): any JSON printed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::client::inspect;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(n) = inspect::parse(src) {
        let _ = inspect::inspect(&n);
        let _ = inspect::to_json(&n);
    }
});
