//! Ecosystem files in YAML (ward's block subset), then checked.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::spec::{appkeys, yaml};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(v) = yaml::parse(src) {
        let _ = appkeys::check("fuzz.yml", &Default::default(), &v);
    }
});
