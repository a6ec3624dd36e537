//! Cron expressions for `cron_restart`: parsing and the next time one fires.
//!
//! Pure: the caller gives a local calendar time (`Civil`) and converts the answer back to
//! the epoch (sys.rs does both with localtime_r/mktime). pm2 hands the expression to croner;
//! ward accepts the part of croner's syntax that cron users write: 5 fields (minute hour
//! day-of-month month day-of-week), or 6 with seconds first; `*`, `?`, numbers, ranges
//! `a-b`, steps `*/n` `a-b/n` `a/n`, lists `a,b`, month and day names (`JAN`, `mon`), day 7
//! as Sunday, and `@yearly @annually @monthly @weekly @daily @midnight @hourly`. When both
//! day fields are restricted, a day matches if either matches, as in cron (croner's
//! legacy mode, its default).

/// A local calendar time, to the second.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Civil {
    pub year: i32,
    /// 1..=12
    pub month: u32,
    /// 1..=31
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    seconds: u64,
    minutes: u64,
    hours: u64,
    days: u64,
    months: u64,
    weekdays: u64,
    /// Day-of-month or day-of-week was given as `*`/`?`: then only the other one counts.
    any_day: bool,
    any_weekday: bool,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

struct Field {
    name: &'static str,
    min: u32,
    max: u32,
    names: &'static [&'static str],
    /// The value of the first name (JAN = 1, SUN = 0).
    names_from: u32,
}

const SECOND: Field = Field {
    name: "second",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const MINUTE: Field = Field {
    name: "minute",
    min: 0,
    max: 59,
    names: &[],
    names_from: 0,
};
const HOUR: Field = Field {
    name: "hour",
    min: 0,
    max: 23,
    names: &[],
    names_from: 0,
};
const DAY: Field = Field {
    name: "day of month",
    min: 1,
    max: 31,
    names: &[],
    names_from: 0,
};
const MONTH: Field = Field {
    name: "month",
    min: 1,
    max: 12,
    names: &MONTHS,
    names_from: 1,
};
const WEEKDAY: Field = Field {
    name: "day of week",
    min: 0,
    // 7 is Sunday too; folded into 0 after parsing.
    max: 7,
    names: &WEEKDAYS,
    names_from: 0,
};

impl Field {
    fn value(&self, s: &str) -> Result<u32, String> {
        if let Ok(n) = s.parse::<u32>() {
            if n < self.min || n > self.max {
                return Err(format!("{n} is out of range {}-{}", self.min, self.max));
            }
            return Ok(n);
        }
        let up = s.to_ascii_uppercase();
        match self.names.iter().position(|n| *n == up) {
            Some(i) => Ok(self.names_from + i as u32),
            None if self.names.is_empty() => Err(format!("{s:?} is not a number")),
            None => Err(format!(
                "{s:?} is neither a number nor a name ({}-{} or {}…)",
                self.min, self.max, self.names[0]
            )),
        }
    }

    /// One field: a comma list of `*`, `n`, `a-b`, each with an optional `/step`.
    fn parse(&self, text: &str) -> Result<u64, String> {
        let mut bits = 0u64;
        for part in text.split(',') {
            if part.is_empty() {
                return Err("empty list item".into());
            }
            let (range, step) = match part.split_once('/') {
                Some((r, s)) => {
                    let step = s
                        .parse::<u32>()
                        .map_err(|_| format!("step {s:?} is not a number"))?;
                    if step == 0 {
                        return Err("a step of 0".into());
                    }
                    (r, Some(step))
                }
                None => (part, None),
            };
            let (lo, hi) = if range == "*" || range == "?" {
                (self.min, self.max)
            } else if let Some((a, b)) = range.split_once('-') {
                let (a, b) = (self.value(a)?, self.value(b)?);
                if a > b {
                    return Err(format!("range {range} runs backwards"));
                }
                (a, b)
            } else {
                let a = self.value(range)?;
                // `a/n` runs from a to the end of the field, as in croner and Vixie cron.
                (a, if step.is_some() { self.max } else { a })
            };
            let step = step.unwrap_or(1);
            let mut v = lo;
            while v <= hi {
                bits |= 1 << v;
                v += step;
            }
        }
        Ok(bits)
    }
}

fn is_any(field: &str) -> bool {
    field == "*" || field == "?"
}

impl Schedule {
    /// Parses an expression; the error names the field at fault.
    pub fn parse(expr: &str) -> Result<Schedule, String> {
        let expr = expr.trim();
        let expanded = match expr.to_ascii_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            other if other.starts_with('@') => {
                return Err(format!(
                    "unknown shorthand {expr:?} (try @hourly, @daily, @weekly, @monthly, \
                     @yearly)"
                ));
            }
            _ => expr.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (sec, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "{n} fields; expected 5 (minute hour day-of-month month day-of-week) \
                     or 6 (second first)"
                ));
            }
        };
        let field = |f: &Field, text: &str| {
            f.parse(text)
                .map_err(|why| format!("{} field {text:?}: {why}", f.name))
        };
        let mut weekdays = field(&WEEKDAY, rest[4])?;
        if weekdays & (1 << 7) != 0 {
            weekdays = (weekdays | 1) & !(1 << 7);
        }
        let s = Schedule {
            seconds: field(&SECOND, sec)?,
            minutes: field(&MINUTE, rest[0])?,
            hours: field(&HOUR, rest[1])?,
            days: field(&DAY, rest[2])?,
            months: field(&MONTH, rest[3])?,
            weekdays,
            any_day: is_any(rest[2]),
            any_weekday: is_any(rest[4]),
        };
        // "30 February" parses but never comes; say so now rather than never restart.
        let probe = Civil {
            year: 2000,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        if s.next_after(probe).is_none() {
            return Err("this date never comes (check the day of month against the month)".into());
        }
        Ok(s)
    }

    fn day_matches(&self, c: &Civil) -> bool {
        let dom = self.days & (1 << c.day) != 0;
        let dow = self.weekdays & (1 << weekday(c.year, c.month, c.day)) != 0;
        match (self.any_day, self.any_weekday) {
            (true, true) => true,
            (false, true) => dom,
            (true, false) => dow,
            (false, false) => dom || dow,
        }
    }

    /// The first matching time strictly after `after`, or `None` if none comes within
    /// eight years (a date like 30 February).
    pub fn next_after(&self, after: Civil) -> Option<Civil> {
        let mut c = add_second(after);
        let limit = after.year + 8;
        while c.year <= limit {
            if self.months & (1 << c.month) == 0 {
                c = next_month(c);
                continue;
            }
            if !self.day_matches(&c) {
                c = next_day(c);
                continue;
            }
            if self.hours & (1 << c.hour) == 0 {
                c = next_hour(c);
                continue;
            }
            if self.minutes & (1 << c.minute) == 0 {
                c = next_minute(c);
                continue;
            }
            if self.seconds & (1 << c.second) == 0 {
                c = add_second(c);
                continue;
            }
            return Some(c);
        }
        None
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

pub fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

/// 0 = Sunday. Sakamoto's method.
pub fn weekday(y: i32, m: u32, d: u32) -> u32 {
    const T: [i32; 12] = [0, 3, 2, 5, 0, 3, 5, 1, 4, 6, 2, 4];
    let y = if m < 3 { y - 1 } else { y };
    ((y + y / 4 - y / 100 + y / 400 + T[(m - 1) as usize] + d as i32).rem_euclid(7)) as u32
}

fn next_month(c: Civil) -> Civil {
    let (year, month) = if c.month == 12 {
        (c.year + 1, 1)
    } else {
        (c.year, c.month + 1)
    };
    Civil {
        year,
        month,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    }
}

fn next_day(c: Civil) -> Civil {
    if c.day >= days_in_month(c.year, c.month) {
        return next_month(c);
    }
    Civil {
        day: c.day + 1,
        hour: 0,
        minute: 0,
        second: 0,
        ..c
    }
}

fn next_hour(c: Civil) -> Civil {
    if c.hour == 23 {
        return next_day(c);
    }
    Civil {
        hour: c.hour + 1,
        minute: 0,
        second: 0,
        ..c
    }
}

fn next_minute(c: Civil) -> Civil {
    if c.minute == 59 {
        return next_hour(c);
    }
    Civil {
        minute: c.minute + 1,
        second: 0,
        ..c
    }
}

fn add_second(c: Civil) -> Civil {
    if c.second == 59 {
        return next_minute(c);
    }
    Civil {
        second: c.second + 1,
        ..c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(year: i32, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> Civil {
        Civil {
            year,
            month,
            day,
            hour,
            minute,
            second,
        }
    }

    fn next(expr: &str, after: Civil) -> Civil {
        Schedule::parse(expr).unwrap().next_after(after).unwrap()
    }

    #[test]
    fn daily_at_three() {
        let t = at(2026, 11, 25, 20, 5, 0);
        assert_eq!(next("0 3 * * *", t), at(2026, 11, 26, 3, 0, 0));
        // Exactly at a firing time: the next one, not the same.
        assert_eq!(
            next("0 3 * * *", at(2026, 11, 26, 3, 0, 0)),
            at(2026, 11, 27, 3, 0, 0)
        );
    }

    #[test]
    fn seconds_field_and_steps() {
        let t = at(2026, 1, 1, 0, 0, 0);
        assert_eq!(next("*/2 * * * * *", t), at(2026, 1, 1, 0, 0, 2));
        assert_eq!(
            next("*/2 * * * * *", at(2026, 1, 1, 0, 0, 59)),
            at(2026, 1, 1, 0, 1, 0)
        );
        assert_eq!(
            next("*/15 * * * *", at(2026, 1, 1, 0, 16, 0)),
            at(2026, 1, 1, 0, 30, 0)
        );
        assert_eq!(
            next("10-20/5 * * * *", at(2026, 1, 1, 0, 16, 0)),
            at(2026, 1, 1, 0, 20, 0)
        );
        // `a/n` runs to the end of the field.
        assert_eq!(
            next("50/5 * * * *", at(2026, 1, 1, 0, 56, 0)),
            at(2026, 1, 1, 1, 50, 0)
        );
    }

    #[test]
    fn lists_and_rollovers() {
        assert_eq!(
            next("0 0 1,15 * *", at(2026, 12, 20, 0, 0, 0)),
            at(2027, 1, 1, 0, 0, 0)
        );
        assert_eq!(
            next("30 23 31 * *", at(2026, 2, 1, 0, 0, 0)),
            at(2026, 3, 31, 23, 30, 0)
        );
        // Leap day.
        assert_eq!(
            next("0 12 29 2 *", at(2026, 3, 1, 0, 0, 0)),
            at(2028, 2, 29, 12, 0, 0)
        );
    }

    #[test]
    fn names_and_sunday_as_seven() {
        // 2026-11-25 is a Wednesday.
        assert_eq!(weekday(2026, 11, 25), 3);
        let t = at(2026, 11, 25, 12, 0, 0);
        assert_eq!(next("0 9 * * MON", t), at(2026, 11, 30, 9, 0, 0));
        assert_eq!(next("0 9 * * 7", t), at(2026, 11, 29, 9, 0, 0));
        assert_eq!(next("0 9 * * sun", t), at(2026, 11, 29, 9, 0, 0));
        assert_eq!(next("0 0 1 jan-mar *", t), at(2027, 1, 1, 0, 0, 0));
        assert_eq!(
            next("0 0 * * mon-fri", at(2026, 11, 28, 0, 0, 0)),
            at(2026, 11, 30, 0, 0, 0)
        );
    }

    #[test]
    fn day_of_month_or_day_of_week() {
        // Both restricted: the 1st of the month OR any Friday.
        let t = at(2026, 11, 25, 12, 0, 0);
        assert_eq!(next("0 0 1 * FRI", t), at(2026, 11, 27, 0, 0, 0));
        assert_eq!(
            next("0 0 1 * FRI", at(2026, 11, 28, 0, 0, 0)),
            at(2026, 12, 1, 0, 0, 0)
        );
        // One of them `*`: only the other counts.
        assert_eq!(next("0 0 1 * *", t), at(2026, 12, 1, 0, 0, 0));
        assert_eq!(next("0 0 * * FRI", t), at(2026, 11, 27, 0, 0, 0));
    }

    #[test]
    fn shorthands() {
        let t = at(2026, 11, 25, 12, 30, 0);
        assert_eq!(next("@hourly", t), at(2026, 11, 25, 13, 0, 0));
        assert_eq!(next("@daily", t), at(2026, 11, 26, 0, 0, 0));
        assert_eq!(next("@yearly", t), at(2027, 1, 1, 0, 0, 0));
    }

    #[test]
    fn errors_name_the_field() {
        let e = |s: &str| Schedule::parse(s).unwrap_err();
        assert!(
            e("0 25 * * *").contains("hour field \"25\": 25 is out of range 0-23"),
            "{}",
            e("0 25 * * *")
        );
        assert!(e("61 * * * * *").contains("second field"));
        assert!(e("* * 0 * *").contains("day of month field"));
        assert!(e("* * * 13 *").contains("month field"));
        assert!(e("* * * * 8").contains("day of week field"));
        assert!(e("* * * FOO *").contains("neither a number nor a name"));
        assert!(e("*/0 * * * *").contains("step of 0"));
        assert!(e("5-1 * * * *").contains("backwards"));
        assert!(e("* * *").contains("3 fields"));
        assert!(e("1,,2 * * * *").contains("empty"));
        assert!(e("@often").contains("shorthand"));
        assert!(e("0 0 30 2 *").contains("never comes"));
        assert!(e("0 0 L * *").contains("day of month field"));
    }
}
