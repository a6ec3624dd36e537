//! Sizes and durations as users write them: `300M`, `10s`, `1.5`, `4000ms`, numbers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use ward_fuzz::spec::{appkeys, config};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let _ = config::parse_memory(src);
    let _ = config::parse_watch_delay(src);
    let s = Value::String(src.to_string());
    let _ = appkeys::parse_size(&s);
    let _ = appkeys::parse_duration(&s);
    if let Ok(n) = serde_json::from_str::<Value>(src) {
        let _ = appkeys::parse_size(&n);
        let _ = appkeys::parse_duration(&n);
    }
});
