//! Shared test harness: a temporary WARD_HOME, the real `ward` binary, and waiting on
//! conditions with a deadline. `Home`'s `Drop` kills the daemon and every app it started,
//! even when the test panics.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_ward");

/// The binary `Home` runs: `WARD_TEST_BIN` when set (`make static-check` runs tests
/// against the static build), else the one cargo built.
pub fn bin() -> &'static str {
    static B: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    B.get_or_init(|| {
        std::env::var("WARD_TEST_BIN")
            .ok()
            .filter(|b| !b.is_empty())
            .unwrap_or_else(|| BIN.to_string())
    })
}

pub struct Home {
    pub root: PathBuf,
    /// A scratch folder for the test's scripts; apps run here by default.
    pub dir: PathBuf,
}

impl Home {
    pub fn new(name: &str) -> Home {
        let base = std::env::temp_dir().join(format!(
            "ward-test-{}-{}-{}",
            name,
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        ));
        let root = base.join("home");
        let dir = base.join("work");
        std::fs::create_dir_all(&dir).unwrap();
        Home { root, dir }
    }

    /// Writes a file in the scratch folder (mode 0755) and returns its path.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.join(name);
        std::fs::write(&p, body).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(bin());
        c.args(args)
            .env("WARD_HOME", &self.root)
            .env_remove("NO_COLOR")
            .current_dir(&self.dir)
            .stdin(Stdio::null());
        c
    }

    /// Runs `ward ARGS` and returns its output, whatever its exit code.
    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("run ward")
    }

    /// Runs `ward ARGS`, asserts success, returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "ward {args:?} failed ({}):\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `ward ARGS`, asserts failure, returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "ward {args:?} should have failed:\nstdout:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    /// `ward jlist`, parsed.
    pub fn jlist(&self) -> Vec<serde_json::Value> {
        let s = self.ok(&["jlist"]);
        serde_json::from_str(&s).unwrap_or_else(|e| panic!("jlist is not JSON ({e}):\n{s}"))
    }

    /// The app named `name`, from jlist.
    pub fn app(&self, name: &str) -> Option<serde_json::Value> {
        self.jlist().into_iter().find(|a| a["name"] == name)
    }

    pub fn status(&self, name: &str) -> Option<String> {
        self.app(name)
            .map(|a| a["pm2_env"]["status"].as_str().unwrap_or("").to_string())
    }

    pub fn pid(&self, name: &str) -> Option<u32> {
        self.app(name)
            .and_then(|a| a["pid"].as_u64())
            .filter(|&p| p != 0)
            .map(|p| p as u32)
    }

    pub fn log_path(&self, file: &str) -> PathBuf {
        self.root.join("logs").join(file)
    }

    pub fn read_log(&self, file: &str) -> String {
        std::fs::read_to_string(self.log_path(file)).unwrap_or_default()
    }

    pub fn daemon_pid(&self) -> Option<u32> {
        std::fs::read_to_string(self.root.join("ward.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }
}

impl Home {
    /// Runs `ward ARGS` with extra environment variables, whatever its exit code.
    pub fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = self.cmd(args);
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().expect("run ward")
    }

    /// `(id, name, pid, status, restart_time)` of every app: what a failed request must
    /// leave untouched.
    pub fn snapshot(&self) -> Vec<(u64, String, u64, String, u64)> {
        self.jlist()
            .iter()
            .map(|a| {
                (
                    a["pm_id"].as_u64().unwrap(),
                    a["name"].as_str().unwrap().to_string(),
                    a["pid"].as_u64().unwrap(),
                    a["pm2_env"]["status"].as_str().unwrap().to_string(),
                    a["pm2_env"]["restart_time"].as_u64().unwrap(),
                )
            })
            .collect()
    }

    /// The app's jlist entry, asserting it exists.
    pub fn must(&self, name: &str) -> serde_json::Value {
        self.app(name)
            .unwrap_or_else(|| panic!("no app {name:?} in jlist: {:?}", self.snapshot()))
    }

    pub fn restarts(&self, name: &str) -> u64 {
        self.must(name)["pm2_env"]["restart_time"].as_u64().unwrap()
    }

    /// Waits until `name` is online with a pid, and returns the pid.
    pub fn wait_online(&self, name: &str) -> u32 {
        let mut pid = None;
        wait_until(secs(10), &format!("{name} online"), || {
            pid = self
                .pid(name)
                .filter(|_| self.status(name).as_deref() == Some("online"));
            pid.is_some()
        });
        pid.unwrap()
    }

    /// Waits until the log file `file` contains `needle`; returns the whole file.
    pub fn wait_log(&self, file: &str, needle: &str) -> String {
        let mut text = String::new();
        wait_until(secs(10), &format!("{needle:?} in {file}"), || {
            text = self.read_log(file);
            text.contains(needle)
        });
        text
    }

    pub fn socket(&self) -> PathBuf {
        self.root.join("ward.sock")
    }
}

/// argv of a process, from /proc/PID/cmdline.
pub fn cmdline(pid: u32) -> Vec<String> {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect()
}

/// Live (non-zombie) processes whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if f.first() != Some(&"Z") && f.get(2).and_then(|g| g.parse::<u32>().ok()) == Some(pgid) {
            out.push(pid);
        }
    }
    out
}

/// Live processes whose environment names this home (`WARD_HOME=root`): the daemon, the fd
/// holder, and every app (ward sets WARD_HOME for its apps).
pub fn processes_of(h: &Home) -> Vec<u32> {
    let want = format!("WARD_HOME={}", h.root.display());
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|&b| b == 0).any(|v| v == want.as_bytes()) && alive(pid) {
            out.push(pid);
        }
    }
    out
}

/// Asserts the command failed, and returns its stderr.
pub fn failed(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "should have failed:\nstdout:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

impl Drop for Home {
    fn drop(&mut self) {
        // Kill the daemon and every process group it started, without asking it nicely:
        // a failed test must not leave anything behind.
        let groups: Vec<u32> = std::fs::read_to_string(self.root.join("state.json"))
            .ok()
            .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok())
            .and_then(|v| {
                v["apps"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|x| x["run"]["pid"].as_u64().map(|p| p as u32))
                        .collect()
                })
            })
            .unwrap_or_default();
        // The fd holder first: it would start a new daemon when the old one dies.
        if let Some(pid) = std::fs::read_to_string(self.root.join("holder.pid"))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            unsafe_kill(pid, 9);
        }
        let _ = Command::new(bin())
            .arg("kill")
            .env("WARD_HOME", &self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        for file in ["ward.pid", "pm2.pid"] {
            if let Some(pid) = std::fs::read_to_string(self.root.join(file))
                .ok()
                .and_then(|s| s.trim().parse::<i32>().ok())
            {
                unsafe_kill(pid, 9);
            }
        }
        for g in groups {
            unsafe_kill(-(g as i32), 9);
        }
        // Whatever of this home still lives (a daemon a holder started meanwhile, an app
        // no table knew) goes too, before and after the folder: a daemon recreates its
        // home when it is removed.
        for _ in 0..2 {
            for _ in 0..100 {
                let left = processes_of(self);
                if left.is_empty() {
                    break;
                }
                for pid in left {
                    unsafe_kill(pid as i32, 9);
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            if let Some(base) = self.root.parent() {
                let _ = std::fs::remove_dir_all(base);
            }
        }
    }
}

fn unsafe_kill(pid: i32, sig: i32) {
    let _ = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg("--")
        .arg(pid.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// Polls `cond` until it holds or `limit` passes; panics with `what` on timeout.
/// Runs `cmd` to its end, trying again while its program is "Text file busy": a file the
/// test just wrote is briefly held open for writing by any child that another test thread
/// forked in that moment, until that child's exec closes it.
pub fn output_when_not_busy(cmd: &mut Command) -> Output {
    let deadline = Instant::now() + secs(10);
    loop {
        match cmd.output() {
            // ETXTBSY on Linux.
            Err(e) if e.raw_os_error() == Some(26) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(10));
            }
            r => return r.unwrap(),
        }
    }
}

pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    loop {
        if cond() {
            return;
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Is this process alive (and not a zombie)?
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => {
            let state = s
                .rsplit_once(')')
                .map(|(_, r)| r.trim_start().chars().next());
            state != Some(Some('Z'))
        }
        Err(_) => false,
    }
}

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn exists(p: &Path) -> bool {
    p.exists()
}

/// Sends a signal (`"-9"`, `"-STOP"`) to a process, asserting that `kill` succeeded.
pub fn kill(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill {sig} {pid}");
}

impl Home {
    /// Runs `pm2 ARGS` in `dir` through a link named pm2 to the ward binary (pm2 mode), with
    /// PM2_HOME set to this home.
    pub fn pm2_in(&self, dir: &Path, args: &[&str]) -> Output {
        let link = self.dir.join("bin/pm2");
        if !link.exists() {
            std::fs::create_dir_all(link.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(bin(), &link).unwrap();
        }
        Command::new(&link)
            .args(args)
            .env("PM2_HOME", &self.root)
            .env_remove("WARD_HOME")
            .env_remove("WARD_MODE")
            .env_remove("NO_COLOR")
            .current_dir(dir)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }
}

/// xorshift64*: reproducible noise without a crate.
pub struct Rng(pub u64);

#[allow(clippy::should_implement_trait)]
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}
