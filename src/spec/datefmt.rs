//! Date formats in pm2's (dayjs's) tokens, for `log_date_format`, `--time` and
//! `ward logs --timestamp`: parsed once, rendered many times.
//!
//! Pure: the broken-down local time comes from `sys::local_tm`; nothing here reads a clock.

/// pm2's `--time`: `log_date_format: 'YYYY-MM-DDTHH:mm:ss'`.
pub const TIME_FORMAT: &str = "YYYY-MM-DDTHH:mm:ss";
/// pm2's default for `pm2 logs --timestamp`.
pub const LOGS_TIMESTAMP: &str = "YYYY-MM-DD-HH:mm:ss";

/// A broken-down local time, as `localtime_r` gives it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Tm {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub min: u32,
    pub sec: u32,
    /// 0 = Sunday
    pub wday: u32,
    /// Seconds east of UTC.
    pub gmtoff: i64,
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Lit(String),
    Year4,
    Year2,
    MonthName,
    MonthShort,
    Month2,
    Month,
    Day2,
    Day,
    WeekdayName,
    WeekdayShort,
    WeekdayMin,
    Weekday,
    Hour2,
    Hour,
    Hour12x2,
    Hour12,
    Min2,
    Min,
    Sec2,
    Sec,
    Millis,
    ZoneColon,
    Zone,
    AmPm,
    AmPmLower,
    UnixSecs,
    UnixMillis,
}

/// Longest tokens first, so `YYYY` wins over `YY` and `MMMM` over `MM`.
const TOKENS: &[(&str, Tok)] = &[
    ("YYYY", Tok::Year4),
    ("MMMM", Tok::MonthName),
    ("dddd", Tok::WeekdayName),
    ("MMM", Tok::MonthShort),
    ("ddd", Tok::WeekdayShort),
    ("SSS", Tok::Millis),
    ("YY", Tok::Year2),
    ("MM", Tok::Month2),
    ("DD", Tok::Day2),
    ("dd", Tok::WeekdayMin),
    ("HH", Tok::Hour2),
    ("hh", Tok::Hour12x2),
    ("mm", Tok::Min2),
    ("ss", Tok::Sec2),
    ("ZZ", Tok::Zone),
    ("M", Tok::Month),
    ("D", Tok::Day),
    ("d", Tok::Weekday),
    ("H", Tok::Hour),
    ("h", Tok::Hour12),
    ("m", Tok::Min),
    ("s", Tok::Sec),
    ("Z", Tok::ZoneColon),
    ("A", Tok::AmPm),
    ("a", Tok::AmPmLower),
    ("X", Tok::UnixSecs),
    ("x", Tok::UnixMillis),
];

const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];
const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];

/// A parsed format. Text that is no token is copied; `[text]` is copied without its
/// brackets, as dayjs does.
#[derive(Clone, Debug, PartialEq)]
pub struct DateFormat {
    toks: Vec<Tok>,
}

impl DateFormat {
    pub fn parse(fmt: &str) -> DateFormat {
        let mut toks: Vec<Tok> = Vec::new();
        let mut lit = String::new();
        let mut rest = fmt;
        'outer: while !rest.is_empty() {
            if let Some(inner) = rest.strip_prefix('[') {
                if let Some(end) = inner.find(']') {
                    lit.push_str(&inner[..end]);
                    rest = &inner[end + 1..];
                    continue;
                }
            }
            for (name, tok) in TOKENS {
                if let Some(after) = rest.strip_prefix(name) {
                    if !lit.is_empty() {
                        toks.push(Tok::Lit(std::mem::take(&mut lit)));
                    }
                    toks.push(tok.clone());
                    rest = after;
                    continue 'outer;
                }
            }
            let mut chars = rest.chars();
            if let Some(c) = chars.next() {
                lit.push(c);
            }
            rest = chars.as_str();
        }
        if !lit.is_empty() {
            toks.push(Tok::Lit(lit));
        }
        DateFormat { toks }
    }

    /// Appends the rendering of `tm` (plus `millis` and the epoch time `unix_ms`) to `out`.
    pub fn render(&self, tm: &Tm, unix_ms: u64, out: &mut String) {
        use std::fmt::Write;
        let millis = unix_ms % 1000;
        let h12 = match tm.hour % 12 {
            0 => 12,
            h => h,
        };
        for t in &self.toks {
            let _ = match t {
                Tok::Lit(s) => {
                    out.push_str(s);
                    Ok(())
                }
                Tok::Year4 => write!(out, "{:04}", tm.year),
                Tok::Year2 => write!(out, "{:02}", tm.year.rem_euclid(100)),
                Tok::MonthName => {
                    out.push_str(MONTHS[(tm.month as usize + 11) % 12]);
                    Ok(())
                }
                Tok::MonthShort => {
                    out.push_str(&MONTHS[(tm.month as usize + 11) % 12][..3]);
                    Ok(())
                }
                Tok::Month2 => write!(out, "{:02}", tm.month),
                Tok::Month => write!(out, "{}", tm.month),
                Tok::Day2 => write!(out, "{:02}", tm.day),
                Tok::Day => write!(out, "{}", tm.day),
                Tok::WeekdayName => {
                    out.push_str(DAYS[tm.wday as usize % 7]);
                    Ok(())
                }
                Tok::WeekdayShort => {
                    out.push_str(&DAYS[tm.wday as usize % 7][..3]);
                    Ok(())
                }
                Tok::WeekdayMin => {
                    out.push_str(&DAYS[tm.wday as usize % 7][..2]);
                    Ok(())
                }
                Tok::Weekday => write!(out, "{}", tm.wday),
                Tok::Hour2 => write!(out, "{:02}", tm.hour),
                Tok::Hour => write!(out, "{}", tm.hour),
                Tok::Hour12x2 => write!(out, "{h12:02}"),
                Tok::Hour12 => write!(out, "{h12}"),
                Tok::Min2 => write!(out, "{:02}", tm.min),
                Tok::Min => write!(out, "{}", tm.min),
                Tok::Sec2 => write!(out, "{:02}", tm.sec),
                Tok::Sec => write!(out, "{}", tm.sec),
                Tok::Millis => write!(out, "{millis:03}"),
                Tok::ZoneColon | Tok::Zone => {
                    let sign = if tm.gmtoff < 0 { '-' } else { '+' };
                    let off = tm.gmtoff.unsigned_abs() / 60;
                    let colon = if *t == Tok::ZoneColon { ":" } else { "" };
                    write!(out, "{sign}{:02}{colon}{:02}", off / 60, off % 60)
                }
                Tok::AmPm => {
                    out.push_str(if tm.hour < 12 { "AM" } else { "PM" });
                    Ok(())
                }
                Tok::AmPmLower => {
                    out.push_str(if tm.hour < 12 { "am" } else { "pm" });
                    Ok(())
                }
                Tok::UnixSecs => write!(out, "{}", unix_ms / 1000),
                Tok::UnixMillis => write!(out, "{unix_ms}"),
            };
        }
    }
}

/// Does `s` look like a date format rather than an app name? `ward logs --timestamp X`
/// takes `X` as the format only then (pm2 takes any word, which eats the target).
pub fn looks_like_format(s: &str) -> bool {
    ["YY", "MM", "DD", "HH", "hh", "mm", "ss", "SSS"]
        .iter()
        .any(|t| s.contains(t))
}

/// `2026-11-25T19:08:33.401Z` from ms since the epoch: pm2's `created at`, and what a
/// JavaScript Date becomes in JSON (pm2-runtime's `--json` lines).
pub fn utc_iso(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tm() -> Tm {
        Tm {
            year: 2026,
            month: 11,
            day: 5,
            hour: 20,
            min: 1,
            sec: 2,
            wday: 4,
            gmtoff: 5 * 3600 + 30 * 60,
        }
    }

    fn render(f: &str) -> String {
        let mut s = String::new();
        DateFormat::parse(f).render(&tm(), 1_700_000_000_042, &mut s);
        s
    }

    #[test]
    fn pm2_formats() {
        assert_eq!(render(TIME_FORMAT), "2026-11-05T20:01:02");
        assert_eq!(
            render("YYYY-MM-DD HH:mm:ss Z"),
            "2026-11-05 20:01:02 +05:30"
        );
        assert_eq!(
            render("YYYY-MM-DD HH:mm:ss.SSS ZZ"),
            "2026-11-05 20:01:02.042 +0530"
        );
        assert_eq!(render(LOGS_TIMESTAMP), "2026-11-05-20:01:02");
    }

    #[test]
    fn short_tokens_names_and_literals() {
        assert_eq!(render("YY/M/D H:m:s"), "26/11/5 20:1:2");
        assert_eq!(render("hh:mm A a h"), "08:01 PM pm 8");
        assert_eq!(
            render("dddd ddd dd d MMMM MMM"),
            "Thursday Thu Th 4 November Nov"
        );
        assert_eq!(render("[YYYY at] HH"), "YYYY at 20");
        assert_eq!(render("X x"), "1700000000 1700000000042");
        assert_eq!(render("day: [ok]"), "4pmy: ok");
        assert_eq!(render("[unclosed"), "[unclo2e4");
        assert_eq!(render(""), "");
        assert_eq!(render("→ é"), "→ é");
    }

    #[test]
    fn negative_offsets() {
        let mut t = tm();
        t.gmtoff = -(3 * 3600 + 30 * 60);
        let mut s = String::new();
        DateFormat::parse("Z ZZ").render(&t, 0, &mut s);
        assert_eq!(s, "-03:30 -0330");
    }

    #[test]
    fn formats_are_told_from_names() {
        assert!(looks_like_format("HH:mm"));
        assert!(looks_like_format("YYYY"));
        assert!(!looks_like_format("api"));
        assert!(!looks_like_format("/api/"));
    }
}
