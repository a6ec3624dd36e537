//! Text and JSON the client prints: the `ls` table, pm2-shaped `jlist`, units.
//!
//! Pure: apps in, strings out. No I/O, no clock (the caller passes `now`).

use crate::lifecycle::Status;
use crate::protocol::AppView;
use crate::spec::pm2record;

/// pm2's `timeSince`: 5s, 3m, 2h, 4D, 1M, 2Y.
pub fn uptime(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=59 => format!("{s}s"),
        60..=3599 => format!("{}m", s / 60),
        3600..=86_399 => format!("{}h", s / 3600),
        86_400..=2_591_999 => format!("{}D", s / 86_400),
        2_592_000..=31_535_999 => format!("{}M", s / 2_592_000),
        _ => format!("{}Y", s / 31_536_000),
    }
}

/// pm2's `bytesToSize(n, 1)`: 0b, 812kb, 40.2mb, 1.3gb.
pub fn bytes(n: u64) -> String {
    const K: f64 = 1024.0;
    let f = n as f64;
    if f < K {
        format!("{n}b")
    } else if f < K * K {
        format!("{:.1}kb", f / K)
    } else if f < K * K * K {
        format!("{:.1}mb", f / K / K)
    } else {
        format!("{:.1}gb", f / K / K / K)
    }
}

pub struct Style {
    pub color: bool,
    /// Terminal width, when known.
    pub width: Option<usize>,
}

fn paint(style: &Style, code: &str, s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 10);
    paint_into(style, code, s, &mut out);
    out
}

/// `paint`, appended to `out`.
fn paint_into(style: &Style, code: &str, s: &str, out: &mut String) {
    if style.color {
        out.push_str("\x1b[");
        out.push_str(code);
        out.push('m');
        out.push_str(s);
        out.push_str("\x1b[39m");
    } else {
        out.push_str(s);
    }
}

fn status_color(s: Status) -> &'static str {
    match s {
        Status::Online => "32",
        Status::Stopping | Status::Launching | Status::WaitingRestart => "33",
        Status::Stopped | Status::Errored => "31",
        Status::OneLaunch => "36",
    }
}

/// The width a string takes on a terminal (every char one column; the table uses no wide
/// characters of its own).
fn cols(s: &str) -> usize {
    s.chars().count()
}

/// Cuts `s` to `max` columns with an ellipsis.
pub fn fit(s: &str, max: usize) -> String {
    if cols(s) <= max {
        return s.to_string();
    }
    if max == 0 {
        return String::new();
    }
    let mut out: String = s.chars().take(max - 1).collect();
    out.push('…');
    out
}

/// The `ls` table, in pm2's layout.
pub fn table(apps: &[AppView], now_wall: u64, user: &str, style: &Style) -> String {
    let show_ns = apps.iter().any(|a| a.app.spec.namespace != "default");
    let mut head: Vec<&str> = vec!["id", "name"];
    if show_ns {
        head.push("namespace");
    }
    head.extend([
        "mode", "pid", "uptime", "↺", "status", "cpu", "mem", "user", "watching",
    ]);
    let name_col = 1;

    let mut rows: Vec<Vec<(String, Option<&'static str>)>> = Vec::with_capacity(apps.len());
    for v in apps {
        let a = &v.app;
        let running = a.run.pid.is_some() && a.run.status == Status::Online;
        let mut r: Vec<(String, Option<&'static str>)> =
            vec![(a.id.to_string(), None), (a.spec.name.clone(), None)];
        if show_ns {
            r.push((a.spec.namespace.clone(), None));
        }
        r.push((a.spec.exec_mode().trim_end_matches("_mode").into(), None));
        r.push((a.run.pid.map_or("0".into(), |p| p.to_string()), None));
        r.push((
            if running {
                uptime(now_wall.saturating_sub(a.run.pm_uptime))
            } else {
                "0".into()
            },
            None,
        ));
        r.push((a.run.restarts.to_string(), None));
        r.push((
            a.run.status.as_str().to_string(),
            Some(status_color(a.run.status)),
        ));
        r.push((format!("{}%", fmt_cpu(v.cpu)), None));
        r.push((bytes(v.memory), None));
        r.push((user.to_string(), None));
        // pm2 shows "enabled" in green for a watched app.
        r.push(if !a.spec.watch.is_empty() {
            ("enabled".into(), Some("32"))
        } else {
            ("disabled".into(), None)
        });
        rows.push(r);
    }

    let mut widths: Vec<usize> = head.iter().map(|h| cols(h)).collect();
    for r in &rows {
        for (i, (s, _)) in r.iter().enumerate() {
            widths[i] = widths[i].max(cols(s));
        }
    }
    // Fit the terminal: the name column gives way first, down to 8 columns.
    if let Some(term) = style.width {
        let total: usize = widths.iter().map(|w| w + 3).sum::<usize>() + 1;
        if total > term {
            let over = total - term;
            widths[name_col] = widths[name_col].saturating_sub(over).max(8);
        }
        // Still too wide (pm2 condenses its table on narrow terminals too): the columns
        // that matter least go, one at a time, never wrapping a line.
        for drop in ["watching", "user", "mode", "uptime", "namespace", "pid"] {
            let total: usize = widths.iter().map(|w| w + 3).sum::<usize>() + 1;
            if total <= term {
                break;
            }
            if let Some(i) = head.iter().position(|h| *h == drop) {
                head.remove(i);
                widths.remove(i);
                for r in rows.iter_mut() {
                    r.remove(i);
                }
            }
        }
    }

    let line = |l: &str, m: &str, r: &str| {
        let mut s = String::from(l);
        for (i, w) in widths.iter().enumerate() {
            s.push_str(&"─".repeat(w + 2));
            s.push_str(if i + 1 == widths.len() { r } else { m });
        }
        s.push('\n');
        s
    };
    let mut out = line("┌", "┬", "┐");
    out.push('│');
    for (i, h) in head.iter().enumerate() {
        let cell = format!(" {:<w$} ", h, w = widths[i]);
        out.push_str(&paint(style, "1;36", &cell));
        out.push('│');
    }
    out.push('\n');
    out.push_str(&line("├", "┼", "┤"));
    // Cells go straight into `out`: a copy, a painted copy and a padding string per cell
    // were half of `ls`'s time in the client with 100 apps.
    out.reserve(rows.len() * (widths.iter().sum::<usize>() + 4 * widths.len() + 32));
    for r in rows {
        out.push('│');
        for (i, (s, color)) in r.into_iter().enumerate() {
            let n = cols(&s);
            let cut;
            let s = if n > widths[i] {
                cut = fit(&s, widths[i]);
                cut.as_str()
            } else {
                s.as_str()
            };
            let pad = widths[i] - n.min(widths[i]);
            out.push(' ');
            match color {
                Some(c) => paint_into(style, c, s, &mut out),
                None if i == name_col => paint_into(style, "1", s, &mut out),
                None => out.push_str(s),
            }
            out.extend(std::iter::repeat_n(' ', pad + 1));
            out.push('│');
        }
        out.push('\n');
    }
    out.push_str(&line("└", "┴", "┘"));
    out
}

fn fmt_cpu(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{}", c as u64)
    } else {
        format!("{c:.1}")
    }
}

/// `jlist`: the entries in pm2's key order, so that `jlist` and `prettylist` read as pm2's.
/// Written straight from the apps, with room for the newline `ward jlist` adds.
pub fn jlist(apps: &[AppView], home: &str, user: &str) -> String {
    let mut s = String::new();
    pm2record::write_list(apps, home, user, &mut s);
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Run;
    use crate::spec::config::AppSpec;
    use crate::table::App;

    fn view(id: u32, name: &str, status: Status, pid: Option<u32>) -> AppView {
        let run = Run {
            status,
            pid,
            pm_uptime: 1_000,
            restarts: 3,
            ..Run::new(0)
        };
        AppView {
            app: App {
                id,
                spec: AppSpec {
                    name: name.into(),
                    script: "/srv/app.js".into(),
                    ..AppSpec::default()
                },
                run,
            },
            cpu: 1.5,
            memory: 42 * 1024 * 1024,
            cpu_time: 0.0,
        }
    }

    #[test]
    fn units() {
        assert_eq!(uptime(0), "0s");
        assert_eq!(uptime(59_999), "59s");
        assert_eq!(uptime(61_000), "1m");
        assert_eq!(uptime(7_200_000), "2h");
        assert_eq!(uptime(3 * 86_400_000), "3D");
        assert_eq!(bytes(512), "512b");
        assert_eq!(bytes(2048), "2.0kb");
        assert_eq!(bytes(42 * 1024 * 1024), "42.0mb");
        assert_eq!(bytes(3 * 1024 * 1024 * 1024), "3.0gb");
        assert_eq!(fit("abcdef", 4), "abc…");
        assert_eq!(fit("abc", 4), "abc");
    }

    #[test]
    fn table_golden() {
        let apps = vec![
            view(0, "api", Status::Online, Some(4242)),
            view(1, "worker", Status::Stopped, None),
        ];
        let style = Style {
            color: false,
            width: None,
        };
        let got = table(&apps, 6_000, "root", &style);
        let want = "\
┌────┬────────┬──────┬──────┬────────┬───┬─────────┬──────┬────────┬──────┬──────────┐
│ id │ name   │ mode │ pid  │ uptime │ ↺ │ status  │ cpu  │ mem    │ user │ watching │
├────┼────────┼──────┼──────┼────────┼───┼─────────┼──────┼────────┼──────┼──────────┤
│ 0  │ api    │ fork │ 4242 │ 5s     │ 3 │ online  │ 1.5% │ 42.0mb │ root │ disabled │
│ 1  │ worker │ fork │ 0    │ 0      │ 3 │ stopped │ 1.5% │ 42.0mb │ root │ disabled │
└────┴────────┴──────┴──────┴────────┴───┴─────────┴──────┴────────┴──────┴──────────┘
";
        assert_eq!(got, want, "\ngot:\n{got}\nwant:\n{want}");
    }

    #[test]
    fn narrow_terminals_drop_minor_columns() {
        let apps = vec![view(0, "api-server-long-name", Status::Online, Some(4242))];
        for width in [80, 60, 50] {
            let style = Style {
                color: false,
                width: Some(width),
            };
            let got = table(&apps, 6_000, "root", &style);
            for line in got.lines() {
                assert!(line.chars().count() <= width, "{width}: {line}");
            }
            assert!(got.contains("online") && got.contains("42.0mb"), "{got}");
        }
        let style = Style {
            color: false,
            width: Some(80),
        };
        let got = table(&apps, 6_000, "root", &style);
        assert!(!got.contains("watching") && got.contains("uptime"), "{got}");
    }

    #[test]
    fn long_names_are_cut_to_the_terminal() {
        let long = "x".repeat(200);
        let apps = vec![view(0, &long, Status::Online, Some(1))];
        let style = Style {
            color: false,
            width: Some(100),
        };
        let got = table(&apps, 0, "root", &style);
        for line in got.lines() {
            assert!(line.chars().count() <= 100, "{line}");
        }
        assert!(got.contains('…'));
    }

    #[test]
    fn jlist_has_pm2_fields() {
        let v = view(0, "api", Status::Online, Some(7));
        let j = pm2record::entry(&v, "/h", "root");
        assert_eq!(j["pid"], 7);
        assert_eq!(j["pm_id"], 0);
        assert_eq!(j["pm2_env"]["status"], "online");
        assert_eq!(j["pm2_env"]["restart_time"], 3);
        assert_eq!(j["pm2_env"]["pm_exec_path"], "/srv/app.js");
        assert_eq!(j["pm2_env"]["exec_mode"], "fork_mode");
        assert_eq!(j["monit"]["memory"], 42 * 1024 * 1024);
    }
}
