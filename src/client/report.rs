//! Introspection text for people and scrapers: `describe`'s box table, the Prometheus
//! exposition of `metrics`, `ls --sort` and `ls --mini-list`.
//!
//! Pure: apps in, strings out. No I/O; the caller passes the wall clock.

use crate::client::render::{bytes, uptime};
use crate::error::{Error, Result};
use crate::lifecycle::{Exit, Status};
use crate::protocol::AppView;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Name,
    Id,
    Cpu,
    Mem,
    Uptime,
    Restarts,
}

/// `ls --sort FIELD[:asc|:desc]`, as pm2 spells it; returns the key and whether descending.
pub fn parse_sort(s: &str) -> Result<(SortKey, bool)> {
    let (field, order) = s.split_once(':').unwrap_or((s, "asc"));
    let key = match field {
        "name" => SortKey::Name,
        "id" | "pm_id" => SortKey::Id,
        "cpu" => SortKey::Cpu,
        "mem" | "memory" => SortKey::Mem,
        "uptime" => SortKey::Uptime,
        "restarts" | "restart" => SortKey::Restarts,
        _ => {
            return Err(Error::new(format!(
                "invalid sort field {field:?}: expected name, id, cpu, mem, uptime or restarts"
            )));
        }
    };
    let desc = match order {
        "asc" => false,
        "desc" => true,
        _ => {
            return Err(Error::new(format!(
                "invalid sort order {order:?}: expected asc or desc"
            )));
        }
    };
    Ok((key, desc))
}

/// How long the app has been up, 0 when it is not running.
fn up_ms(v: &AppView, now_wall: u64) -> u64 {
    if v.app.run.status == Status::Online && v.app.run.pid.is_some() {
        now_wall.saturating_sub(v.app.run.pm_uptime)
    } else {
        0
    }
}

/// Sorts in place; ties keep id order, so the output is stable.
pub fn sort(apps: &mut [AppView], key: SortKey, desc: bool, now_wall: u64) {
    apps.sort_by(|a, b| {
        let o = match key {
            SortKey::Name => a.app.spec.name.cmp(&b.app.spec.name),
            SortKey::Id => a.app.id.cmp(&b.app.id),
            SortKey::Cpu => a.cpu.total_cmp(&b.cpu),
            SortKey::Mem => a.memory.cmp(&b.memory),
            SortKey::Uptime => up_ms(a, now_wall).cmp(&up_ms(b, now_wall)),
            SortKey::Restarts => a.app.run.restarts.cmp(&b.app.run.restarts),
        };
        let o = if desc { o.reverse() } else { o };
        o.then(a.app.id.cmp(&b.app.id))
    });
}

fn cpu_text(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{}%", c as u64)
    } else {
        format!("{c:.1}%")
    }
}

/// `ls -m`: one line per app, aligned, no frame: id, name, [namespace,] status, pid, cpu,
/// memory, restarts, uptime.
pub fn mini(apps: &[AppView], now_wall: u64) -> String {
    let show_ns = apps.iter().any(|a| a.app.spec.namespace != "default");
    let rows: Vec<Vec<String>> = apps
        .iter()
        .map(|v| {
            let a = &v.app;
            let mut r = vec![a.id.to_string(), a.spec.name.clone()];
            if show_ns {
                r.push(a.spec.namespace.clone());
            }
            r.extend([
                a.run.status.as_str().to_string(),
                format!("pid:{}", a.run.pid.unwrap_or(0)),
                format!("cpu:{}", cpu_text(v.cpu)),
                format!("mem:{}", bytes(v.memory)),
                format!("↺:{}", a.run.restarts),
                format!("up:{}", uptime(up_ms(v, now_wall))),
            ]);
            r
        })
        .collect();
    let n = rows.first().map_or(0, Vec::len);
    let mut w = vec![0; n];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            if i + 1 == n {
                line.push_str(c);
            } else {
                line.push_str(c);
                line.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// `2026-11-25T19:08:33.401Z` (what pm2 prints for `created at`).
pub use crate::spec::datefmt::utc_iso as iso;

fn exit_text(e: Exit) -> String {
    match e {
        Exit::Code(c) => format!("code {c}"),
        Exit::Signal(s) => crate::spec::config::signal_name(s),
        Exit::Unknown => "unknown (adopted)".into(),
    }
}

/// A pm2-style box: a title line, then rows of cells.
fn boxed(title: &str, rows: &[Vec<String>]) -> String {
    let n = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut w = vec![0usize; n];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let rule = |l: &str, m: &str, r: &str| {
        let parts: Vec<String> = w.iter().map(|x| "─".repeat(x + 2)).collect();
        format!("{l}{}{r}\n", parts.join(m))
    };
    let mut out = format!(" {title} \n");
    out.push_str(&rule("┌", "┬", "┐"));
    for r in rows {
        out.push('│');
        for (i, width) in w.iter().enumerate() {
            let c = r.get(i).map_or("", String::as_str);
            out.push_str(&format!(" {c}{} │", " ".repeat(width - c.chars().count())));
        }
        out.push('\n');
    }
    out.push_str(&rule("└", "┴", "┘"));
    out
}

/// `describe`: pm2's table of one app, its live usage, and ward's record of its last exits.
pub fn describe(v: &AppView, home: &str, now_wall: u64) -> String {
    let a = &v.app;
    let s = &a.spec;
    let r = &a.run;
    let na = |x: String| if x.is_empty() { "N/A".to_string() } else { x };
    let running = r.status.is_running() && r.pid.is_some();
    let rows: Vec<(&str, String)> = vec![
        ("status", r.status.as_str().into()),
        ("name", s.name.clone()),
        ("namespace", s.namespace.clone()),
        ("version", "N/A".into()),
        ("restarts", r.restarts.to_string()),
        (
            "uptime",
            if running {
                uptime(up_ms(v, now_wall))
            } else {
                "0".into()
            },
        ),
        ("pid", r.pid.map_or("N/A".into(), |p| p.to_string())),
        ("cpu", cpu_text(v.cpu)),
        ("memory (process group)", bytes(v.memory)),
        ("script path", s.script.clone()),
        ("script args", na(s.args.join(" "))),
        ("error log path", s.error_file.clone()),
        ("out log path", s.out_file.clone()),
        (
            "pid path",
            format!(
                "{home}/pids/{}-{}.pid",
                crate::spec::config::log_stem(&s.name),
                a.id
            ),
        ),
        ("interpreter", s.interpreter_name().into()),
        ("interpreter args", na(s.interpreter_args.join(" "))),
        ("script id", a.id.to_string()),
        ("exec cwd", s.cwd.clone()),
        ("exec mode", s.exec_mode().into()),
        (
            "watch & reload",
            if s.watch.is_empty() { "✘" } else { "✔" }.into(),
        ),
        ("unstable restarts", r.unstable_restarts.to_string()),
        ("created at", iso(r.created_at)),
    ];
    let rows: Vec<Vec<String>> = rows.into_iter().map(|(k, v)| vec![k.into(), v]).collect();
    let mut out = boxed(
        &format!("Describing process with id {} - name {}", a.id, s.name),
        &rows,
    );
    if !r.exits.is_empty() {
        let mut ex = vec![vec![
            "at".to_string(),
            "exit".into(),
            "uptime".into(),
            "reason".into(),
        ]];
        for e in r.exits.iter().rev() {
            ex.push(vec![
                iso(e.at),
                exit_text(e.exit),
                uptime(e.uptime),
                // The path that changed, the memory used, the cron expression.
                match &e.detail {
                    Some(d) => format!("{}: {d}", e.reason.as_str()),
                    None => e.reason.as_str().into(),
                },
            ]);
        }
        out.push_str(&boxed("Last exits (newest first)", &ex));
    }
    if let Some(err) = &r.last_error {
        out.push_str(&format!(" Last error: {err}\n"));
    }
    if !r.axm_monitor.is_empty() {
        let rows: Vec<Vec<String>> = crate::client::axm::rows(&r.axm_monitor)
            .into_iter()
            .map(|(k, v)| vec![k, v])
            .collect();
        out.push_str(&boxed("Code metrics value", &rows));
    }
    if let Some(text) = &r.status_text {
        // sd_notify's STATUS=, as `systemctl status` shows it.
        out.push_str(&format!(" Status text: {text}\n"));
    }
    if let Some(w) = &r.warning {
        out.push_str(&format!(" Warning: {w}\n"));
    }
    out.push_str(&format!(
        " Use `ward monit` to monitor CPU and Memory usage {}\n",
        s.name
    ));
    out
}

fn label(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => o.push_str("\\\\"),
            '"' => o.push_str("\\\""),
            '\n' => o.push_str("\\n"),
            c => o.push(c),
        }
    }
    o
}

/// The Prometheus text exposition format (version 0.0.4): one family per figure, one
/// sample per app, labelled with its id, name and namespace.
pub fn metrics(apps: &[AppView]) -> String {
    type Figure = fn(&AppView) -> String;
    let families: [(&str, &str, &str, Figure); 5] = [
        (
            "ward_app_up",
            "gauge",
            "1 when the app is online, else 0.",
            |v| u8::from(v.app.run.status == Status::Online).to_string(),
        ),
        (
            "ward_app_cpu_seconds_total",
            "counter",
            "CPU time (user + system) used by the app's live process group, in seconds.",
            |v| crate::client::inspect::js_number(v.cpu_time),
        ),
        (
            "ward_app_resident_memory_bytes",
            "gauge",
            "Resident memory of the app's whole process group, in bytes.",
            |v| v.memory.to_string(),
        ),
        (
            "ward_app_restarts_total",
            "counter",
            "Restarts of the app (pm2's restart_time).",
            |v| v.app.run.restarts.to_string(),
        ),
        (
            "ward_app_start_time_seconds",
            "gauge",
            "Start time of the app's current run, in seconds since the epoch; 0 when not running.",
            |v| {
                if v.app.run.pid.is_some() {
                    crate::client::inspect::js_number(v.app.run.pm_uptime as f64 / 1000.0)
                } else {
                    "0".into()
                }
            },
        ),
    ];
    let mut out = String::new();
    // Code metrics the apps report with @pm2/io, one gauge per app and metric.
    if apps.iter().any(|v| !v.app.run.axm_monitor.is_empty()) {
        let name = "ward_app_metric";
        out.push_str(&format!(
            "# HELP {name} A code metric the app reports with @pm2/io (pm2's axm_monitor).\n\
             # TYPE {name} gauge\n"
        ));
        for v in apps {
            for (metric, n) in crate::client::axm::numbers(&v.app.run.axm_monitor) {
                out.push_str(&format!(
                    "{name}{{id=\"{}\",name=\"{}\",namespace=\"{}\",metric=\"{}\"}} {}\n",
                    v.app.id,
                    label(&v.app.spec.name),
                    label(&v.app.spec.namespace),
                    label(metric),
                    crate::client::inspect::js_number(n)
                ));
            }
        }
    }
    for (name, kind, help, f) in families {
        out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
        for v in apps {
            out.push_str(&format!(
                "{name}{{id=\"{}\",name=\"{}\",namespace=\"{}\"}} {}\n",
                v.app.id,
                label(&v.app.spec.name),
                label(&v.app.spec.namespace),
                f(v)
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::{ExitRecord, Reason, Run};
    use crate::spec::config::AppSpec;
    use crate::table::App;

    fn view(id: u32, name: &str, cpu: f64, mem: u64, restarts: u32, up: u64) -> AppView {
        AppView {
            app: App {
                id,
                spec: AppSpec {
                    name: name.into(),
                    script: "/srv/app.js".into(),
                    cwd: "/srv".into(),
                    out_file: "/h/logs/x-out.log".into(),
                    error_file: "/h/logs/x-error.log".into(),
                    ..AppSpec::default()
                },
                run: Run {
                    status: Status::Online,
                    pid: Some(100 + id),
                    pm_uptime: 10_000_000 - up,
                    restarts,
                    created_at: 1_795_633_713_401,
                    ..Run::new(0)
                },
            },
            cpu,
            memory: mem,
            cpu_time: 1.5,
        }
    }

    #[test]
    fn sort_fields_and_orders() {
        let now = 10_000_000;
        let mut apps = vec![
            view(0, "b", 5.0, 10, 2, 3000),
            view(1, "a", 1.0, 30, 0, 1000),
            view(2, "c", 9.0, 20, 7, 2000),
        ];
        let ids = |a: &[AppView]| a.iter().map(|v| v.app.id).collect::<Vec<_>>();
        for (spec, want) in [
            ("name", vec![1, 0, 2]),
            ("name:desc", vec![2, 0, 1]),
            ("cpu:desc", vec![2, 0, 1]),
            ("mem", vec![0, 2, 1]),
            ("memory:desc", vec![1, 2, 0]),
            ("uptime", vec![1, 2, 0]),
            ("restarts:desc", vec![2, 0, 1]),
            ("id:asc", vec![0, 1, 2]),
        ] {
            let (k, d) = parse_sort(spec).unwrap();
            sort(&mut apps, k, d, now);
            assert_eq!(ids(&apps), want, "{spec}");
        }
        assert!(parse_sort("colour").is_err());
        assert!(parse_sort("cpu:up").is_err());
    }

    #[test]
    fn mini_is_one_aligned_line_per_app() {
        let apps = vec![
            view(0, "api", 1.5, 42 * 1024 * 1024, 3, 5000),
            view(1, "worker-long", 0.0, 512, 0, 61_000),
        ];
        let got = mini(&apps, 10_000_000);
        let want = "\
0  api          online  pid:100  cpu:1.5%  mem:42.0mb  ↺:3  up:5s
1  worker-long  online  pid:101  cpu:0%    mem:512b    ↺:0  up:1m
";
        assert_eq!(got, want, "\ngot:\n{got}");
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso(1_795_633_713_401), "2026-11-25T19:08:33.401Z");
        assert_eq!(iso(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn describe_shows_why_and_watching() {
        let mut v = view(0, "web", 0.0, 1024, 1, 2000);
        v.app.spec.watch = vec!["/srv".into()];
        v.app.run.exits.push_back(ExitRecord {
            at: 1_795_633_713_401,
            exit: Exit::Signal(2),
            uptime: 1_000,
            reason: Reason::Watch,
            detail: Some("/srv/a.js".into()),
        });
        let got = describe(&v, "/h", 10_000_000);
        assert!(got.contains("watched path changed: /srv/a.js"), "{got}");
        assert!(got.contains("✔"), "{got}");
    }

    #[test]
    fn describe_box_and_exits() {
        let mut v = view(0, "web", 0.0, 1024, 1, 2000);
        v.app.run.exits.push_back(ExitRecord {
            at: 1_795_633_713_401,
            exit: Exit::Signal(9),
            uptime: 61_000,
            reason: Reason::Crashed,
            detail: None,
        });
        v.app.run.last_error = Some("spawn: no such file".into());
        let got = describe(&v, "/h", 10_000_000);
        let lines: Vec<&str> = got.lines().collect();
        assert_eq!(lines[0], " Describing process with id 0 - name web ");
        assert_eq!(
            lines[2],
            "│ status                 │ online                   │"
        );
        assert!(got.contains("│ script path            │ /srv/app.js              │"));
        assert!(got.contains("│ pid path               │ /h/pids/web-0.pid        │"));
        assert!(got.contains("│ created at             │ 2026-11-25T19:08:33.401Z │"));
        assert!(got.contains("│ 2026-11-25T19:08:33.401Z │ SIGKILL │ 1m     │ crashed │"));
        assert!(got.contains(" Last error: spawn: no such file"));
        // Every line of a box is as wide as its frame.
        let w = lines[1].chars().count();
        for l in &lines[1..25] {
            assert_eq!(l.chars().count(), w, "{l}");
        }
    }

    #[test]
    fn metrics_exposition() {
        let mut a = view(0, "api", 0.0, 4096, 2, 1000);
        a.app.run.pm_uptime = 1_700_000_000_500;
        let mut b = view(1, "we\"ird", 0.0, 0, 0, 0);
        b.app.run.status = Status::Stopped;
        b.app.run.pid = None;
        b.app.spec.namespace = "ns".into();
        let got = metrics(&[a, b]);
        for want in [
            "# HELP ward_app_up 1 when the app is online, else 0.\n# TYPE ward_app_up gauge\n",
            "ward_app_up{id=\"0\",name=\"api\",namespace=\"default\"} 1\n",
            "ward_app_up{id=\"1\",name=\"we\\\"ird\",namespace=\"ns\"} 0\n",
            "# TYPE ward_app_cpu_seconds_total counter\n",
            "ward_app_cpu_seconds_total{id=\"0\",name=\"api\",namespace=\"default\"} 1.5\n",
            "ward_app_resident_memory_bytes{id=\"0\",name=\"api\",namespace=\"default\"} 4096\n",
            "ward_app_restarts_total{id=\"0\",name=\"api\",namespace=\"default\"} 2\n",
            "ward_app_start_time_seconds{id=\"0\",name=\"api\",namespace=\"default\"} 1700000000.5\n",
            "ward_app_start_time_seconds{id=\"1\",name=\"we\\\"ird\",namespace=\"ns\"} 0\n",
        ] {
            assert!(got.contains(want), "missing {want:?} in:\n{got}");
        }
        // Every line is a comment or `name{labels} value`.
        for l in got.lines() {
            assert!(l.starts_with("# ") || l.split(' ').count() == 2, "{l}");
        }
    }
}
