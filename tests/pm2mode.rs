//! Issue 10: called as `pm2`, ward keeps pm2's home, file names and answers.
mod util;
use std::process::Command;
use util::*;

/// A `pm2` link to the ward binary in the test's scratch folder.
fn pm2(h: &Home, args: &[&str]) -> std::process::Output {
    let link = h.dir.join("bin/pm2");
    if !link.exists() {
        std::fs::create_dir_all(link.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(BIN, &link).unwrap();
    }
    Command::new(&link)
        .args(args)
        .env("PM2_HOME", &h.root)
        .env_remove("WARD_HOME")
        .env_remove("WARD_MODE")
        .current_dir(&h.dir)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

fn ok(h: &Home, args: &[&str]) -> String {
    let o = pm2(h, args);
    assert!(
        o.status.success(),
        "pm2 {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_pm2_session_uses_pm2s_files() {
    let h = Home::new("pm2mode");
    h.script("api.sh", "#!/bin/sh\necho api up\nexec sleep 1000\n");
    ok(&h, &["start", "api.sh"]);
    ok(&h, &["start", "sleep", "-n", "worker", "--", "1000"]);
    for f in ["pm2.pid", "pm2.log", "pids/api-0.pid", "pids/worker-1.pid"] {
        assert!(h.root.join(f).exists(), "{f} in PM2_HOME");
    }
    assert!(!h.root.join("ward.pid").exists() && !h.root.join("ward.log").exists());
    let pid: u32 = std::fs::read_to_string(h.root.join("pids/api-0.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
    assert_eq!(jl[0]["pid"], pid);
    assert_eq!(
        jl[0]["pm2_env"]["pm_pid_path"],
        h.root.join("pids/api-0.pid").to_str().unwrap()
    );
    wait_until(secs(5), "log", || {
        std::fs::read_to_string(h.root.join("logs/api-out.log")).is_ok_and(|s| s.contains("api up"))
    });
    let daemon: u32 = std::fs::read_to_string(h.root.join("pm2.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(alive(daemon));
    ok(&h, &["restart", "/^wor/"]);
    ok(&h, &["save"]);
    assert!(h.root.join("dump.pm2").exists());
    ok(&h, &["save"]);
    assert!(h.root.join("dump.pm2.bak").exists());
    ok(&h, &["kill"]);
    assert!(!alive(daemon));
    assert!(
        !h.root.join("pids/api-0.pid").exists(),
        "pid files go with their process"
    );
    ok(&h, &["resurrect"]);
    let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
    let names: Vec<&str> = jl.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["api", "worker"]);
    // --silent: no chatter, data still printed.
    assert_eq!(ok(&h, &["stop", "all", "-s"]), "");
    assert_eq!(ok(&h, &["pid", "--silent"]), "");
}

#[test]
fn cloud_and_module_verbs_answer_at_once() {
    let h = Home::new("pm2mode-verbs");
    for (verb, code) in [
        ("link", 0),
        ("unlink", 0),
        ("monitor", 0),
        ("unmonitor", 0),
        ("plus", 1),
        ("install", 1),
        ("uninstall", 1),
        ("module:generate", 1),
        ("set", 1),
        ("unset", 1),
        ("conf", 1),
        ("deploy", 1),
        ("serve", 1),
    ] {
        let o = pm2(&h, &[verb, "x"]);
        assert_eq!(o.status.code(), Some(code), "{verb}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("does not provide") && err.contains(verb),
            "{verb}: {err}"
        );
        assert_eq!(err.lines().count(), 1, "{verb}: one line");
    }
    assert!(
        !h.root.join("pm2.pid").exists(),
        "no daemon was started for them"
    );
    // Exit codes scripts rely on.
    assert_ne!(pm2(&h, &[]).status.code(), Some(0), "bare pm2");
    assert_ne!(pm2(&h, &["stop", "nope"]).status.code(), Some(0));
    assert_ne!(pm2(&h, &["restart", "42"]).status.code(), Some(0));
    h.script("a.sh", "#!/bin/sh\nexec sleep 1000\n");
    ok(&h, &["start", "a.sh"]);
    assert_ne!(
        pm2(&h, &["start", "a.sh"]).status.code(),
        Some(0),
        "already running"
    );
    ok(&h, &["kill"]);
}
