//! Issue 10: called as `pm2`, ward keeps pm2's home, file names and answers.
mod util;
use std::process::Command;
use util::*;

/// A `pm2` link to the ward binary in the test's scratch folder.
fn pm2(h: &Home, args: &[&str]) -> std::process::Output {
    h.pm2_in(&h.dir, args)
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
    std::fs::write(
        h.dir.join("ecosystem.json"),
        r#"{"apps":[{"name":"web","script":"api.sh","env":{"MODE":"dev"},"env_production":{"MODE":"prod"}}]}"#,
    )
    .unwrap();
    ok(&h, &["start", "ecosystem.json", "--env", "production"]);
    let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
    let web = jl.iter().find(|a| a["name"] == "web").unwrap();
    assert_eq!(
        web["pm2_env"]["env_production"]["MODE"], "prod",
        "env_* blocks as pm2"
    );
    assert_eq!(web["pm2_env"]["env"]["MODE"], "prod");
    assert!(h.root.join("pids/web-2.pid").exists());
    let pretty = ok(&h, &["prettylist"]);
    assert!(pretty.contains("status: 'online'"), "{pretty}");
    assert!(
        pretty.contains("env_production: { MODE: 'prod' }"),
        "{pretty}"
    );
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
    assert_eq!(names, ["api", "worker", "web"]);
    assert_eq!(
        jl[2]["pm2_env"]["env_production"]["MODE"], "prod",
        "kept in dump.pm2"
    );
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

/// The fixture dump.pm2 (as real pm2 writes it), pointed at this test's folders, with
/// the scripts it names.
fn pm2_dump_fixture(h: &Home) -> String {
    let text = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dump.pm2"),
    )
    .unwrap();
    let app = h.dir.join("srv");
    std::fs::create_dir_all(app.join("jobs")).unwrap();
    let js = "console.log('up ' + process.argv.slice(2).join(' ') + ' ' + process.env.NODE_ENV + ' ' + process.env.NODE_APP_INSTANCE); setInterval(() => {}, 1000);\n";
    std::fs::write(app.join("api.js"), js).unwrap();
    std::fs::write(app.join("echo.js"), js).unwrap();
    std::fs::write(app.join("worker.py"), "import time\ntime.sleep(1000)\n").unwrap();
    text.replace("/srv/app", app.to_str().unwrap())
        .replace("/home/user/.pm2", h.root.to_str().unwrap())
}

#[test]
fn a_dump_written_by_pm2_is_resurrected_as_it_is() {
    let h = Home::new("pm2mode-dump");
    std::fs::create_dir_all(&h.root).unwrap();
    std::fs::write(h.root.join("dump.pm2"), pm2_dump_fixture(&h)).unwrap();
    let out = ok(&h, &["resurrect"]);
    assert!(out.contains("api"), "{out}");
    let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
    let names: Vec<&str> = jl.iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["api", "echo2", "echo2", "worker"],
        "names and ids order"
    );
    let ids: Vec<u64> = jl.iter().map(|a| a["pm_id"].as_u64().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3]);
    let api = &jl[0]["pm2_env"];
    assert_eq!(api["status"], "online");
    assert_eq!(api["exec_interpreter"], "node");
    assert_eq!(api["args"], serde_json::json!(["--port", "3000"]));
    assert_eq!(api["env"]["NODE_ENV"], "production");
    assert_eq!(api["kill_timeout"], 3000);
    assert_eq!(api["max_restarts"], 10);
    wait_until(secs(10), "api's output", || {
        std::fs::read_to_string(h.root.join("logs/api-out.log"))
            .is_ok_and(|s| s.contains("up --port 3000 production"))
    });
    // Instances keep their own slots and log files.
    wait_until(secs(10), "both instances log", || {
        let a = std::fs::read_to_string(h.root.join("logs/echo2-out-1.log")).unwrap_or_default();
        let b = std::fs::read_to_string(h.root.join("logs/echo2-out-2.log")).unwrap_or_default();
        a.contains("undefined 0") && b.contains("undefined 1")
    });
    let worker = &jl[3]["pm2_env"];
    assert_eq!(
        worker["status"], "stopped",
        "saved stopped, registered stopped"
    );
    assert_eq!(worker["exec_interpreter"], "python3");
    assert_eq!(worker["namespace"], "jobs");
    assert_eq!(worker["pm_cwd"], h.dir.join("srv/jobs").to_str().unwrap());
    assert_eq!(worker["autorestart"], false);
    // pm2 mode saves in pm2's format, and that comes back too.
    ok(&h, &["save"]);
    let dump: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(h.root.join("dump.pm2")).unwrap()).unwrap();
    let first = &dump[0];
    assert_eq!(first["name"], "api");
    assert!(
        first["pm_exec_path"]
            .as_str()
            .unwrap()
            .ends_with("srv/api.js")
    );
    assert!(first.get("pm_id").is_none(), "pm2 deletes pm_id from dumps");
    assert_eq!(first["env"]["NODE_ENV"], "production");
    ok(&h, &["kill"]);
    ok(&h, &["resurrect"]);
    let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
    assert_eq!(jl.len(), 4);
    assert_eq!(jl[0]["pm2_env"]["env"]["NODE_ENV"], "production");
    assert_eq!(jl[3]["pm2_env"]["status"], "stopped");
}

#[test]
fn import_pm2_registers_a_pm2_dump_in_wards_home() {
    let h = Home::new("pm2mode-import");
    let dump = h.dir.join("dump.pm2");
    std::fs::write(&dump, pm2_dump_fixture(&h)).unwrap();
    let d = dump.to_str().unwrap();
    h.ok(&["import-pm2", d]);
    let jl = h.jlist();
    assert_eq!(jl.len(), 4);
    assert!(
        jl.iter().all(|a| a["pm2_env"]["status"] == "stopped"),
        "stopped unless --start"
    );
    // pm2's default log paths became ward's.
    assert!(
        jl[0]["pm2_env"]["pm_out_log_path"]
            .as_str()
            .unwrap()
            .starts_with(h.root.to_str().unwrap())
    );
    // Already registered names are skipped and reported.
    let o = h.run(&["import-pm2", d, "--start"]);
    assert!(o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("already registered"));
    h.ok(&["delete", "all"]);
    h.ok(&["import-pm2", d, "--start"]);
    assert_eq!(h.status("api").as_deref(), Some("online"));
    assert_eq!(h.status("worker").as_deref(), Some("stopped"));
    std::fs::write(h.dir.join("not.json"), "{\"apps\": []}").unwrap();
    let err = h.fails(&["import-pm2", h.dir.join("not.json").to_str().unwrap()]);
    assert!(err.contains("not a pm2 dump"), "{err}");
}

#[test]
fn pm2_silent_and_update_pm2() {
    let h = Home::new("pm2mode-silent");
    ok(&h, &["start", "sleep", "-n", "quiet", "--", "1000"]);
    let link = h.dir.join("bin/pm2");
    let out = Command::new(&link)
        .args(["restart", "quiet"])
        .env("PM2_HOME", &h.root)
        .env("PM2_SILENT", "true")
        .env_remove("WARD_HOME")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "",
        "PM2_SILENT=true: no chatter"
    );
    let pid: u32 = std::fs::read_to_string(h.root.join("pm2.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let out = ok(&h, &["updatePM2"]);
    assert!(out.contains("updated in place"), "{out}");
    let after: u32 = std::fs::read_to_string(h.root.join("pm2.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert_eq!(pid, after, "same daemon, re-executed");
    let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
    assert_eq!(jl[0]["pm2_env"]["restart_time"], 1);
    ok(&h, &["kill"]);
}

#[test]
fn pm2_worker_interval_sets_the_memory_check_period_in_pm2_mode() {
    let h = Home::new("pm2mode-worker");
    // A daemon that checks memory every 200 ms restarts an app over a 1K limit about five
    // times a second; at the default 1000 ms, six restarts take six seconds.
    let link = h.dir.join("bin/pm2");
    let _ = pm2(&h, &["ping"]); // creates the link
    ok(&h, &["kill"]);
    let out = Command::new(&link)
        .args([
            "start",
            "sleep",
            "-n",
            "fat",
            "--max-memory-restart",
            "1K",
            "--",
            "1000",
        ])
        .env("PM2_HOME", &h.root)
        .env("PM2_WORKER_INTERVAL", "200")
        .env_remove("WARD_HOME")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restarts = || -> u64 {
        let jl: Vec<serde_json::Value> = serde_json::from_str(&ok(&h, &["jlist"])).unwrap();
        jl[0]["pm2_env"]["restart_time"].as_u64().unwrap_or(0)
    };
    wait_until(secs(4), "six memory restarts", || restarts() >= 6);
}
