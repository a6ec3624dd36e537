//! The container runtime (`ward runtime`, `ward-runtime`, `pm2-runtime`), run for real: as
//! PID 1 of a new PID namespace (`unshare --pid --fork --mount-proc`, as root in CI) and,
//! without a namespace, as a child subreaper.
mod util;
use util::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A runtime started by a test; its stdout and stderr go to files the test reads while it
/// runs. Dropping it kills it (and, in a namespace, everything in the namespace with it).
struct Rt {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    /// Runs as PID 1 of its own namespace under `unshare`.
    namespaced: bool,
    status: Option<ExitStatus>,
}

impl Rt {
    /// `ward runtime ARGS` with `WARD_HOME` = the test's home.
    fn start(h: &Home, args: &[&str], namespaced: bool) -> Rt {
        let mut full = vec!["runtime"];
        full.extend_from_slice(args);
        Rt::start_as(
            h,
            Path::new(BIN),
            &full,
            namespaced,
            &[("WARD_HOME", &h.root)],
        )
    }

    fn start_as(
        h: &Home,
        bin: &Path,
        args: &[&str],
        namespaced: bool,
        env: &[(&str, &Path)],
    ) -> Rt {
        let n = std::fs::read_dir(&h.dir).map_or(0, |d| d.count());
        let out = h.dir.join(format!("rt-{n}.out"));
        let err = h.dir.join(format!("rt-{n}.err"));
        let mut c = if namespaced {
            let mut c = Command::new("unshare");
            // --kill-child: if the test kills unshare, the runtime (and the namespace) go too.
            c.args(["--pid", "--fork", "--mount-proc", "--kill-child"])
                .arg(bin);
            c
        } else {
            Command::new(bin)
        };
        c.args(args)
            .env_remove("WARD_HOME")
            .env_remove("PM2_HOME")
            .env_remove("WARD_MODE")
            .current_dir(&h.dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap());
        for (k, v) in env {
            c.env(k, v);
        }
        let child = c.spawn().expect("start the runtime");
        Rt {
            child,
            out,
            err,
            namespaced,
            status: None,
        }
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn both(&self) -> String {
        format!(
            "--- stdout:\n{}--- stderr:\n{}",
            self.stdout(),
            self.stderr()
        )
    }

    fn wait_output(&self, needle: &str) {
        wait_until(
            secs(20),
            &format!("{needle:?} in the runtime's output"),
            || self.both().contains(needle),
        );
    }

    /// The runtime's own pid as the host sees it (under unshare: unshare's child).
    fn pid(&self) -> u32 {
        if !self.namespaced {
            return self.child.id();
        }
        let mut pid = None;
        let me = self.child.id();
        wait_until(secs(10), "the runtime under unshare", || {
            pid = children(me).first().copied();
            pid.is_some()
        });
        pid.unwrap()
    }

    fn signal(&self, sig: &str) {
        let st = Command::new("kill")
            .args([sig, &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().unwrap();
        }
        self.status
    }

    fn wait_exit(&mut self, limit: Duration) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(st) = self.try_status() {
                return st;
            }
            if start.elapsed() > limit {
                panic!(
                    "the runtime did not exit within {limit:?}:\n{}",
                    self.both()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Rt {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            // The runtime itself first (under unshare: unshare's child, whose death ends
            // the namespace), so that unshare's exit means everything is gone.
            let target = if self.namespaced {
                children(self.child.id()).first().copied()
            } else {
                Some(self.child.id())
            };
            if let Some(pid) = target {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
            }
            if target.is_none() {
                let _ = self.child.kill();
            }
            let _ = self.child.wait();
        }
    }
}

/// Host pids whose parent is `pid`.
fn children(pid: u32) -> Vec<u32> {
    let mut v = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(p) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        if let Some((ppid, _)) = stat(p) {
            if ppid == pid {
                v.push(p);
            }
        }
    }
    v
}

/// (parent pid, state letter) of a host pid.
fn stat(pid: u32) -> Option<(u32, char)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = s.rsplit_once(')')?.1;
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    Some((ppid, state))
}

fn zombies_of(pid: u32) -> Vec<u32> {
    children(pid)
        .into_iter()
        .filter(|&c| stat(c).is_some_and(|(_, s)| s == 'Z'))
        .collect()
}

fn exit_code(st: ExitStatus) -> Option<i32> {
    st.code()
}

#[test]
fn pid1_reaps_orphans_and_sigterm_stops_every_app_within_kill_timeout() {
    let h = Home::new("rt-pid1");
    h.script(
        "stubborn.sh",
        "#!/bin/sh\ntrap '' INT\necho stubborn up\nwhile :; do sleep 1; done\n",
    );
    h.script("quick.sh", "#!/bin/sh\necho quick up\nexec sleep 1000\n");
    h.script(
        "eco.json",
        r#"{"apps": [
            {"name": "stubborn", "script": "./stubborn.sh", "kill_timeout": 1500},
            {"name": "quick", "script": "./quick.sh"}
        ]}"#,
    );
    let mut rt = Rt::start(&h, &["eco.json"], true);
    rt.wait_output("stubborn up");
    rt.wait_output("quick up");
    let init = rt.pid();
    let before = children(init);
    // Processes that are not the runtime's: started into the namespace from outside (as
    // `docker exec` does), each leaving an orphan that exits at once and one that exits
    // soon. Only PID 1 can reap them.
    for _ in 0..3 {
        let st = Command::new("nsenter")
            .args(["--target", &init.to_string(), "--pid", "--mount", "--"])
            .args(["sh", "-c", "sh -c 'exit 0' & sleep 3 & exit 0"])
            .status()
            .unwrap();
        assert!(st.success());
    }
    // The orphans came to the runtime (the sleeps still run: the test can see them)...
    let adopted = children(init).len();
    assert!(
        adopted >= before.len() + 3,
        "the orphans did not go to PID 1: {before:?} then {:?}",
        children(init)
    );
    // ...and once they are done, none is left a zombie.
    let mut now = Vec::new();
    wait_until(secs(20), "every orphan reaped", || {
        now = children(init);
        now == before
    });
    assert!(
        zombies_of(init).is_empty(),
        "zombies: {:?}",
        zombies_of(init)
    );
    let apps = now;
    assert!(apps.len() >= 2, "the apps run under PID 1: {apps:?}");
    let started = Instant::now();
    rt.signal("-TERM");
    let st = rt.wait_exit(secs(20));
    let took = started.elapsed();
    assert_eq!(exit_code(st), Some(0), "{}", rt.both());
    // stubborn ignores SIGINT: it goes at kill_timeout (1.5 s) with SIGKILL, not later
    // than a generous margin on a loaded machine.
    assert!(
        took >= Duration::from_millis(1400),
        "took {took:?}: the kill_timeout was not waited"
    );
    assert!(took < secs(12), "took {took:?}");
    let all = rt.both();
    assert!(
        all.contains("stubborn (id 0) was killed by SIGKILL"),
        "{all}"
    );
    assert!(all.contains("runtime exits with status 0"), "{all}");
    for p in apps {
        wait_until(secs(10), "the apps gone with the namespace", || !alive(p));
    }
}

#[test]
fn crashing_app_restarts_and_a_second_shell_sees_it() {
    let h = Home::new("rt-shell");
    h.script(
        "crash.sh",
        "#!/bin/sh\ntrap 'echo got usr1' USR1\necho \"run $$\"\necho \"oops $$\" >&2\nsleep 1.2 &\nwait $!\nwait $!\nexit 3\n",
    );
    let mut rt = Rt::start(
        &h,
        &["crash.sh", "--output", "out.log", "--error", "err.log"],
        true,
    );
    rt.wait_output("run ");
    // A crash brings a restart.
    wait_until(secs(20), "a restart", || h.restarts("crash") >= 1);
    let ls = h.ok(&["ls"]);
    assert!(ls.contains("crash"), "{ls}");
    // The files asked for get the lines, so `ward logs` shows them.
    wait_until(secs(10), "ward logs shows the output", || {
        let logs = h.ok(&["logs", "crash", "--nostream", "--lines", "20"]);
        logs.contains("run ") && logs.contains("oops ")
    });
    // The same lines reached the runtime's own streams, raw: stdout and stderr apart.
    assert!(rt.stdout().contains("run "), "{}", rt.both());
    assert!(rt.stderr().contains("oops "), "{}", rt.both());
    assert!(!rt.stdout().contains("oops "), "{}", rt.both());
    // The probe answers from the second shell.
    let check = h.run(&["runtime", "--check"]);
    assert!(
        check.status.success() || String::from_utf8_lossy(&check.stderr).contains("not ready"),
        "{check:?}"
    );
    // SIGUSR1 to the runtime reaches the app.
    // It restarts every 1.2 s: send until one lands while it runs with its trap set.
    wait_until(secs(20), "got usr1", || {
        rt.signal("-USR1");
        std::thread::sleep(Duration::from_millis(300));
        rt.stdout().contains("got usr1")
    });
    // `ward update` is refused, clearly, and the runtime goes on as it was.
    let daemon = h.daemon_pid();
    let e = h.fails(&["update"]);
    assert!(e.contains("does not apply to a container runtime"), "{e}");
    assert_eq!(h.daemon_pid(), daemon);
    assert!(h.ok(&["ls"]).contains("crash"));
    // `ward kill` from the second shell ends the runtime, status 0.
    h.ok(&["kill"]);
    let st = rt.wait_exit(secs(20));
    assert_eq!(exit_code(st), Some(0), "{}", rt.both());
}

#[test]
fn check_fails_without_a_runtime_and_starts_no_daemon() {
    let h = Home::new("rt-check");
    let err = h.fails(&["runtime", "--check"]);
    assert!(err.contains("reach the daemon"), "{err}");
    assert!(!h.socket().exists(), "a probe must not start a daemon");
}

/// An app that keeps crashing: `restart overlimit` then `exit` when it is given up on, as
/// pm2-runtime --json says it; the other app goes on.
#[test]
fn json_process_events_tell_of_a_crash_loop_given_up() {
    let h = Home::new("rt-json-overlimit");
    h.script("bad.sh", "#!/bin/sh\necho bad up\nexit 1\n");
    h.script("good.sh", "#!/bin/sh\necho good up\nexec sleep 1000\n");
    h.script(
        "eco.json",
        r#"{"apps": [
            {"name": "bad", "script": "./bad.sh", "max_restarts": 2},
            {"name": "good", "script": "./good.sh"}
        ]}"#,
    );
    let rt = Rt::start(&h, &["eco.json", "--json"], false);
    rt.wait_output(r#""status":"restart overlimit","app_name":"bad""#);
    let events: Vec<String> = rt
        .stdout()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "process_event" && v["app_name"] == "bad")
        .map(|v| v["status"].as_str().unwrap_or("?").to_string())
        .collect();
    // Three runs (the first and two restarts), each online then exit; the last exit is
    // announced as the one that goes over the limit.
    let at = events.iter().position(|e| e == "restart overlimit");
    assert!(
        at.is_some_and(|i| events.get(i + 1).map(String::as_str) == Some("exit")),
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "online").count(),
        3,
        "{events:?}"
    );
    assert_eq!(
        events.iter().filter(|e| *e == "exit").count(),
        3,
        "{events:?}"
    );
}

#[test]
fn json_lines_parse_and_the_probe_reports_ready() {
    let h = Home::new("rt-json");
    h.script(
        "talk.sh",
        "#!/bin/sh\necho 'plain \"quoted\" line'\necho 'to stderr' >&2\nprintf 'no newline'\nexec sleep 1000\n",
    );
    let rt = Rt::start(&h, &["talk.sh", "--json"], false);
    rt.wait_output("to stderr");
    let ready = h.ok(&["runtime", "--check"]);
    assert!(ready.contains("ready: 1 app(s) online"), "{ready}");
    h.ok(&["stop", "talk"]);
    // The partial line goes out when the app's pipe closes.
    rt.wait_output("no newline");
    // The stop is told once the request is answered, after the exit (pm2's order).
    rt.wait_output(r#""status":"stop""#);
    let out = rt.stdout();
    let mut kinds = Vec::new();
    let mut events = Vec::new();
    for line in out.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {line:?}\n{}", rt.both()));
        assert!(
            v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
            "{line}"
        );
        if v["type"] == "process_event" {
            // pm2-runtime --json's process events (God.notify), no message or process_id.
            assert_eq!(v["app_name"], "talk", "{line}");
            assert!(v.get("process_id").is_none() && v.get("message").is_none());
            events.push(v["status"].as_str().unwrap_or("?").to_string());
        } else if v["app_name"] == "talk" {
            assert_eq!(v["process_id"], 0, "{line}");
            kinds.push((
                v["type"].as_str().unwrap().to_string(),
                v["message"].as_str().unwrap().to_string(),
            ));
        }
    }
    assert!(
        kinds.contains(&("out".into(), "plain \"quoted\" line".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("err".into(), "to stderr".into())),
        "{kinds:?}"
    );
    assert!(
        kinds.contains(&("out".into(), "no newline".into())),
        "{kinds:?}"
    );
    // As pm2-runtime: online then start for the new app; the exit, then the stop request.
    assert_eq!(events[..2], ["online", "start"], "{events:?}");
    assert!(
        events.ends_with(&["exit".to_string(), "stop".to_string()]),
        "{events:?}"
    );
    // No app file unless asked.
    let logs: Vec<_> = std::fs::read_dir(h.root.join("logs"))
        .unwrap()
        .flatten()
        .collect();
    assert!(logs.is_empty(), "log files written: {logs:?}");
    // `ward logs` says where the lines went.
    let shown = h.run(&["logs", "--nostream"]);
    assert!(
        String::from_utf8_lossy(&shown.stderr).contains("docker logs"),
        "{shown:?}"
    );
    // Stopped on request: no app runs any more, but the stop was clean; checked by
    // the auto-exit test. Here the probe now reports the stopped app as fine.
    let ready = h.ok(&["runtime", "--check"]);
    assert!(ready.contains("ready: 0 app(s) online"), "{ready}");
}

#[test]
fn auto_exit_after_the_grace_period_with_pm2_runtime_status() {
    let h = Home::new("rt-auto");
    h.script("fail.sh", "#!/bin/sh\nexit 5\n");
    h.script("done.sh", "#!/bin/sh\necho done\nexit 0\n");
    // Every app errored: status 2 after the grace period, and the last line says why.
    let mut failing = Rt::start(&h, &["fail.sh", "--max-restarts", "2"], true);
    // A clean end: exit 0.
    let h2 = Home::new("rt-auto-clean");
    h2.script("done.sh", "#!/bin/sh\necho done\nexit 0\n");
    let mut clean = Rt::start(&h2, &["done.sh", "--no-autorestart"], false);
    // --no-auto-exit stays with nothing running.
    let h3 = Home::new("rt-auto-stay");
    h3.script("fail.sh", "#!/bin/sh\nexit 5\n");
    let mut stay = Rt::start(
        &h3,
        &["fail.sh", "--max-restarts", "2", "--no-auto-exit"],
        false,
    );
    let started = Instant::now();

    let st = failing.wait_exit(secs(40));
    assert_eq!(exit_code(st), Some(2), "{}", failing.both());
    let last = failing.stderr();
    let last = last.lines().last().unwrap_or("");
    assert!(
        last.contains("runtime exits with status 2") && last.contains("fail errored"),
        "{}",
        failing.both()
    );
    // pm2-runtime's grace: no exit before 4 s + 8 s.
    assert!(
        started.elapsed() >= secs(11),
        "exited after {:?}",
        started.elapsed()
    );

    let st = clean.wait_exit(secs(40));
    assert_eq!(exit_code(st), Some(0), "{}", clean.both());
    assert!(clean.stdout().contains("done"), "{}", clean.both());
    assert!(
        clean.stderr().contains("every app ended cleanly"),
        "{}",
        clean.both()
    );

    stay.wait_output("errored");
    // Past the point where the others ended, it is still there and answers.
    let until = started + secs(16);
    while Instant::now() < until {
        assert!(
            stay.try_status().is_none(),
            "--no-auto-exit exited:\n{}",
            stay.both()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(h3.ok(&["ls"]).contains("errored"));
    stay.signal("-INT");
    assert_eq!(
        exit_code(stay.wait_exit(secs(20))),
        Some(0),
        "{}",
        stay.both()
    );
}

#[test]
fn pm2_runtime_command_line_through_a_link() {
    let h = Home::new("rt-pm2");
    let link = h.dir.join("pm2-runtime");
    std::os::unix::fs::symlink(BIN, &link).unwrap();
    let pm2 = h.dir.join("pm2");
    std::os::unix::fs::symlink(BIN, &pm2).unwrap();
    h.script(
        "api.sh",
        "#!/bin/sh\necho \"api in $MODE\"\nexec sleep 1000\n",
    );
    h.script("other.sh", "#!/bin/sh\necho other\nexec sleep 1000\n");
    h.script(
        "ecosystem.config.js",
        r#"module.exports = { apps: [
            { name: "api", script: "./api.sh", env: { MODE: "dev" }, env_production: { MODE: "production" } },
            { name: "other", script: "./other.sh" }
        ] };"#,
    );
    let pm2_home = h.root.clone();
    let mut rt = Rt::start_as(
        &h,
        &link,
        &[
            "start",
            "ecosystem.config.js",
            "--env",
            "production",
            "--only",
            "api",
            "--formatted",
            "--secret",
            "abc",
        ],
        true,
        &[("PM2_HOME", &pm2_home)],
    );
    rt.wait_output("0|api  | api in production");
    assert!(
        rt.stderr().contains("--secret belongs to pm2.io"),
        "{}",
        rt.both()
    );
    assert!(!rt.both().contains("| other"), "{}", rt.both());
    // pm2's own client, on the same PM2_HOME, sees the runtime's apps.
    let ls = Command::new(&pm2)
        .arg("jlist")
        .env("PM2_HOME", &pm2_home)
        .env_remove("WARD_HOME")
        .env_remove("WARD_MODE")
        .output()
        .unwrap();
    let apps: serde_json::Value =
        serde_json::from_slice(&ls.stdout).unwrap_or_else(|e| panic!("{e}: {ls:?}"));
    assert_eq!(apps.as_array().map(|a| a.len()), Some(1), "{apps}");
    assert_eq!(apps[0]["name"], "api");
    rt.signal("-TERM");
    assert_eq!(exit_code(rt.wait_exit(secs(20))), Some(0), "{}", rt.both());

    // No arguments: pm2-runtime's help on stderr and status 1.
    let out = Command::new(&link).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ward runtime"),
        "{out:?}"
    );
}

#[test]
fn without_a_namespace_it_is_a_subreaper() {
    let h = Home::new("rt-subreaper");
    // The app leaves a grandchild behind (its parent exits at once): it comes to the
    // runtime, which reaps it when it ends.
    h.script(
        "forker.sh",
        "#!/bin/sh\nsh -c 'sleep 1.5 & echo $! > gc.pid'\necho forked\nexec sleep 1000\n",
    );
    let rt = Rt::start(&h, &["forker.sh"], false);
    rt.wait_output("forked");
    let gc: u32 = std::fs::read_to_string(h.dir.join("gc.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let me = rt.pid();
    // While it runs, the orphan's parent is the runtime (not init, not the test).
    if let Some((ppid, _)) = stat(gc) {
        assert_eq!(ppid, me, "the orphan went to {ppid}, not the runtime {me}");
    }
    wait_until(secs(20), "the orphan reaped", || stat(gc).is_none());
    assert!(zombies_of(me).is_empty());
}

#[test]
fn a_blocked_stdout_drops_whole_lines_and_never_holds_the_apps() {
    use std::io::Read;
    let h = Home::new("rt-flood");
    let tail = "x".repeat(60);
    h.script(
        "flood.sh",
        &format!(
            "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo \"flood $i {tail}\"; \
             [ $((i % 500)) -eq 0 ] && echo $i > progress; done\n"
        ),
    );
    let err = h.dir.join("flood.err");
    let mut child = Command::new(BIN)
        .args(["runtime", "flood.sh"])
        .env("WARD_HOME", &h.root)
        .current_dir(&h.dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .unwrap();
    // Nobody reads the runtime's stdout: the pipe fills at once. The app goes on writing
    // (its own pipe is drained), and the runtime still answers.
    let progress = || -> u64 {
        std::fs::read_to_string(h.dir.join("progress"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(0)
    };
    wait_until(secs(20), "the app writes a lot", || progress() >= 5000);
    let before = progress();
    wait_until(
        secs(20),
        "the app is not held by the blocked stdout",
        || progress() >= before + 5000,
    );
    let ls = h.ok(&["ls"]);
    assert!(ls.contains("online"), "{ls}");
    // Now read: whole lines, and a line that counts what was dropped.
    let mut out = child.stdout.take().unwrap();
    let mut text = String::new();
    let mut buf = vec![0u8; 1 << 16];
    let start = Instant::now();
    while !text.contains("lines of output dropped") {
        assert!(start.elapsed() < secs(20), "no drop notice");
        let n = out.read(&mut buf).unwrap();
        assert!(n > 0);
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    // More after the notice, so the last line read is complete.
    let n = out.read(&mut buf).unwrap();
    text.push_str(&String::from_utf8_lossy(&buf[..n]));
    let complete = &text[..text.rfind('\n').unwrap()];
    for line in complete.lines() {
        assert!(
            (line.starts_with("flood ") && line.ends_with(&tail))
                || line.contains("lines of output dropped"),
            "a cut line: {line:?}"
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn delay_waits_before_starting_and_a_signal_ends_the_wait() {
    let h = Home::new("rt-delay");
    h.script("app.sh", "#!/bin/sh\necho started\nexec sleep 1000\n");
    let mut rt = Rt::start(&h, &["app.sh", "--delay", "60"], false);
    wait_until(secs(20), "the runtime answers", || {
        // The socket first: `ward ping` would start a daemon of its own when none answers.
        h.socket().exists() && h.run(&["ping"]).status.success()
    });
    assert_eq!(
        h.jlist().len(),
        0,
        "started before the delay:\n{}",
        rt.both()
    );
    rt.signal("-TERM");
    assert_eq!(exit_code(rt.wait_exit(secs(20))), Some(0), "{}", rt.both());
    assert!(!rt.both().contains("started app"), "{}", rt.both());
}

#[test]
fn output_to_a_file_shares_it_with_the_shell() {
    // `ward runtime … > file; echo after`: the runtime must write through the shell's own
    // file description, or the shell's next write lands over the runtime's first lines.
    let h = Home::new("rt-file");
    h.script("app.sh", "#!/bin/sh\necho app up\nexec sleep 1000\n");
    let file = h.dir.join("all.txt");
    let mut sh = Command::new("sh")
        .args([
            "-c",
            "echo before; \"$0\" runtime app.sh; echo after-runtime",
            BIN,
        ])
        .env("WARD_HOME", &h.root)
        .current_dir(&h.dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&file).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let read = || std::fs::read_to_string(&file).unwrap_or_default();
    wait_until(secs(20), "app up", || read().contains("app up"));
    h.ok(&["kill"]);
    let start = Instant::now();
    while sh.try_wait().unwrap().is_none() {
        assert!(
            start.elapsed() < secs(20),
            "the runtime did not end:\n{}",
            read()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(read(), "before\napp up\nafter-runtime\n");
}

#[test]
fn a_restarted_container_starts_fresh_from_its_command_line() {
    // A container restarted in place keeps its files: what the killed runtime left in
    // state.json must not come back beside the command line's apps.
    let h = Home::new("rt-again");
    h.script("app.sh", "#!/bin/sh\necho up $$\nexec sleep 1000\n");
    let mut first = Rt::start(&h, &["app.sh", "-i", "2"], true);
    first.wait_output("[app](1) started");
    wait_until(secs(10), "state written", || {
        std::fs::read_to_string(h.root.join("state.json")).is_ok_and(|s| s.contains("app"))
    });
    // SIGKILL: no clean-up at all, as when a node dies.
    let _ = first.child.kill();
    first.wait_exit(secs(10));
    assert!(h.root.join("state.json").exists());
    let second = Rt::start(&h, &["app.sh"], true);
    wait_until(secs(20), "the second runtime starts", || {
        second.both().contains("[app](0) started") || second.both().contains("exits")
    });
    assert!(
        second.both().contains("[app](0) started"),
        "{}",
        second.both()
    );
    let apps = h.jlist();
    assert_eq!(apps.len(), 1, "{apps:?}\n{}", second.both());
    assert_eq!(apps[0]["pm2_env"]["restart_time"], 0);
}

#[test]
fn the_apps_last_words_on_sigterm_reach_the_output() {
    let h = Home::new("rt-bye");
    h.script(
        "polite.sh",
        "#!/bin/sh\ntrap 'echo bye from $$; printf no-newline; exit 0' INT\necho hello\n\
         while :; do sleep 0.1; done\n",
    );
    let mut rt = Rt::start(&h, &["polite.sh", "-i", "3"], true);
    wait_until(secs(20), "three copies up", || {
        rt.stdout().matches("hello").count() == 3
    });
    rt.signal("-TERM");
    assert_eq!(exit_code(rt.wait_exit(secs(20))), Some(0), "{}", rt.both());
    let out = rt.stdout();
    assert_eq!(out.matches("bye from").count(), 3, "{}", rt.both());
    assert_eq!(out.matches("no-newline\n").count(), 3, "{}", rt.both());
}
