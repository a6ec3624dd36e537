//! Date formats (`log_date_format`, dayjs tokens): parsed, then rendered for a few times.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::spec::datefmt::{DateFormat, Tm, looks_like_format};

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let _ = looks_like_format(src);
    let f = DateFormat::parse(src);
    let mut out = String::new();
    for (tm, ms) in [
        (
            Tm {
                year: 2026,
                month: 11,
                day: 29,
                hour: 0,
                min: 0,
                sec: 0,
                wday: 0,
                gmtoff: 0,
            },
            1_795_910_400_000u64,
        ),
        (
            Tm {
                year: 1970,
                month: 1,
                day: 1,
                hour: 23,
                min: 59,
                sec: 59,
                wday: 4,
                gmtoff: -43200,
            },
            0,
        ),
        (
            Tm {
                year: 9999,
                month: 12,
                day: 31,
                hour: 12,
                min: 30,
                sec: 1,
                wday: 5,
                gmtoff: 50400,
            },
            u64::MAX,
        ),
    ] {
        out.clear();
        f.render(&tm, ms, &mut out);
    }
});
