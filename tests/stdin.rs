//! Issue 11: send, attach, pid; every app has a stdin pipe that ward keeps open.
mod util;
use util::*;

const ECHO_PY: &str = "import sys\nprint('ready', flush=True)\nfor line in sys.stdin:\n    print('got ' + line.strip(), flush=True)\nprint('stdin closed', flush=True)\nimport time\ntime.sleep(1000)\n";

#[test]
fn send_reaches_a_python_app_and_survives_the_daemons_death() {
    let h = Home::new("stdin-send");
    h.script("echo.py", ECHO_PY);
    h.ok(&["start", "echo.py"]);
    wait_until(secs(10), "ready", || {
        h.read_log("echo-out.log").contains("ready")
    });
    h.ok(&["send", "echo", "hello", "world"]);
    wait_until(secs(10), "line echoed", || {
        h.read_log("echo-out.log").contains("got hello world")
    });
    // No EOF while the app runs, even across a daemon crash.
    let daemon = h.daemon_pid().unwrap();
    std::process::Command::new("kill")
        .args(["-9", &daemon.to_string()])
        .status()
        .unwrap();
    wait_until(secs(10), "a new daemon", || {
        h.daemon_pid().is_some_and(|p| p != daemon && alive(p))
    });
    let id = h.app("echo").unwrap()["pm_id"].to_string();
    h.ok(&["send", &id, "again"]);
    wait_until(secs(10), "second line", || {
        h.read_log("echo-out.log").contains("got again")
    });
    assert!(!h.read_log("echo-out.log").contains("stdin closed"));
    // Errors: unknown app, stopped app.
    let err = h.fails(&["send", "nope", "x"]);
    assert!(err.contains("not found"), "{err}");
    h.ok(&["stop", "echo"]);
    let err = h.fails(&["send", "echo", "x"]);
    assert!(err.contains("not running"), "{err}");
    let err = h.fails(&["send", "echo"]);
    assert!(err.contains("usage"), "{err}");
}

#[test]
fn pid_prints_running_pids_one_per_line() {
    let h = Home::new("stdin-pid");
    h.ok(&["start", "sleep", "-n", "a", "--", "1000"]);
    h.ok(&["start", "sleep", "-n", "b", "--", "1001"]);
    h.ok(&["start", "sleep", "-n", "b", "-f", "--", "1001"]);
    let a = h.pid("a").unwrap();
    assert_eq!(h.ok(&["pid", "a"]), format!("{a}\n"));
    let bs: Vec<u32> = h
        .jlist()
        .iter()
        .filter(|x| x["name"] == "b")
        .map(|x| x["pid"].as_u64().unwrap() as u32)
        .collect();
    assert_eq!(bs.len(), 2);
    let got: Vec<u32> = h
        .ok(&["pid", "b"])
        .lines()
        .map(|l| l.parse().unwrap())
        .collect();
    assert_eq!(got, bs);
    assert_eq!(h.ok(&["pid"]).lines().count(), 3);
    h.ok(&["stop", "a"]);
    assert_eq!(h.ok(&["pid", "a"]), "");
    assert!(h.fails(&["pid", "nope"]).contains("not found"));
}

#[test]
fn attach_connects_the_terminal_through_tmux() {
    let h = Home::new("stdin-attach");
    h.script("echo.py", ECHO_PY);
    h.ok(&["start", "echo.py"]);
    wait_until(secs(10), "ready", || {
        h.read_log("echo-out.log").contains("ready")
    });
    let session = format!("ward-attach-{}", std::process::id());
    let cmd = format!(
        "cd {} && WARD_HOME={} {} attach echo",
        h.dir.display(),
        h.root.display(),
        BIN
    );
    let tmux = |args: &[&str]| {
        std::process::Command::new("tmux")
            .args(args)
            .output()
            .expect("tmux is installed")
    };
    let ok = tmux(&[
        "new-session",
        "-d",
        "-s",
        &session,
        "-x",
        "100",
        "-y",
        "20",
        &cmd,
    ])
    .status
    .success();
    assert!(ok, "tmux new-session");
    struct Kill(String);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = std::process::Command::new("tmux")
                .args(["kill-session", "-t", &self.0])
                .output();
        }
    }
    let _guard = Kill(session.clone());
    let screen = || {
        String::from_utf8_lossy(&tmux(&["capture-pane", "-p", "-t", &session]).stdout).into_owned()
    };
    wait_until(secs(10), "attached banner", || {
        screen().contains("attached to echo")
    });
    tmux(&["send-keys", "-t", &session, "typed in tmux", "Enter"]);
    wait_until(secs(10), "echo on screen", || {
        screen().contains("got typed in tmux")
    });
    assert!(h.read_log("echo-out.log").contains("got typed in tmux"));
    tmux(&["send-keys", "-t", &session, "C-c", ""]);
    // Ctrl-C ends `ward attach`, and with it the tmux session that ran only it.
    wait_until(secs(10), "attach ended", || {
        !tmux(&["has-session", "-t", &session]).status.success()
    });
    assert_eq!(
        h.status("echo").as_deref(),
        Some("online"),
        "detaching leaves the app running"
    );
}

#[test]
fn apps_get_the_file_limit_the_daemon_had_not_its_raised_one() {
    let h = Home::new("stdin-nofile");
    h.ok(&["start", "sleep", "--", "1000"]);
    let pid = h.pid("sleep").unwrap();
    let mine = std::fs::read_to_string("/proc/self/limits").unwrap();
    let line = |s: &str| {
        s.lines()
            .find(|l| l.starts_with("Max open files"))
            .unwrap()
            .split_whitespace()
            .skip(3)
            .take(2)
            .collect::<Vec<_>>()
            .join(" ")
    };
    wait_until(secs(5), "limit given back", || {
        let theirs = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
        line(&theirs) == line(&mine)
    });
}
