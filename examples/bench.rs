//! `make bench`: ward side by side with pm2, on this machine, in one run.
//!
//! Drives the real release binary (target/release/ward, or `WARD_BIN`) with a temporary
//! WARD_HOME per scenario, and pm2 (`PM2_BIN`, else `pm2` on PATH) with its own temporary
//! PM2_HOME; without pm2 it prints ward's column alone. Prints one table (median, min/max,
//! runs), then the targets of issues 18 and 9 checked against the results; `--json` prints the same
//! as JSON. `--quick` is the short run of `make bench-quick`.
//!
//! Every daemon and process group a scenario starts is killed by a `Rig`'s `Drop`, also on
//! error and on SIGINT/SIGTERM (a flag checked in every wait turns into an error, so the
//! guards unwind normally: the release profile aborts on panic, so nothing here panics on
//! purpose).
//!
//! The same executable doubles as the apps it needs: `bench --crasher FILE` stamps the time
//! into FILE and exits 1; `bench --writer BYTES` writes BYTES of 100-byte lines to stdout,
//! then `END`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

type R<T> = Result<T, String>;

static STOP: std::sync::OnceLock<Arc<AtomicBool>> = std::sync::OnceLock::new();

/// Err once SIGINT or SIGTERM came: every wait calls this, so an interrupt unwinds the guards.
fn check() -> R<()> {
    match STOP.get() {
        Some(f) if f.load(Ordering::Relaxed) => Err("interrupted".into()),
        _ => Ok(()),
    }
}

fn sleep(d: Duration) -> R<()> {
    check()?;
    std::thread::sleep(d);
    check()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// ---------------------------------------------------------------------------------------
// The apps: this executable, run as a crashing app or as a log writer.

fn crasher(file: &str) -> ! {
    let ns = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)
    {
        let _ = f.write_all(format!("{ns}\n").as_bytes());
    }
    std::process::exit(1)
}

fn writer(bytes: u64, done: Option<&str>) -> ! {
    let line = [b"x".repeat(99), b"\n".to_vec()].concat();
    let chunk: Vec<u8> = line.iter().copied().cycle().take(100 * 655).collect();
    let mut out = std::io::stdout().lock();
    let mut left = bytes;
    while left > 0 {
        let n = (chunk.len() as u64).min(left) as usize;
        if out.write_all(&chunk[..n]).is_err() {
            std::process::exit(1);
        }
        left -= n as u64;
    }
    let _ = out.write_all(b"END\n");
    let _ = out.flush();
    if let Some(d) = done {
        let _ = std::fs::write(d, b"");
    }
    std::process::exit(0)
}

// ---------------------------------------------------------------------------------------
// /proc readers.

fn proc_field(pid: u32, file: &str, key: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/{file}")).ok()?;
    s.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// utime + stime of the whole process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After the comm: state is field 3, utime 14, stime 15 → indices 11 and 12 here.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Voluntary context switches summed over every thread (pm2's node has several).
fn voluntary_switches(pid: u32) -> Option<u64> {
    let mut sum = 0;
    for t in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let tid = t.file_name().to_string_lossy().into_owned();
        let s = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).ok()?;
        sum += s
            .lines()
            .find(|l| l.starts_with("voluntary_ctxt_switches:"))?
            .split_whitespace()
            .nth(1)?
            .parse::<u64>()
            .ok()?;
    }
    Some(sum)
}

/// Every descendant of `root` (pid, pgid), from /proc: what to kill when a rig goes away.
fn descendants(root: u32) -> Vec<(u32, u32)> {
    let mut parent: BTreeMap<u32, (u32, u32)> = BTreeMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                continue;
            };
            let Some((_, rest)) = s.rsplit_once(')') else {
                continue;
            };
            let f: Vec<&str> = rest.split_whitespace().collect();
            if let (Some(pp), Some(pg)) = (f.get(1), f.get(2)) {
                if let (Ok(pp), Ok(pg)) = (pp.parse(), pg.parse()) {
                    parent.insert(pid, (pp, pg));
                }
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for (&pid, &(pp, pg)) in &parent {
            if pp == p {
                out.push((pid, pg));
                frontier.push(pid);
            }
        }
    }
    out
}

/// Processes whose working folder is under `dir`.
fn in_folder(dir: &Path) -> Vec<u32> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(dir)) {
                out.push(pid);
            }
        }
    }
    out
}

/// SIGKILL to pids (negative: process groups), a thousand per `kill` call.
fn sigkill(pids: &[i64]) {
    // The `kill` program rather than libc: this example stays free of unsafe code.
    for chunk in pids.chunks(1000) {
        let _ = Command::new("kill")
            .arg("-9")
            .arg("--")
            .args(chunk.iter().map(|p| p.to_string()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

/// Runs a child to completion, killing it after `limit`.
fn run_limited(mut c: Command, limit: Duration) -> R<std::process::Output> {
    let child = c
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("unable to run {:?}: {e}", c.get_program()))?;
    wait_limited(child, limit)
}

fn wait_limited(mut child: Child, limit: Duration) -> R<std::process::Output> {
    // Both pipes are read here with poll(2) (a chatty child never blocks on a full pipe),
    // and the child is reaped as soon as they close: what `timed` measures is the command,
    // not this harness. Two threads per command and a 300 µs sleep between looks at the
    // child used to add 0.3-0.8 ms to every command of either tool (`ls` with no app
    // 1.38 -> 1.06 ms, `jlist` of 100 apps 4.7 -> 3.9 ms).
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::{AsFd, OwnedFd};
    let mut pipes = [
        child
            .stdout
            .take()
            .map(|p| std::fs::File::from(OwnedFd::from(p))),
        child
            .stderr
            .take()
            .map(|p| std::fs::File::from(OwnedFd::from(p))),
    ];
    let mut got = [Vec::new(), Vec::new()];
    let start = Instant::now();
    let mut buf = vec![0u8; 64 * 1024];
    let give_up = |child: &mut Child| -> R<std::process::Output> {
        let _ = child.kill();
        let _ = child.wait();
        check()?;
        Err(format!("a command took longer than {limit:?}"))
    };
    while pipes.iter().any(Option::is_some) {
        let stop = STOP.get().is_some_and(|f| f.load(Ordering::Relaxed));
        if stop || start.elapsed() > limit {
            return give_up(&mut child);
        }
        let open: Vec<usize> = (0..2).filter(|&i| pipes[i].is_some()).collect();
        let mut fds: Vec<PollFd> = open
            .iter()
            .filter_map(|&i| pipes[i].as_ref())
            .map(|p| PollFd::new(p.as_fd(), PollFlags::POLLIN))
            .collect();
        match poll(&mut fds, PollTimeout::from(100u8)) {
            Ok(0) => continue,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(format!("poll: {e}")),
        }
        let ready: Vec<bool> = fds
            .iter()
            .map(|f| f.revents().is_some_and(|r| !r.is_empty()))
            .collect();
        drop(fds);
        for (k, &i) in open.iter().enumerate() {
            if !ready[k] {
                continue;
            }
            let Some(p) = pipes[i].as_mut() else { continue };
            match p.read(&mut buf) {
                Ok(0) => pipes[i] = None,
                Ok(n) => got[i].extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => pipes[i] = None,
            }
        }
    }
    // Its output closed: the command has ended, or is about to.
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break st,
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        let stop = STOP.get().is_some_and(|f| f.load(Ordering::Relaxed));
        if stop || start.elapsed() > limit {
            return give_up(&mut child);
        }
        std::thread::sleep(Duration::from_micros(20));
    };
    let [stdout, stderr] = got;
    Ok(std::process::Output {
        status,
        stdout,
        stderr,
    })
}

// ---------------------------------------------------------------------------------------
// A rig: one process manager with its own temporary home.

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Tool {
    Ward,
    Pm2,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ward => "ward",
            Tool::Pm2 => "pm2",
        }
    }
}

struct Rig {
    tool: Tool,
    bin: PathBuf,
    base: PathBuf,
    home: PathBuf,
    work: PathBuf,
}

static SEQ: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl Rig {
    fn new(tool: Tool, bin: &Path) -> R<Rig> {
        check()?;
        let base = std::env::temp_dir().join(format!(
            "ward-bench-{}-{}-{}",
            tool.name(),
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let home = base.join("home");
        let work = base.join("work");
        std::fs::create_dir_all(&work).map_err(|e| format!("create {}: {e}", work.display()))?;
        Ok(Rig {
            tool,
            bin: bin.to_path_buf(),
            base,
            home,
            work,
        })
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args).current_dir(&self.work).stdin(Stdio::null());
        match self.tool {
            Tool::Ward => c.env("WARD_HOME", &self.home),
            Tool::Pm2 => c.env("PM2_HOME", &self.home),
        };
        c.env("NO_COLOR", "1");
        c
    }

    /// Runs a command to success; returns stdout.
    fn ok(&self, args: &[&str]) -> R<String> {
        check()?;
        let out = run_limited(self.cmd(args), Duration::from_secs(900))?;
        check()?;
        if !out.status.success() {
            return Err(format!(
                "{} {} failed ({}): {}",
                self.tool.name(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Time of one command, run to success with its output discarded.
    fn timed(&self, args: &[&str]) -> R<Duration> {
        check()?;
        let t = Instant::now();
        let out = run_limited(self.cmd(args), Duration::from_secs(900))?;
        let d = t.elapsed();
        check()?;
        if !out.status.success() {
            return Err(format!(
                "{} {} failed ({}): {}",
                self.tool.name(),
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        Ok(d)
    }

    fn daemon_pid(&self) -> Option<u32> {
        let f = match self.tool {
            Tool::Ward => "ward.pid",
            Tool::Pm2 => "pm2.pid",
        };
        std::fs::read_to_string(self.home.join(f))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Starts the daemon and returns its pid.
    fn up(&self) -> R<u32> {
        self.ok(&["ping"])?;
        let t = Instant::now();
        loop {
            if let Some(p) = self.daemon_pid() {
                return Ok(p);
            }
            if t.elapsed() > Duration::from_secs(10) {
                return Err(format!("{}: no daemon pid file", self.tool.name()));
            }
            sleep(Duration::from_millis(10))?;
        }
    }

    /// (name, status) of every app, from jlist.
    fn apps(&self) -> R<Vec<(String, String)>> {
        let s = self.ok(&["jlist"])?;
        // pm2 may print a banner before the JSON.
        let s = &s[s.find('[').unwrap_or(0)..];
        let v: serde_json::Value =
            serde_json::from_str(s).map_err(|e| format!("{} jlist: {e}", self.tool.name()))?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .map(|x| {
                        (
                            x["name"].as_str().unwrap_or("").to_string(),
                            x["pm2_env"]["status"].as_str().unwrap_or("").to_string(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    fn wait_online(&self, n: usize, limit: Duration, poll: Duration) -> R<()> {
        let t = Instant::now();
        loop {
            let asked = Instant::now();
            let apps = self.apps()?;
            // jlist of 1,000 apps is megabytes: waiting at least as long as it took keeps
            // the poller to half a core, leaving the other core (of two) to the start
            // being measured. Same rule for both managers.
            let poll = poll.max(asked.elapsed());
            let online = apps.iter().filter(|a| a.1 == "online").count();
            if online >= n {
                return Ok(());
            }
            if t.elapsed() > limit {
                return Err(format!(
                    "{}: {online} of {n} apps online after {limit:?}",
                    self.tool.name()
                ));
            }
            sleep(poll)?;
        }
    }

    /// Writes an ecosystem file of `n` `sleep` apps named s0… and returns its path.
    fn ecosystem(&self, n: usize, prefix: &str) -> R<PathBuf> {
        let apps: Vec<serde_json::Value> = (0..n)
            .map(|i| {
                serde_json::json!({
                    "name": format!("{prefix}{i}"),
                    "script": "/bin/sleep",
                    "args": ["100000"],
                    "interpreter": "none",
                })
            })
            .collect();
        let p = self.work.join("ecosystem.json");
        let s = serde_json::to_string_pretty(&serde_json::json!({ "apps": apps }))
            .map_err(|e| e.to_string())?;
        std::fs::write(&p, s).map_err(|e| format!("write {}: {e}", p.display()))?;
        Ok(p)
    }

    /// Registers and starts apps `from..to` (sleeps) with one `start` call: from an
    /// ecosystem file, or else as that many scripts named s0… given to one `ward start`.
    fn start_batch(&self, from: usize, to: usize, eco: bool) -> R<()> {
        if eco {
            let apps: Vec<serde_json::Value> = (from..to)
                .map(|i| {
                    serde_json::json!({
                        "name": format!("s{i}"),
                        "script": "/bin/sleep",
                        "args": ["100000"],
                        "interpreter": "none",
                    })
                })
                .collect();
            let p = self.work.join(format!("ecosystem-{from}.json"));
            let s = serde_json::to_string(&serde_json::json!({ "apps": apps }))
                .map_err(|e| e.to_string())?;
            std::fs::write(&p, s).map_err(|e| format!("write {}: {e}", p.display()))?;
            self.ok(&["start", &p.to_string_lossy()])?;
        } else {
            use std::os::unix::fs::PermissionsExt;
            let dir = self.work.join("apps");
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            let mut args = vec!["start".to_string()];
            for i in from..to {
                let f = dir.join(format!("s{i}"));
                std::fs::write(&f, "#!/bin/sh\nexec sleep 100000\n").map_err(|e| e.to_string())?;
                std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
                args.push(f.to_string_lossy().into_owned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            self.ok(&args)?;
        }
        Ok(())
    }

    /// Registers and starts `n` sleep apps; returns the time until all are online.
    fn mass_start(&self, n: usize, eco: bool) -> R<Duration> {
        let t = Instant::now();
        self.start_batch(0, n, eco)?;
        self.wait_online(n, Duration::from_secs(900), Duration::from_millis(20))?;
        Ok(t.elapsed())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        // Ask nicely, with a limit; then kill the daemon and everything under it.
        let daemon = self.daemon_pid();
        let kids = daemon.map(descendants).unwrap_or_default();
        let _ = run_limited(self.cmd(&["kill"]), Duration::from_secs(30));
        let mut victims: Vec<i64> = daemon.map(|p| p as i64).into_iter().collect();
        for (pid, pgid) in kids {
            if pgid > 1 {
                victims.push(-(pgid as i64));
            }
            victims.push(pid as i64);
        }
        // An app spawned while the scan above ran escapes it; every app runs in `work`, so
        // a second sweep by working folder catches it.
        victims.extend(in_folder(&self.base).into_iter().map(|p| p as i64));
        victims.sort_unstable();
        victims.dedup();
        sigkill(&victims);
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

// ---------------------------------------------------------------------------------------
// Results.

#[derive(Default, Clone)]
struct Series {
    v: Vec<f64>,
}

impl Series {
    fn push(&mut self, x: f64) {
        self.v.push(x);
    }
    fn sorted(&self) -> Vec<f64> {
        let mut s = self.v.clone();
        s.sort_by(|a, b| a.total_cmp(b));
        s
    }
    fn median(&self) -> Option<f64> {
        let s = self.sorted();
        if s.is_empty() {
            return None;
        }
        let m = s.len() / 2;
        Some(if s.len() % 2 == 1 {
            s[m]
        } else {
            (s[m - 1] + s[m]) / 2.0
        })
    }
    /// Nearest-rank percentile.
    fn pct(&self, p: f64) -> Option<f64> {
        let s = self.sorted();
        if s.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * s.len() as f64).ceil() as usize;
        Some(s[rank.clamp(1, s.len()) - 1])
    }
    fn min(&self) -> Option<f64> {
        self.sorted().first().copied()
    }
    fn max(&self) -> Option<f64> {
        self.sorted().last().copied()
    }
}

struct Row {
    key: String,
    label: String,
    unit: &'static str,
    /// Lower is better (time, memory); else higher is (throughput).
    lower: bool,
    ward: Series,
    pm2: Series,
}

#[derive(Default)]
struct Results {
    rows: Vec<Row>,
    notes: Vec<String>,
}

impl Results {
    fn row(&mut self, key: &str, label: &str, unit: &'static str, lower: bool) -> &mut Row {
        if let Some(i) = self.rows.iter().position(|r| r.key == key) {
            return &mut self.rows[i];
        }
        self.rows.push(Row {
            key: key.into(),
            label: label.into(),
            unit,
            lower,
            ward: Series::default(),
            pm2: Series::default(),
        });
        let n = self.rows.len();
        &mut self.rows[n - 1]
    }
    fn add(&mut self, tool: Tool, key: &str, label: &str, unit: &'static str, x: f64) {
        let lower = !matches!(unit, "MB/s" | "req/s");
        let r = self.row(key, label, unit, lower);
        match tool {
            Tool::Ward => r.ward.push(x),
            Tool::Pm2 => r.pm2.push(x),
        }
    }
    fn get(&self, key: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.key == key)
    }
}

fn fmt_num(x: f64) -> String {
    if x == 0.0 {
        "0".into()
    } else if x.abs() >= 100.0 {
        format!("{x:.0}")
    } else if x.abs() >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn cell(s: &Series) -> (String, String) {
    match (s.median(), s.min(), s.max()) {
        (Some(m), Some(lo), Some(hi)) => (
            fmt_num(m),
            if s.v.len() > 1 {
                format!("{}–{}", fmt_num(lo), fmt_num(hi))
            } else {
                "".into()
            },
        ),
        _ => ("–".into(), "".into()),
    }
}

/// How many times better ward is than pm2 (>1: ward wins).
fn ratio(r: &Row) -> Option<f64> {
    let (w, p) = (r.ward.median()?, r.pm2.median()?);
    if r.lower {
        (w > 0.0).then(|| p / w)
    } else {
        (p > 0.0).then(|| w / p)
    }
}

fn table(res: &Results) -> String {
    let head = [
        "scenario",
        "unit",
        "ward median",
        "ward min–max",
        "pm2 median",
        "pm2 min–max",
        "pm2/ward",
        "runs",
    ];
    let mut rows: Vec<[String; 8]> = Vec::new();
    for r in &res.rows {
        let (wm, wr) = cell(&r.ward);
        let (pm, pr) = cell(&r.pm2);
        let ratio = ratio(r)
            .map(|x| format!("{}x", fmt_num(x)))
            .unwrap_or("–".into());
        let runs = if r.pm2.v.is_empty() {
            format!("{}", r.ward.v.len())
        } else {
            format!("{}/{}", r.ward.v.len(), r.pm2.v.len())
        };
        rows.push([r.label.clone(), r.unit.into(), wm, wr, pm, pr, ratio, runs]);
    }
    let mut width = head.map(|h| h.chars().count());
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            width[i] = width[i].max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::from("|");
        for (i, c) in cells.iter().enumerate() {
            let pad = width[i] - c.chars().count();
            if i == 0 || i == 1 {
                let _ = write!(s, " {c}{} |", " ".repeat(pad));
            } else {
                let _ = write!(s, " {}{c} |", " ".repeat(pad));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(&head.map(String::from));
    out.push('|');
    for (i, w) in width.iter().enumerate() {
        let dashes = "-".repeat(*w);
        if i < 2 {
            let _ = write!(out, " {dashes} |");
        } else {
            let _ = write!(out, " {}: |", &dashes[..w - 1]);
        }
    }
    out.push('\n');
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

struct Target {
    what: String,
    met: Option<bool>,
    detail: String,
}

/// The targets of issue 18 (performance at the machine's limits), row by row.
fn targets18(res: &Results) -> Vec<Target> {
    let mut t = Vec::new();
    let med = |k: &str| res.get(k).and_then(|r| r.ward.median());
    let at_most = |what: &str, v: Option<f64>, limit: f64, unit: &str| -> Target {
        match v {
            None => Target {
                what: what.into(),
                met: None,
                detail: "not measured".into(),
            },
            Some(v) if v <= limit => Target {
                what: what.into(),
                met: Some(true),
                detail: format!("{} {unit}", fmt_num(v)),
            },
            Some(v) => Target {
                what: what.into(),
                met: Some(false),
                detail: format!(
                    "{} {unit}: missed by {} {unit} ({:.0}% over)",
                    fmt_num(v),
                    fmt_num(v - limit),
                    (v / limit - 1.0) * 100.0
                ),
            },
        }
    };
    t.push(at_most("ls, 100 apps: <= 3 ms", med("ls100"), 3.0, "ms"));
    t.push(at_most(
        "jlist, 100 apps: <= 5 ms",
        med("jlist100"),
        5.0,
        "ms",
    ));
    t.push(at_most(
        "daemon cold start to first answer: <= 5 ms",
        med("cold"),
        5.0,
        "ms",
    ));
    t.push(at_most(
        "start 100 apps until online: <= 80 ms",
        med("start100"),
        80.0,
        "ms",
    ));
    t.push(at_most(
        "20 `start` from a shell loop: <= 60 ms",
        med("start20"),
        60.0,
        "ms",
    ));
    t.push(at_most(
        "start 1000 apps until online: <= 1.5 s",
        med("start1000").map(|x| x / 1000.0),
        1.5,
        "s",
    ));
    t.push(at_most(
        "daemon RSS idle: <= 2 MiB",
        med("rss0"),
        2.0,
        "MiB",
    ));
    t.push(at_most(
        "daemon RSS, 100 apps: <= 4 MiB",
        med("rss100"),
        4.0,
        "MiB",
    ));
    t.push(at_most(
        "`make static` binary: <= 2 MiB",
        med("static"),
        2.0,
        "MiB",
    ));
    let frac_t = match (med("logtime"), med("logdirect")) {
        (Some(w), Some(d)) if d > 0.0 => Some(w / d * 100.0),
        _ => None,
    };
    t.push(match frac_t {
        None => Target {
            what: "log capture with --time: >= 70% of direct-to-file".into(),
            met: None,
            detail: "not measured".into(),
        },
        Some(f) => Target {
            what: "log capture with --time: >= 70% of direct-to-file".into(),
            met: Some(f >= 70.0),
            detail: format!("{f:.1} %"),
        },
    });
    t.push(at_most(
        "stop all, 1000 apps: kept <= 0.3 s",
        med("stop1000").map(|x| x / 1000.0),
        0.3,
        "s",
    ));
    t
}

/// The targets of issue 9, the first round.
fn targets(res: &Results, quick: bool) -> Vec<Target> {
    let mut t = Vec::new();
    let med = |k: &str, pm2: bool| {
        res.get(k)
            .and_then(|r| if pm2 { r.pm2.median() } else { r.ward.median() })
    };
    let mut check = |what: &str, v: Option<f64>, limit: f64, lower: bool, unit: &str| {
        let (met, detail) = match v {
            None => (None, "not measured".to_string()),
            Some(v) => {
                let ok = if lower { v < limit } else { v >= limit };
                let detail = if ok {
                    format!("{} {unit}", fmt_num(v))
                } else if lower {
                    format!(
                        "{} {unit}: missed by {} {unit} ({:.0}% over)",
                        fmt_num(v),
                        fmt_num(v - limit),
                        (v / limit - 1.0) * 100.0
                    )
                } else {
                    format!(
                        "{} {unit}: missed by {} {unit}",
                        fmt_num(v),
                        fmt_num(limit - v)
                    )
                };
                (Some(ok), detail)
            }
        };
        t.push(Target {
            what: what.into(),
            met,
            detail,
        });
    };
    // Issue 15: a reload of a cluster app refuses nothing (the worst run counts).
    check(
        "-i 2 reload: no request refused (worst run)",
        res.get("cluster_reload").and_then(|r| r.ward.max()),
        0.5,
        true,
        "requests",
    );
    check(
        "ls with 100 apps: median < 5 ms",
        med("ls100", false),
        5.0,
        true,
        "ms",
    );
    let r = res.get("ls100").and_then(ratio);
    check(
        "ls with 100 apps: >= 50x faster than pm2",
        r,
        50.0,
        false,
        "x",
    );
    check(
        "daemon RSS idle, 0 apps: < 2 MiB",
        med("rss0", false),
        2.0,
        true,
        "MiB",
    );
    check(
        "daemon RSS, 1000 apps: < 16 MiB",
        med("rss1000", false),
        16.0,
        true,
        "MiB",
    );
    for n in [0, 100, 1000] {
        let r = res.get(&format!("rss{n}")).and_then(ratio);
        check(
            &format!("daemon RSS, {n} apps: >= 20x smaller than pm2"),
            r,
            20.0,
            false,
            "x",
        );
    }
    check(
        "1000 apps started and online: < 2 s",
        med("start1000", false).map(|x| x / 1000.0),
        2.0,
        true,
        "s",
    );
    check(
        "crash-restart gap median: < 5 ms",
        med("crash", false),
        5.0,
        true,
        "ms",
    );
    let frac = match (med("log", false), med("logdirect", false)) {
        (Some(w), Some(d)) if d > 0.0 => Some(w / d * 100.0),
        _ => None,
    };
    check(
        "log capture: >= 70% of direct-to-file",
        frac,
        70.0,
        false,
        "%",
    );
    let frac_t = match (med("logtime", false), med("logdirect", false)) {
        (Some(w), Some(d)) if d > 0.0 => Some(w / d * 100.0),
        _ => None,
    };
    if frac_t.is_some() {
        check(
            "log capture with --time: >= 70% of direct-to-file",
            frac_t,
            70.0,
            false,
            "%",
        );
    }
    check(
        "idle with 100 apps: zero wake-ups",
        med("idlewake", false),
        0.5,
        true,
        "wake-ups",
    );
    if quick {
        t.push(Target {
            what: "10,000 apps end to end".into(),
            met: None,
            detail: "not run by bench-quick".into(),
        });
    } else {
        let ok = res.get("scale_start").is_some_and(|r| !r.ward.v.is_empty())
            && res.get("scale_stop").is_some_and(|r| !r.ward.v.is_empty());
        t.push(Target {
            what: "10,000 apps end to end".into(),
            met: Some(ok),
            detail: if ok {
                "start, ls, stop all done".into()
            } else {
                "did not complete (see notes)".into()
            },
        });
    }
    t
}

fn json_out(res: &Results, tg18: &[Target], tg: &[Target], quick: bool) -> String {
    let series = |s: &Series| {
        serde_json::json!({
            "median": s.median(), "min": s.min(), "max": s.max(),
            "p99": s.pct(99.0), "runs": s.v.len(), "values": s.v,
        })
    };
    let rows: Vec<serde_json::Value> = res
        .rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "key": r.key, "scenario": r.label, "unit": r.unit,
                "lower_is_better": r.lower,
                "ward": series(&r.ward),
                "pm2": if r.pm2.v.is_empty() { serde_json::Value::Null } else { series(&r.pm2) },
                "pm2_over_ward": ratio(r),
            })
        })
        .collect();
    let list = |tg: &[Target]| -> Vec<serde_json::Value> {
        tg.iter()
            .map(|t| serde_json::json!({"target": t.what, "met": t.met, "detail": t.detail}))
            .collect()
    };
    let v = serde_json::json!({
        "quick": quick,
        "time": SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        "rows": rows, "targets": list(tg18), "targets_issue9": list(tg), "notes": res.notes,
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------
// Scenarios.

struct Cfg {
    quick: bool,
    ward: PathBuf,
    pm2: Option<PathBuf>,
    /// Does `ward start FILE.json` read an ecosystem file?
    ward_eco: bool,
    ward_time: bool,
    only: Option<Vec<String>>,
}

impl Cfg {
    fn tools(&self) -> Vec<(Tool, PathBuf)> {
        let mut v = vec![(Tool::Ward, self.ward.clone())];
        if let Some(p) = &self.pm2 {
            v.push((Tool::Pm2, p.clone()));
        }
        v
    }
    fn wants(&self, s: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|x| x == s))
    }
    fn eco(&self, tool: Tool) -> bool {
        tool == Tool::Pm2 || self.ward_eco
    }
}

fn say(msg: impl std::fmt::Display) {
    eprintln!("[bench {}] {msg}", clock());
}

fn clock() -> String {
    let s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}

/// Detects whether this ward reads ecosystem files: `ward start eco.json` must register the
/// app inside, not an app named after the file.
fn detect_eco(ward: &Path) -> R<bool> {
    let rig = Rig::new(Tool::Ward, ward)?;
    let file = rig.ecosystem(1, "probe")?;
    let out = run_limited(
        rig.cmd(&["start", &file.to_string_lossy()]),
        Duration::from_secs(30),
    )?;
    if !out.status.success() {
        return Ok(false);
    }
    Ok(rig.apps()?.iter().any(|a| a.0 == "probe0"))
}

fn detect_time(ward: &Path) -> R<bool> {
    let out = run_limited(
        {
            let mut c = Command::new(ward);
            c.args(["help", "start"]);
            c
        },
        Duration::from_secs(10),
    )?;
    Ok(String::from_utf8_lossy(&out.stdout).contains("--time"))
}

/// Scenarios 1, 2, 3 and 6: for 0, 100 and 1000 apps, mass start, memory, `ls` latency,
/// idle cost (100 apps), `stop all`; and start+delete of one app.
fn populations(cfg: &Cfg, res: &mut Results) -> R<()> {
    let q = cfg.quick;
    // bench-quick leaves out 1000 apps: pm2 alone needs minutes to start and stop them.
    let sizes: &[usize] = if q { &[0, 100] } else { &[0, 100, 1000] };
    for &n in sizes {
        for (tool, bin) in cfg.tools() {
            let pm2 = tool == Tool::Pm2;
            // Mass start and stop all are repeated on fresh homes; the rest is measured once.
            // pm2 takes minutes to stop 1000 apps: once is enough.
            let pop_runs = match (n, q, pm2) {
                (0, _, _) | (_, true, _) => 1,
                (100, false, false) => 5,
                (100, false, true) => 3,
                (_, false, false) => 3,
                (_, false, true) => 1,
            };
            let ls_runs = match (q, pm2) {
                (true, false) => 10,
                (true, true) => 3,
                (false, false) => 30,
                (false, true) => 10,
            };
            for run in 0..pop_runs {
                let rig = Rig::new(tool, &bin)?;
                let daemon = rig.up()?;
                if n > 0 {
                    let eco = cfg.eco(tool);
                    say(format!(
                        "{}: starting {n} apps ({}), run {}/{pop_runs}",
                        tool.name(),
                        if eco {
                            "ecosystem file"
                        } else {
                            "scripts in one start"
                        },
                        run + 1
                    ));
                    let d = rig.mass_start(n, eco)?;
                    let label = format!(
                        "start {n} apps until online{}",
                        if eco { "" } else { " (*)" }
                    );
                    res.add(tool, &format!("start{n}"), &label, "ms", ms(d));
                }
                if run == 0 {
                    // ls latency.
                    rig.ok(&["ls"])?;
                    for _ in 0..ls_runs {
                        let d = rig.timed(&["ls"])?;
                        res.add(
                            tool,
                            &format!("ls{n}"),
                            &format!("ls, {n} apps"),
                            "ms",
                            ms(d),
                        );
                    }
                    // jlist latency: ~10 kB of pm2-shaped JSON per app.
                    if n > 0 {
                        rig.ok(&["jlist"])?;
                        for _ in 0..ls_runs {
                            let d = rig.timed(&["jlist"])?;
                            res.add(
                                tool,
                                &format!("jlist{n}"),
                                &format!("jlist, {n} apps"),
                                "ms",
                                ms(d),
                            );
                        }
                    }
                    // Memory after the daemon has served a few requests and gone idle: it
                    // closes its clients' reply sockets a second after the last one, then
                    // lets go of the code pages the requests ran (event_loop.rs). The first
                    // sample is at 1.5 s, the others 200 ms apart.
                    sleep(Duration::from_millis(1500))?;
                    for _ in 0..5 {
                        let rss = proc_field(daemon, "status", "VmRSS:").unwrap_or(0);
                        let pss = proc_field(daemon, "smaps_rollup", "Pss:").unwrap_or(0);
                        res.add(
                            tool,
                            &format!("rss{n}"),
                            &format!("daemon RSS, {n} apps"),
                            "MiB",
                            rss as f64 / 1024.0,
                        );
                        res.add(
                            tool,
                            &format!("pss{n}"),
                            &format!("daemon PSS, {n} apps"),
                            "MiB",
                            pss as f64 / 1024.0,
                        );
                        sleep(Duration::from_millis(200))?;
                    }
                    if n == 100 && cfg.wants("idle") {
                        idle(cfg, res, tool, daemon)?;
                    }
                    if n == 0 {
                        let runs = match (q, pm2) {
                            (true, false) => 10,
                            (true, true) => 3,
                            (false, false) => 30,
                            (false, true) => 10,
                        };
                        for _ in 0..runs {
                            let d1 = rig.timed(&[
                                "start",
                                "/bin/sleep",
                                "--name",
                                "one",
                                "--",
                                "100000",
                            ])?;
                            let d2 = rig.timed(&["delete", "one"])?;
                            res.add(
                                tool,
                                "startdel",
                                "start + delete one app",
                                "ms",
                                ms(d1 + d2),
                            );
                        }
                        // pm2 takes most of a second per start: fewer runs.
                        let loops = match (q, pm2) {
                            (true, false) => 3,
                            (true, true) => 1,
                            (false, false) => 10,
                            (false, true) => 3,
                        };
                        starts_in_a_loop(&rig, res, loops)?;
                    }
                }
                if n > 0 {
                    let d = rig.timed(&["stop", "all"])?;
                    res.add(
                        tool,
                        &format!("stop{n}"),
                        &format!("stop all, {n} apps"),
                        "ms",
                        ms(d),
                    );
                }
            }
        }
    }
    Ok(())
}

/// Twenty `start` commands from a shell loop, as a deploy script runs them: mostly the
/// cost of twenty client processes (exec, start-up, one round trip each).
fn starts_in_a_loop(rig: &Rig, res: &mut Results, runs: usize) -> R<()> {
    let bin = rig.bin.to_string_lossy().into_owned();
    for run in 0..runs {
        // `"$0"` is the manager's binary: no PATH lookup, no word splitting.
        let script = format!(
            "for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do \
               \"$0\" start /bin/sleep --name loop{run}-$i -- 100000 >/dev/null || exit 1; done"
        );
        let mut c = Command::new("/bin/sh");
        c.arg("-c").arg(&script).arg(&bin);
        c.current_dir(&rig.work).stdin(Stdio::null());
        match rig.tool {
            Tool::Ward => c.env("WARD_HOME", &rig.home),
            Tool::Pm2 => c.env("PM2_HOME", &rig.home),
        };
        c.env("NO_COLOR", "1");
        check()?;
        let t = Instant::now();
        let out = run_limited(c, Duration::from_secs(300))?;
        let d = t.elapsed();
        if !out.status.success() {
            return Err(format!(
                "{}: 20 starts in a shell loop failed: {}",
                rig.tool.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        res.add(
            rig.tool,
            "start20",
            "20 `start` from a shell loop",
            "ms",
            ms(d),
        );
        rig.ok(&["delete", "all"])?;
    }
    Ok(())
}

/// The daemon's cold start: from `ping` on a home with no daemon to its answer (the client
/// starts the daemon and waits for it). A fresh home per run.
fn cold(cfg: &Cfg, res: &mut Results) -> R<()> {
    let runs = if cfg.quick { 5 } else { 20 };
    // The floor of every latency here: a program that does nothing, started and waited
    // for the same way (the machine's exec, fork and pipes, and this harness).
    for _ in 0..runs {
        let t = Instant::now();
        run_limited(Command::new("/bin/true"), Duration::from_secs(10))?;
        res.add(
            Tool::Ward,
            "floor",
            "(floor) `/bin/true`, run as the commands are",
            "ms",
            ms(t.elapsed()),
        );
    }
    for (tool, bin) in cfg.tools() {
        let runs = if tool == Tool::Pm2 { runs.min(5) } else { runs };
        say(format!("{}: daemon cold start × {runs}", tool.name()));
        for _ in 0..runs {
            let rig = Rig::new(tool, &bin)?;
            let d = rig.timed(&["ping"])?;
            res.add(
                tool,
                "cold",
                "daemon cold start to first answer",
                "ms",
                ms(d),
            );
        }
    }
    Ok(())
}

/// The size of `make static`'s binary (WARD_STATIC_BIN, else the newest
/// target/TRIPLE/release/ward, which `make bench` builds first: an older build for another
/// target, such as a glibc static one, must not be taken for it), and whether it is
/// really static.
fn static_size(_cfg: &Cfg, res: &mut Results) -> R<()> {
    let path = std::env::var_os("WARD_STATIC_BIN")
        .map(PathBuf::from)
        .or_else(|| {
            let target = Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
            std::fs::read_dir(target)
                .ok()?
                .flatten()
                .map(|e| e.path().join("release/ward"))
                .filter_map(|p| Some((std::fs::metadata(&p).ok()?.modified().ok()?, p)))
                .max()
                .map(|(_, p)| p)
        });
    let Some(path) = path else {
        res.notes
            .push("no static binary (run `make static`, or set WARD_STATIC_BIN)".into());
        return Ok(());
    };
    let bytes = std::fs::metadata(&path)
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let dynamic = std::fs::read(&path).map(|b| has_interp(&b)).unwrap_or(true);
    res.add(
        Tool::Ward,
        "static",
        "`make static` binary size",
        "MiB",
        bytes as f64 / 1048576.0,
    );
    res.notes.push(format!(
        "static binary: {} ({bytes} bytes, {})",
        path.display(),
        if dynamic {
            "NOT static: it names a dynamic loader"
        } else {
            "static"
        }
    ));
    Ok(())
}

/// Does this ELF64 file name a program interpreter (a PT_INTERP program header)? A static
/// executable has none: no ld.so, no libc.so.
fn has_interp(b: &[u8]) -> bool {
    let num = |at: usize, n: usize| -> usize {
        b.get(at..at + n)
            .map(|x| x.iter().rev().fold(0usize, |acc, &y| acc << 8 | y as usize))
            .unwrap_or(0)
    };
    if b.get(..4) != Some(b"\x7fELF") {
        return true;
    }
    let (phoff, phentsize, phnum) = (num(0x20, 8), num(0x36, 2), num(0x38, 2));
    (0..phnum).any(|i| num(phoff + i * phentsize, 4) == 3)
}

/// Scenario 6: CPU ticks and voluntary context switches of the daemon over a quiet window.
fn idle(cfg: &Cfg, res: &mut Results, tool: Tool, daemon: u32) -> R<()> {
    let secs = if cfg.quick { 5 } else { 30 };
    say(format!(
        "{}: idle window of {secs} s with 100 apps",
        tool.name()
    ));
    let (t0, w0) = (cpu_ticks(daemon), voluntary_switches(daemon));
    sleep(Duration::from_secs(secs))?;
    let (t1, w1) = (cpu_ticks(daemon), voluntary_switches(daemon));
    if let (Some(t0), Some(t1), Some(w0), Some(w1)) = (t0, t1, w0, w1) {
        res.add(
            tool,
            "idleticks",
            &format!("idle 100 apps {secs} s: CPU ticks"),
            "ticks",
            (t1 - t0) as f64,
        );
        res.add(
            tool,
            "idlewake",
            &format!("idle 100 apps {secs} s: wake-ups"),
            "switches",
            (w1 - w0) as f64,
        );
    }
    Ok(())
}

/// Scenario 4: the gap between consecutive starts of an app that exits at once.
fn crash(cfg: &Cfg, res: &mut Results) -> R<()> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let me = me.to_string_lossy().into_owned();
    for (tool, bin) in cfg.tools() {
        let rig = Rig::new(tool, &bin)?;
        rig.up()?;
        let stamps = rig.work.join("stamps");
        let stamps_s = stamps.to_string_lossy().into_owned();
        say(format!("{}: crash loop, 51 starts", tool.name()));
        let mut args = vec![
            "start",
            &me,
            "--name",
            "crash",
            "--max-restarts",
            "1000",
            "--restart-delay",
            "0",
        ];
        match tool {
            // pm2's CLI has no --min-uptime; 1000 unstable restarts are far off anyway.
            Tool::Pm2 => args.extend(["--interpreter", "none"]),
            Tool::Ward => args.extend(["--min-uptime", "0"]),
        }
        args.extend(["--", "--crasher", &stamps_s]);
        rig.ok(&args)?;
        let t = Instant::now();
        let times: Vec<u128> = loop {
            let s = std::fs::read_to_string(&stamps).unwrap_or_default();
            let v: Vec<u128> = s.lines().filter_map(|l| l.parse().ok()).collect();
            if v.len() >= 51 {
                break v;
            }
            if t.elapsed() > Duration::from_secs(120) {
                res.notes.push(format!(
                    "{}: crash loop gave only {} starts in 120 s",
                    tool.name(),
                    v.len()
                ));
                break v;
            }
            sleep(Duration::from_millis(20))?;
        };
        rig.ok(&["delete", "crash"])?;
        let mut gaps = Series::default();
        for w in times.windows(2).take(50) {
            gaps.push(w[1].saturating_sub(w[0]) as f64 / 1e6);
        }
        for g in &gaps.v {
            res.add(tool, "crash", "crash-restart gap (median)", "ms", *g);
        }
        if let Some(p) = gaps.pct(99.0) {
            res.add(tool, "crash99", "crash-restart gap (p99)", "ms", p);
        }
    }
    Ok(())
}

/// Scenario 5: an app writing to stdout flat out, into the log file; against the same
/// writer redirected straight into a file.
fn logs(cfg: &Cfg, res: &mut Results) -> R<()> {
    let me = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let bytes: u64 = if cfg.quick { 128 << 20 } else { 1 << 30 };
    let runs = if cfg.quick { 2 } else { 3 };
    let mb = bytes as f64 / 1e6;
    let bytes_s = bytes.to_string();
    // The machine's limit: the writer's stdout is the file itself.
    {
        let rig = Rig::new(Tool::Ward, &cfg.ward)?;
        for _ in 0..runs {
            let f = rig.work.join("direct.log");
            let file = std::fs::File::create(&f).map_err(|e| e.to_string())?;
            let t = Instant::now();
            let child = Command::new(&me)
                .args(["--writer", &bytes_s])
                .stdin(Stdio::null())
                .stdout(file)
                .stderr(Stdio::piped())
                .spawn()
                .map_err(|e| e.to_string())?;
            wait_limited(child, Duration::from_secs(300))?;
            let d = t.elapsed();
            res.add(
                Tool::Ward,
                "logdirect",
                "log: writer straight to a file (limit)",
                "MB/s",
                mb / d.as_secs_f64(),
            );
            let _ = std::fs::remove_file(&f);
        }
    }
    let me_s = me.to_string_lossy().into_owned();
    for (tool, bin) in cfg.tools() {
        let stamp_modes: &[bool] = match tool {
            Tool::Ward if cfg.ward_time => &[false, true],
            Tool::Ward => &[false],
            Tool::Pm2 => &[false, true],
        };
        for &time in stamp_modes {
            // pm2 is slow enough (and with --time slower still) that a smaller volume
            // measures the same rate in far less time.
            let bytes = match (tool, time) {
                (Tool::Ward, _) => bytes,
                (Tool::Pm2, false) => bytes / 4,
                (Tool::Pm2, true) => bytes / 16,
            };
            let mb = bytes as f64 / 1e6;
            let bytes_s = bytes.to_string();
            let rig = Rig::new(tool, &bin)?;
            rig.up()?;
            say(format!(
                "{}: log capture{} of {} MB × {runs}",
                tool.name(),
                if time { " with --time" } else { "" },
                mb as u64
            ));
            for run in 0..runs {
                let name = format!("writer{run}");
                let log = rig.home.join("logs").join(format!("{name}-out.log"));
                let mut args = vec!["start", &me_s, "--name", &name, "--no-autorestart"];
                if time {
                    args.push("--time");
                }
                if tool == Tool::Pm2 {
                    args.extend(["--interpreter", "none"]);
                }
                let done = rig.work.join(format!("{name}.done"));
                let done_s = done.to_string_lossy().into_owned();
                args.extend(["--", "--writer", &bytes_s, &done_s]);
                let t = Instant::now();
                rig.ok(&args)?;
                // Done when the last line is in the file; or, should the manager lose
                // output, once the writer has finished and the file stopped growing for 2 s
                // (the time is then that of the last growth).
                let (mut size, mut grew) = (0u64, Instant::now());
                let d = loop {
                    if ends_with_end(&log, bytes) {
                        size = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(size);
                        break t.elapsed();
                    }
                    let now = std::fs::metadata(&log).map(|m| m.len()).unwrap_or(0);
                    if now != size {
                        (size, grew) = (now, Instant::now());
                    } else if done.exists() && grew.elapsed() > Duration::from_secs(2) {
                        res.notes.push(if time {
                            format!(
                                "{}: log capture with --time: the writer's last line never \
                                 reached the log file ({size} bytes with timestamps)",
                                tool.name()
                            )
                        } else {
                            format!(
                                "{}: log capture: {size} of {} bytes reached the log file",
                                tool.name(),
                                bytes + 4
                            )
                        });
                        break grew.duration_since(t);
                    }
                    if t.elapsed() > Duration::from_secs(600) {
                        return Err(format!("{}: log never reached its end", tool.name()));
                    }
                    sleep(Duration::from_millis(2))?;
                };
                let (key, label) = if time {
                    ("logtime", "log capture with timestamps")
                } else {
                    ("log", "log capture")
                };
                // Without timestamps the file holds what was written; with them, more: the
                // rate is of the app's output either way.
                let got = if time { bytes } else { size.min(bytes) };
                res.add(tool, key, label, "MB/s", got as f64 / 1e6 / d.as_secs_f64());
                rig.ok(&["delete", &name])?;
                let _ = std::fs::remove_file(&log);
            }
        }
    }
    Ok(())
}

fn ends_with_end(p: &Path, bytes: u64) -> bool {
    let Ok(mut f) = std::fs::File::open(p) else {
        return false;
    };
    let Ok(len) = f.seek(SeekFrom::End(0)) else {
        return false;
    };
    if len < bytes || f.seek(SeekFrom::Start(len - 16)).is_err() {
        return false;
    }
    let mut tail = Vec::new();
    let _ = f.read_to_end(&mut tail);
    tail.ends_with(b"END\n")
}

/// Scenario 7: 10,000 sleep apps, ward alone, started in batches of 500 so that a slow
/// start shows where it slows down and the scenario ends within its time budget.
fn scale(cfg: &Cfg, res: &mut Results) -> R<()> {
    const N: usize = 10_000;
    const BATCH: usize = 500;
    let budget = Duration::from_secs(
        std::env::var("BENCH_SCALE_BUDGET_S")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(300),
    );
    let rig = Rig::new(Tool::Ward, &cfg.ward)?;
    let daemon = rig.up()?;
    say(format!(
        "ward: starting {N} apps in batches of {BATCH} ({}), budget {budget:?}",
        if cfg.ward_eco {
            "ecosystem files"
        } else {
            "scripts in one start"
        }
    ));
    let t = Instant::now();
    let mut started = 0;
    let mut curve = Vec::new();
    while started < N {
        let b = Instant::now();
        if let Err(e) = rig.start_batch(started, started + BATCH, cfg.ward_eco) {
            check()?;
            res.notes
                .push(format!("10,000 apps: start failed after {started}: {e}"));
            break;
        }
        started += BATCH;
        curve.push(format!("{started}: {:.1} s", b.elapsed().as_secs_f64()));
        say(format!(
            "ward: {started} apps, batch took {:.1} s",
            b.elapsed().as_secs_f64()
        ));
        if started < N && t.elapsed() > budget {
            res.notes.push(format!(
                "10,000 apps: stopped starting at {started} apps, over the {budget:?} budget"
            ));
            break;
        }
    }
    res.notes.push(format!(
        "10,000 apps: time per batch of {BATCH} (apps registered after it: time): {}",
        curve.join(", ")
    ));
    let online = rig
        .apps()
        .map(|a| a.iter().filter(|x| x.1 == "online").count());
    match online {
        Ok(k) if k >= N => {
            res.add(
                Tool::Ward,
                "scale_start",
                "10,000 apps: start until online",
                "ms",
                ms(t.elapsed()),
            );
        }
        Ok(k) => res
            .notes
            .push(format!("10,000 apps: {k} online when the start ended")),
        Err(e) => res.notes.push(format!("10,000 apps: jlist failed: {e}")),
    }
    for _ in 0..3 {
        match rig.timed(&["ls"]) {
            Ok(d) => res.add(
                Tool::Ward,
                "scale_ls",
                &format!("{started} apps: ls"),
                "ms",
                ms(d),
            ),
            Err(e) => {
                check()?;
                res.notes.push(format!("10,000 apps: ls failed: {e}"));
                break;
            }
        }
    }
    let rss = proc_field(daemon, "status", "VmRSS:").unwrap_or(0);
    res.add(
        Tool::Ward,
        "scale_rss",
        &format!("{started} apps: daemon RSS"),
        "MiB",
        rss as f64 / 1024.0,
    );
    let pss = proc_field(daemon, "smaps_rollup", "Pss:").unwrap_or(0);
    res.add(
        Tool::Ward,
        "scale_pss",
        &format!("{started} apps: daemon PSS"),
        "MiB",
        pss as f64 / 1024.0,
    );
    match rig.timed(&["stop", "all"]) {
        Ok(d) => res.add(
            Tool::Ward,
            "scale_stop",
            &format!("{started} apps: stop all"),
            "ms",
            ms(d),
        ),
        Err(e) => {
            check()?;
            res.notes.push(format!("10,000 apps: stop all failed: {e}"));
        }
    }
    Ok(())
}

/// A runtime in the foreground: killed with everything under it when dropped.
struct Foreground(Child);

impl Drop for Foreground {
    fn drop(&mut self) {
        let mut victims: Vec<i64> = descendants(self.0.id())
            .into_iter()
            .map(|(p, _)| p as i64)
            .collect();
        victims.push(self.0.id() as i64);
        sigkill(&victims);
        let _ = self.0.wait();
    }
}

/// Scenario 6: the container runtime (`ward runtime`, `pm2-runtime`) with an ecosystem of 4
/// apps: from its start to the first app running (the app's first instruction marks it),
/// and the memory of the runtime itself (with its helpers, not the apps) once all 4 run.
fn runtime(cfg: &Cfg, res: &mut Results) -> R<()> {
    let runs = if cfg.quick { 2 } else { 5 };
    let mut tools = vec![(Tool::Ward, cfg.ward.clone())];
    if let Some(p) = &cfg.pm2 {
        match p
            .parent()
            .map(|d| d.join("pm2-runtime"))
            .filter(|r| r.exists())
        {
            Some(r) => tools.push((Tool::Pm2, r)),
            None => res
                .notes
                .push("pm2-runtime is not next to pm2: the runtime rows are ward's alone".into()),
        }
    }
    for (tool, bin) in tools {
        say(format!("{}: runtime with 4 apps, {runs} runs", tool.name()));
        for _ in 0..runs {
            let rig = Rig::new(tool, &bin)?;
            let marks = rig.work.join("marks");
            std::fs::create_dir_all(&marks).map_err(|e| e.to_string())?;
            let app = rig.work.join("app.sh");
            {
                use std::os::unix::fs::PermissionsExt;
                std::fs::write(&app, "#!/bin/sh\n: > \"$MARKS/$$\"\nexec sleep 100000\n")
                    .map_err(|e| e.to_string())?;
                std::fs::set_permissions(&app, std::fs::Permissions::from_mode(0o755))
                    .map_err(|e| e.to_string())?;
            }
            let apps: Vec<serde_json::Value> = (0..4)
                .map(|i| {
                    serde_json::json!({
                        "name": format!("r{i}"),
                        "script": app.to_string_lossy(),
                        "interpreter": "none",
                        "env": { "MARKS": marks.to_string_lossy() },
                    })
                })
                .collect();
            let eco = rig.work.join("runtime.json");
            std::fs::write(&eco, serde_json::json!({ "apps": apps }).to_string())
                .map_err(|e| e.to_string())?;
            let mut c = Command::new(&bin);
            if tool == Tool::Ward {
                c.arg("runtime");
            }
            c.arg(&eco)
                .current_dir(&rig.work)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            match tool {
                Tool::Ward => c.env("WARD_HOME", &rig.home),
                Tool::Pm2 => c.env("PM2_HOME", &rig.home),
            };
            let count = || std::fs::read_dir(&marks).map_or(0, |d| d.count());
            let t = Instant::now();
            let child = Foreground(
                c.spawn()
                    .map_err(|e| format!("start {}: {e}", bin.display()))?,
            );
            while count() == 0 {
                if t.elapsed() > Duration::from_secs(60) {
                    return Err(format!("{}: no app ran within 60 s", bin.display()));
                }
                sleep(Duration::from_micros(200))?;
            }
            let first = t.elapsed();
            while count() < 4 {
                if t.elapsed() > Duration::from_secs(60) {
                    return Err(format!("{}: 4 apps did not run within 60 s", bin.display()));
                }
                sleep(Duration::from_millis(5))?;
            }
            sleep(Duration::from_secs(1))?;
            let root = child.0.id();
            let kb: u64 = std::iter::once(root)
                .chain(descendants(root).into_iter().map(|(p, _)| p))
                .filter(|&p| {
                    std::fs::read(format!("/proc/{p}/cmdline"))
                        .map(|c| {
                            c.split(|&b| b == 0)
                                .next()
                                .unwrap_or(&[])
                                .ends_with(b"sleep")
                        })
                        .is_ok_and(|app| !app)
                })
                .filter_map(|p| proc_field(p, "status", "VmRSS:"))
                .sum();
            res.add(
                tool,
                "rt_first",
                "runtime: start to first app running (of 4)",
                "ms",
                ms(first),
            );
            res.add(
                tool,
                "rt_rss",
                "runtime RSS, 4 apps (with helpers, apps excluded)",
                "MiB",
                kb as f64 / 1024.0,
            );
            let _ = Command::new("kill")
                .args(["-TERM", &root.to_string()])
                .status();
            let until = Instant::now() + Duration::from_secs(20);
            let mut child = child;
            while child.0.try_wait().map_err(|e| e.to_string())?.is_none() && Instant::now() < until
            {
                sleep(Duration::from_millis(10))?;
            }
        }
    }
    Ok(())
}

/// Ends the load threads of the cluster scenario.
static LOAD_STOP: AtomicBool = AtomicBool::new(false);

/// One HTTP/1.0 GET on 127.0.0.1:port; true when it got a 200.
fn http_get(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    if s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n").is_err() {
        return false;
    }
    let mut out = Vec::new();
    s.read_to_end(&mut out).is_ok() && out.starts_with(b"HTTP/1.1 200")
}

/// Requests served on `port` by `clients` threads of sequential requests for `d`; (served,
/// failed). The load is bounded: one request in flight per thread.
fn load(port: u16, clients: usize, d: Duration) -> (u64, u64) {
    let t = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let (mut ok, mut bad) = (0u64, 0u64);
                while t.elapsed() < d && !LOAD_STOP.load(Ordering::SeqCst) && check().is_ok() {
                    if http_get(port) {
                        ok += 1;
                    } else {
                        bad += 1;
                    }
                }
                (ok, bad)
            })
        })
        .collect();
    threads
        .into_iter()
        .filter_map(|h| h.join().ok())
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

const CLUSTER_APP: &str = "const http = require('http');\n\
    const server = http.createServer((q, s) => { s.setHeader('Connection', 'close'); s.end(String(process.pid)); });\n\
    server.listen(+process.env.PORT, '127.0.0.1');\n\
    process.on('SIGINT', () => server.close(() => process.exit(0)));\n";

/// Scenario 8: an HTTP app in cluster mode with two copies (`-i 2`): requests served per
/// second through the shared port, and requests refused while `reload` replaces the copies.
fn cluster(cfg: &Cfg, res: &mut Results) -> R<()> {
    let secs = if cfg.quick { 3 } else { 10 };
    let reloads = if cfg.quick { 2 } else { 5 };
    for (tool, bin) in cfg.tools() {
        let rig = Rig::new(tool, &bin)?;
        rig.up()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| format!("a free port: {e}"))?
            .port();
        let app = rig.work.join("server.js");
        std::fs::write(&app, CLUSTER_APP).map_err(|e| e.to_string())?;
        let mut c = rig.cmd(&["start", &app.to_string_lossy(), "-i", "2", "--name", "web"]);
        c.env("PORT", port.to_string());
        let out = run_limited(c, Duration::from_secs(60))?;
        if !out.status.success() {
            return Err(format!(
                "{} start -i 2: {}",
                tool.name(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        rig.wait_online(2, Duration::from_secs(60), Duration::from_millis(50))?;
        let t = Instant::now();
        while !http_get(port) {
            if t.elapsed() > Duration::from_secs(30) {
                return Err(format!("{}: port {port} does not answer", tool.name()));
            }
            sleep(Duration::from_millis(50))?;
        }
        say(format!(
            "{}: -i 2 http, {secs} s of load, 4 clients",
            tool.name()
        ));
        let (ok, bad) = load(port, 4, Duration::from_secs(secs));
        check()?;
        res.add(
            tool,
            "cluster_rps",
            "http through -i 2 (cluster)",
            "req/s",
            ok as f64 / secs as f64,
        );
        if bad > 0 {
            res.notes.push(format!(
                "{}: {bad} requests failed under plain load",
                tool.name()
            ));
        }
        for i in 0..reloads {
            say(format!(
                "{}: reload {} of {reloads} under load",
                tool.name(),
                i + 1
            ));
            let client = std::thread::spawn(move || load(port, 1, Duration::from_secs(120)));
            sleep(Duration::from_millis(300))?;
            let r = rig.timed(&["reload", "web"]);
            // Let the replaced copies finish, still under load.
            sleep(Duration::from_millis(500))?;
            LOAD_STOP.store(true, Ordering::SeqCst);
            let (_, failed) = client.join().map_err(|_| "client thread panicked")?;
            LOAD_STOP.store(false, Ordering::SeqCst);
            check()?;
            let d = r?;
            res.add(
                tool,
                "cluster_reload",
                "-i 2 reload: requests refused",
                "requests",
                failed as f64,
            );
            res.add(
                tool,
                "cluster_reload_ms",
                "-i 2 reload: duration",
                "ms",
                ms(d),
            );
            rig.wait_online(2, Duration::from_secs(60), Duration::from_millis(50))?;
        }
    }
    Ok(())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn find_pm2() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("PM2_BIN").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("pm2"))
        .find(|p| p.is_file())
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("--crasher") => crasher(args.get(1).map(String::as_str).unwrap_or("/dev/null")),
        Some("--writer") => writer(
            args.get(1).and_then(|s| s.parse().ok()).unwrap_or(0),
            args.get(2).map(String::as_str),
        ),
        _ => {}
    }
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        let _ = signal_hook::flag::register(sig, Arc::clone(&flag));
    }
    let _ = STOP.set(flag);
    match bench(&args) {
        Ok(()) => {}
        Err(e) => {
            eprintln!("bench: {e}");
            std::process::exit(1);
        }
    }
}

fn bench(args: &[String]) -> R<()> {
    let mut quick = false;
    let mut json = false;
    let mut no_pm2 = false;
    let mut only = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--quick" => quick = true,
            "--json" => json = true,
            "--no-pm2" => no_pm2 = true,
            "--only" => {
                only = it
                    .next()
                    .map(|s| s.split(',').map(String::from).collect::<Vec<_>>())
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench [--quick] [--json] [--no-pm2] [--only static,cold,pop,idle,crash,logs,runtime,cluster,scale]\n\
                     WARD_BIN (default target/release/ward), PM2_BIN (default pm2 on PATH)"
                );
                return Ok(());
            }
            _ => return Err(format!("unknown argument {a:?}; try --help")),
        }
    }
    let ward = std::env::var_os("WARD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/ward"));
    if !ward.is_file() {
        return Err(format!(
            "{} not found; run `cargo build --release` first (make bench does)",
            ward.display()
        ));
    }
    let pm2 = if no_pm2 { None } else { find_pm2() };
    let ward_eco = detect_eco(&ward)?;
    let ward_time = detect_time(&ward)?;
    let cfg = Cfg {
        quick,
        ward,
        pm2,
        ward_eco,
        ward_time,
        only,
    };
    let mut res = Results::default();
    // Not `pm2 --version`: that spawns a daemon. The package.json next to the real script.
    let pm2_version = cfg.pm2.as_ref().and_then(|p| {
        let real = std::fs::canonicalize(p).ok()?;
        let pkg = real
            .ancestors()
            .skip(1)
            .find_map(|d| std::fs::read_to_string(d.join("package.json")).ok())?;
        let v: serde_json::Value = serde_json::from_str(&pkg).ok()?;
        v["version"].as_str().map(String::from)
    });
    match (&cfg.pm2, &pm2_version) {
        (Some(p), Some(v)) => res.notes.push(format!("pm2 {v} from {}", p.display())),
        (Some(p), None) => res
            .notes
            .push(format!("pm2 (version unknown) from {}", p.display())),
        (None, _) if no_pm2 => res.notes.push("pm2 left out (--no-pm2); ward alone".into()),
        (None, _) => res
            .notes
            .push("pm2 not found (set PM2_BIN or put pm2 on PATH); ward alone".into()),
    }
    res.notes.push(format!(
        "ward mass start: {}",
        if cfg.ward_eco {
            "one `ward start ecosystem.json`"
        } else {
            "(*) one `ward start s0 s1 …` with N scripts that exec sleep (this ward does not read ecosystem files)"
        }
    ));
    if !cfg.ward_time {
        res.notes
            .push("ward has no --time: log capture with timestamps is pm2's alone".into());
    }
    let load0 = loadavg();
    let started = Instant::now();
    // A scenario that fails leaves a note and the others still run; an interrupt ends all.
    type Scenario = fn(&Cfg, &mut Results) -> R<()>;
    let scenarios: [(&str, bool, Scenario); 8] = [
        ("static", cfg.wants("static"), static_size),
        ("cold", cfg.wants("cold"), cold),
        ("pop", cfg.wants("pop") || cfg.wants("idle"), populations),
        ("crash", cfg.wants("crash"), crash),
        ("logs", cfg.wants("logs"), logs),
        ("runtime", cfg.wants("runtime"), runtime),
        ("cluster", cfg.wants("cluster"), cluster),
        ("scale", !quick && cfg.wants("scale"), scale),
    ];
    for (name, wanted, f) in scenarios {
        if wanted {
            if let Err(e) = f(&cfg, &mut res) {
                check()?;
                say(format!("scenario {name} failed: {e}"));
                res.notes.push(format!("scenario {name} failed: {e}"));
            }
        }
    }
    res.notes.push(format!(
        "{} run in {:.0} s on {} CPUs",
        if quick { "quick" } else { "full" },
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0)
    ));
    res.notes.push(format!(
        "load average (1 min) at start {load0}, at end {}: other work on the machine slows the timings",
        loadavg()
    ));
    let tg18 = targets18(&res);
    let tg = targets(&res, quick);
    if json {
        println!("{}", json_out(&res, &tg18, &tg, quick));
        return Ok(());
    }
    print!("{}", table(&res));
    println!(
        "\npm2/ward: how many times better ward is (time and memory: pm2 ÷ ward; throughput: ward ÷ pm2)."
    );
    for n in &res.notes {
        println!("- {n}");
    }
    for (title, tg) in [
        ("Targets (issue 18)", &tg18),
        ("Earlier targets (issues 9 and 15)", &tg),
    ] {
        println!("\n{title}:");
        print_targets(tg);
    }
    Ok(())
}

fn print_targets(tg: &[Target]) {
    for t in tg {
        let mark = match t.met {
            Some(true) => "met   ",
            Some(false) => "MISSED",
            None => "n/a   ",
        };
        println!("  [{mark}] {}: {}", t.what, t.detail);
    }
}
