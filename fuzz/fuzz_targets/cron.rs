//! cron patterns: parsed, then asked for the next firing after a few dates.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::spec::cron::{Civil, Schedule};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(s) = Schedule::parse(src) else {
        return;
    };
    for (year, month, day, hour, minute, second) in [
        (2026, 11, 29, 10, 0, 0),
        (2024, 2, 29, 23, 59, 59),
        (1999, 12, 31, 23, 59, 59),
    ] {
        let _ = s.next_after(Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        });
    }
});
