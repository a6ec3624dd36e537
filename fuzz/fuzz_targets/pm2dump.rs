//! pm2 dump files (`dump.pm2`): JSON, then each process record turned into an app.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::spec::pm2dump;

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let _ = pm2dump::is_pm2(&v);
    let _ = pm2dump::read_all(&v);
});
