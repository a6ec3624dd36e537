//! Issue 20: every daemon state survives a SIGKILL, and nothing of the caller leaks into the
//! apps. Each test kills the daemon (and sometimes the fd holder) at a chosen moment and
//! checks that every app that should run runs exactly once (by start time in /proc), is
//! supervised afterwards, holds only fds 0, 1 and 2, and that the next command answers.
mod util;
use std::collections::{HashMap, HashSet};
use std::io::Read;
use std::time::{Duration, Instant};
use util::*;

fn holder_pid(h: &Home) -> Option<u32> {
    std::fs::read_to_string(h.root.join("holder.pid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The open descriptors of a process.
fn fds_of(pid: u32) -> Vec<i32> {
    let mut fds: Vec<i32> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default();
    fds.sort_unstable();
    fds
}

/// Asserts that every running app of the table holds fds 0, 1 and 2 and nothing else.
fn assert_std_fds_only(h: &Home) {
    for a in h.jlist() {
        let pid = a["pid"].as_u64().unwrap_or(0) as u32;
        if pid == 0 {
            continue;
        }
        let fds = fds_of(pid);
        let what: Vec<String> = fds
            .iter()
            .map(|f| {
                let to = std::fs::read_link(format!("/proc/{pid}/fd/{f}")).unwrap_or_default();
                format!("{f} -> {}", to.display())
            })
            .collect();
        assert_eq!(
            fds,
            [0, 1, 2],
            "app {} (pid {pid}) holds {what:?}",
            a["name"]
        );
    }
}

/// Start time (clock ticks since boot, /proc/PID/stat field 22) of a live process.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    if f.first() == Some(&"Z") {
        return None;
    }
    f.get(19)?.parse().ok()
}

/// Processes whose argv is exactly `sleep MARKER`, each with its start time.
fn sleepers(marker: &str) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let argv = cmdline(pid);
        if argv.len() == 2 && argv[0].ends_with("sleep") && argv[1] == marker {
            if let Some(t) = start_time(pid) {
                out.push((pid, t));
            }
        }
    }
    out
}

/// A marker unique to this test run (`sleep MARKER` is how the tests find their apps on
/// the machine); every such process is killed when the guard goes, even on failure.
struct Marker(String);

impl Marker {
    fn new(base: u32) -> Marker {
        Marker(format!("{base}{}", std::process::id()))
    }
}

impl std::ops::Deref for Marker {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl Drop for Marker {
    fn drop(&mut self) {
        for (pid, _) in sleepers(&self.0) {
            let _ = std::process::Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status();
        }
    }
}

/// How long the next command takes to answer (it must answer, and say the table).
fn timed_ls(h: &Home) -> Duration {
    let t = Instant::now();
    h.ok(&["jlist"]);
    t.elapsed()
}

/// After a crash: every app of the table that runs runs once, under the pid the table
/// says (same start time as the process), each of the `marker` processes on the machine
/// is one of them (none orphaned), and every app is supervised (killing it restarts it).
fn assert_each_runs_once(h: &Home, marker: &str) {
    let mut by_pid: HashMap<u32, String> = HashMap::new();
    let mut names = HashSet::new();
    for a in h.jlist() {
        let name = a["name"].as_str().unwrap().to_string();
        assert!(names.insert(name.clone()), "{name} is in the table twice");
        if let Some(pid) = a["pid"].as_u64().filter(|&p| p != 0) {
            by_pid.insert(pid as u32, name);
        }
    }
    let running = sleepers(marker);
    for (pid, _) in &running {
        assert!(
            by_pid.contains_key(pid),
            "sleep {marker} pid {pid} runs unmanaged (table: {by_pid:?})"
        );
    }
    let live: HashSet<u32> = running.iter().map(|&(p, _)| p).collect();
    for (pid, name) in &by_pid {
        assert!(
            live.contains(pid),
            "{name}: the table says pid {pid}, which is not running"
        );
    }
}

/// Kills one app's process and waits for the daemon to start it again: it is supervised.
fn assert_supervised(h: &Home, name: &str) {
    let pid = h.wait_online(name);
    kill(pid, "-9");
    wait_until(secs(20), &format!("{name} restarted after kill -9"), || {
        h.pid(name).is_some_and(|p| p != pid) && h.status(name).as_deref() == Some("online")
    });
}

#[test]
fn descriptors_of_the_first_caller_do_not_reach_apps() {
    let h = Home::new("sigkill-fds");
    // The caller's stdout is a pipe, also open as fd 10 (as a CI step's would be); ward's
    // own output goes elsewhere. The pipe must reach EOF once `ward start` returns,
    // although the daemon, the holder, the fork server and the app live on.
    let mut child = std::process::Command::new("bash")
        .arg("-c")
        .arg("exec 10>&1; exec \"$0\" start sleep -n a -- 4242 >/dev/null 2>&1")
        .arg(BIN)
        .env("WARD_HOME", &h.root)
        .current_dir(&h.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        let _ = tx.send(());
    });
    assert!(child.wait().unwrap().success());
    let eof = rx.recv_timeout(secs(20)).is_ok();
    let a = h.wait_online("a");
    assert!(
        eof,
        "the caller's pipe is still held after `ward start` returned"
    );
    assert_eq!(fds_of(a), [0, 1, 2]);
}

#[test]
fn after_update_apps_hold_neither_lock_nor_socket() {
    let h = Home::new("sigkill-update-fds");
    let marker = Marker::new(4243);
    h.ok(&["start", "sleep", "-n", "a", "--", &marker]);
    h.wait_online("a");
    h.ok(&["update"]);
    h.ok(&["start", "sleep", "-n", "b", "--", &marker]);
    h.wait_online("b");
    assert_std_fds_only(&h);
    let old = h.daemon_pid().unwrap();
    kill(old, "-9");
    wait_until(secs(20), "a new daemon", || {
        h.daemon_pid().is_some_and(|p| p != old && alive(p))
    });
    let out = h.ok(&["ls"]);
    assert!(out.contains(" a ") && out.contains(" b "), "{out}");
    assert_each_runs_once(&h, &marker);
    assert_std_fds_only(&h);
}

/// Writes an ecosystem file of `n` apps `NAME0..`, each `sleep MARKER`.
fn idle_apps(h: &Home, file: &str, name: &str, n: usize, marker: &str) -> std::path::PathBuf {
    let apps: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({
                "name": format!("{name}{i}"),
                "script": "sleep",
                "args": [marker],
            })
        })
        .collect();
    let p = h.dir.join(file);
    std::fs::write(&p, serde_json::json!({ "apps": apps }).to_string()).unwrap();
    p
}

/// Waits until at least `n` processes `sleep MARKER` run.
fn wait_sleepers(marker: &str, n: usize) {
    wait_until(secs(60), &format!("{n} x sleep {marker}"), || {
        sleepers(marker).len() >= n
    });
}

/// Waits until a daemon other than `old` answers.
fn wait_new_daemon(h: &Home, old: u32) {
    wait_until(secs(20), "a new daemon", || {
        h.daemon_pid().is_some_and(|p| p != old && alive(p)) && h.run(&["ping"]).status.success()
    });
}

/// Starts `n` idle apps with one `ward start` and kills the daemon once `after` of them
/// run. The client must say at once that its daemon died (or have finished). Returns the
/// names of the apps that run once a new daemon answers.
fn kill_during_mass_start(h: &Home, marker: &str, n: usize, after: usize) -> Vec<String> {
    let file = idle_apps(h, "idle.json", "m", n, marker);
    h.ok(&["ping"]);
    let old = h.daemon_pid().unwrap();
    let client = h
        .cmd(&["start", file.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_sleepers(marker, after);
    kill(old, "-9");
    let killed = Instant::now();
    let out = client.wait_with_output().unwrap();
    let waited = killed.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        assert!(err.contains("died before answering"), "{err}");
    }
    assert!(
        waited < secs(15),
        "the client took {waited:?} to notice its daemon was killed: {err}"
    );
    wait_new_daemon(h, old);
    let running: Vec<String> = h
        .jlist()
        .iter()
        .filter(|a| a["pid"].as_u64().unwrap_or(0) != 0)
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert!(running.len() >= after, "{}", running.len());
    running
}

#[test]
fn sigkill_during_a_mass_start_orphans_nothing() {
    let h = Home::new("sigkill-mass");
    let marker = Marker::new(4310);
    let running = kill_during_mass_start(&h, &marker, 200, 20);
    // Every sleep that runs is in the table once, under its own pid, and supervised.
    check_after_crash(&h, &marker, &running);
}

/// Starts `n` apps `NAME0..` running `sleep MARKER`, and waits until all are online.
fn start_idle(h: &Home, name: &str, n: usize, marker: &str) {
    let file = idle_apps(h, &format!("{name}.json"), name, n, marker);
    h.ok(&["start", file.to_str().unwrap()]);
    wait_until(secs(60), &format!("{n} apps online"), || {
        let apps = h.jlist();
        apps.len() == n && apps.iter().all(|a| a["pm2_env"]["status"] == "online")
    });
}

/// What must hold after a crash: the next command answers (its time is returned), every
/// app named runs once under the pid the table says, with only fds 0-2, and the daemon
/// supervises them (one is killed and comes back).
fn check_after_crash(h: &Home, marker: &str, names: &[String]) -> Duration {
    let took = timed_ls(h);
    assert!(
        took < secs(10),
        "the first command after the crash took {took:?}"
    );
    wait_until(secs(30), "every app online", || {
        let apps = h.jlist();
        names.iter().all(|n| {
            apps.iter()
                .any(|a| a["name"] == n.as_str() && a["pm2_env"]["status"] == "online")
        })
    });
    assert_each_runs_once(h, marker);
    assert_eq!(sleepers(marker).len(), names.len());
    assert_std_fds_only(h);
    assert_supervised(h, &names[0]);
    assert_each_runs_once(h, marker);
    took
}

fn names(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}")).collect()
}

#[test]
fn sigkill_after_start() {
    let h = Home::new("sigkill-start");
    let marker = Marker::new(4331);
    start_idle(&h, "s", 5, &marker);
    let old = h.daemon_pid().unwrap();
    kill(old, "-9");
    wait_new_daemon(&h, old);
    let took = check_after_crash(&h, &marker, &names("s", 5));
    eprintln!("after start: next command in {took:?}");
}

#[test]
fn sigkill_after_update() {
    let h = Home::new("sigkill-after-update");
    let marker = Marker::new(4332);
    start_idle(&h, "u", 3, &marker);
    h.ok(&["update"]);
    h.ok(&["start", "sleep", "-n", "late", "--", &marker]);
    h.wait_online("late");
    let old = h.daemon_pid().unwrap();
    kill(old, "-9");
    wait_new_daemon(&h, old);
    let mut all = names("u", 3);
    all.push("late".into());
    let took = check_after_crash(&h, &marker, &all);
    eprintln!("after update: next command in {took:?}");
}

#[test]
fn sigkill_during_a_mass_start_of_500() {
    let h = Home::new("sigkill-mass500");
    let marker = Marker::new(4333);
    let running = kill_during_mass_start(&h, &marker, 500, 50);
    let took = check_after_crash(&h, &marker, &running);
    eprintln!(
        "mass start of 500: {} running after the crash; next command in {took:?}",
        running.len()
    );
}

#[test]
fn sigkill_during_stop_all() {
    let h = Home::new("sigkill-stop-all");
    let marker = Marker::new(4334);
    // Apps that ignore SIGINT: `stop` waits out their kill timeout, so the daemon can be
    // killed while every one of them is stopping.
    let script = h.script("stubborn.sh", "#!/bin/sh\ntrap '' INT\nexec sleep \"$1\"\n");
    for i in 0..10 {
        h.ok(&[
            "start",
            script.to_str().unwrap(),
            "-n",
            &format!("t{i}"),
            "--kill-timeout",
            "4000",
            "--",
            &marker,
        ]);
    }
    wait_until(secs(30), "10 online", || sleepers(&marker).len() == 10);
    let old = h.daemon_pid().unwrap();
    let client = h
        .cmd(&["stop", "all"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    wait_until(secs(20), "every app stopping", || {
        h.jlist()
            .iter()
            .all(|a| a["pm2_env"]["status"] == "stopping")
    });
    // What a reply showed is in state.json already (it is written before the reply).
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(h.root.join("state.json")).unwrap()).unwrap();
    let saved: Vec<&str> = state["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["run"]["status"].as_str().unwrap_or("?"))
        .collect();
    assert!(
        saved.len() == 10 && saved.iter().all(|s| *s == "stopping"),
        "state.json after jlist showed every app stopping: {saved:?}"
    );
    kill(old, "-9");
    wait_new_daemon(&h, old);
    let _ = client.wait_with_output();
    let took = timed_ls(&h);
    assert!(took < secs(10), "{took:?}");
    // The new daemon finishes the stop: all stopped, nothing left running.
    let until = Instant::now() + secs(30);
    loop {
        let list = h.jlist();
        let left = sleepers(&marker);
        if list.iter().all(|a| a["pm2_env"]["status"] == "stopped") && left.is_empty() {
            break;
        }
        let last = format!(
            "{:?}; still running: {left:?}",
            list.iter()
                .map(|a| format!("{} {} {}", a["name"], a["pm2_env"]["status"], a["pid"]))
                .collect::<Vec<_>>()
        );
        if Instant::now() > until {
            let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default();
            panic!("not every app stopped after 30 s: {last}\nward.log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(h.jlist().len(), 10);
    // And they start again, once each, supervised.
    h.ok(&["restart", "all"]);
    let all = names("t", 10);
    check_after_crash(&h, &marker, &all);
    eprintln!("stop all: next command in {took:?}");
}

#[test]
fn sigkill_of_daemon_and_holder_together() {
    let h = Home::new("sigkill-both");
    let marker = Marker::new(4335);
    start_idle(&h, "b", 5, &marker);
    let daemon = h.daemon_pid().unwrap();
    let holder = holder_pid(&h).unwrap();
    let ok = std::process::Command::new("kill")
        .args(["-9", &holder.to_string(), &daemon.to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    wait_until(secs(20), "both gone", || !alive(daemon) && !alive(holder));
    // The next command starts a daemon, which adopts the apps from state.json.
    let took = check_after_crash(&h, &marker, &names("b", 5));
    assert_ne!(h.daemon_pid(), Some(daemon));
    eprintln!("daemon and holder: next command in {took:?}");
}
/// Live daemons serving this home.
fn daemons_of(h: &Home) -> Vec<u32> {
    processes_of(h)
        .into_iter()
        .filter(|&p| cmdline(p).get(1).map(String::as_str) == Some("daemon"))
        .collect()
}

#[test]
fn removing_the_home_never_gives_two_daemons() {
    let h = Home::new("sigkill-rmhome");
    let marker = Marker::new(4320);
    h.ok(&["start", "sleep", "-n", "a", "--", &marker]);
    let a = h.wait_online("a");
    let daemon = h.daemon_pid().unwrap();
    std::fs::remove_dir_all(&h.root).unwrap();
    // The daemon takes its home back: same daemon, same app.
    wait_until(secs(20), "the home recreated", || h.socket().exists());
    assert_eq!(h.pid("a"), Some(a));
    assert_eq!(h.daemon_pid(), Some(daemon));
    assert_eq!(daemons_of(&h), [daemon]);
    assert_supervised(&h, "a");
    // Removed again, with a client right behind: whoever wins, one daemon remains.
    std::fs::remove_dir_all(&h.root).unwrap();
    h.run(&["ls"]);
    let mut found = Vec::new();
    wait_until(secs(20), "a single daemon", || {
        found = daemons_of(&h);
        found.len() == 1 && h.run(&["ping"]).status.success()
    });
    // And it stays one.
    for _ in 0..10 {
        h.ok(&["ping"]);
        assert_eq!(daemons_of(&h).len(), 1, "{:?}", daemons_of(&h));
    }
}
