//! Issue 17: pm2 fidelity. Each test drives ward through a `pm2` link with PM2_HOME in a
//! temporary folder and checks what pm2 7 prints, exits with, writes or lists.
mod util;
use std::process::{Command, Output};
use util::*;

fn pm2_in(h: &Home, dir: &std::path::Path, args: &[&str]) -> Output {
    h.pm2_in(dir, args)
}

/// `pm2 ARGS` through a link named pm2 to the ward binary, from the test's scratch folder.
fn pm2(h: &Home, args: &[&str]) -> Output {
    h.pm2_in(&h.dir, args)
}

fn ok(h: &Home, args: &[&str]) -> String {
    let o = pm2(h, args);
    assert!(
        o.status.success(),
        "pm2 {args:?} failed:\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn jlist(h: &Home) -> Vec<serde_json::Value> {
    let s = ok(h, &["jlist"]);
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("jlist is not JSON ({e}):\n{s}"))
}

fn app(h: &Home, name: &str) -> serde_json::Value {
    jlist(h)
        .into_iter()
        .find(|a| a["name"] == name)
        .unwrap_or_else(|| panic!("no app {name}"))
}

fn status(h: &Home, name: &str) -> String {
    app(h, name)["pm2_env"]["status"]
        .as_str()
        .unwrap()
        .to_string()
}

const LOOP: &str = "#!/bin/sh\necho up\nexec sleep 1000\n";

/// Item 1 (Client.js:697): an app is found by its script file, resolved against the
/// current folder, for stop, restart, reload and delete.
#[test]
fn item01_target_an_app_by_its_script_file() {
    let h = Home::new("fid-script-target");
    h.script("echo.sh", LOOP);
    std::fs::create_dir_all(h.dir.join("sub")).unwrap();
    ok(&h, &["start", "echo.sh", "--name", "api"]);
    ok(&h, &["stop", "echo.sh"]);
    assert_eq!(status(&h, "api"), "stopped");
    ok(&h, &["restart", "echo.sh"]);
    assert_eq!(status(&h, "api"), "online");
    let o = pm2_in(&h, &h.dir.join("sub"), &["reload", "../echo.sh"]);
    assert!(o.status.success(), "{}", stderr(&o));
    // Another folder has no such script: not found.
    let o = pm2_in(&h, &h.dir.join("sub"), &["stop", "echo.sh"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    ok(&h, &["delete", "echo.sh"]);
    assert!(jlist(&h).is_empty());
}

/// Item 4 (binaries/CLI.js:31-96): every pm2 option is accepted on every command; those
/// with a process-management meaning act; pm2.io/V8 options cost one line on stderr.
#[test]
fn item04_every_pm2_option_is_accepted() {
    let h = Home::new("fid-options");
    h.script("a.sh", LOOP);
    h.script(
        "env.sh",
        "#!/bin/sh\necho \"secret=${FID_SECRET_X:-none} slot=${SLOT:-none}\"\nexec sleep 1000\n",
    );
    h.script("chunks.sh", "#!/bin/sh\nprintf 'one'\nexec sleep 1000\n");
    // Registered, not started; -x, --parallel and the pm2.io options change nothing.
    let o = pm2(
        &h,
        &[
            "start",
            "a.sh",
            "--no-autostart",
            "-x",
            "--parallel",
            "2",
            "--no-vizion",
            "--v8",
            "--no-pmx",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert_eq!(
        err.lines().count(),
        1,
        "one line for the ignored options: {err}"
    );
    assert!(err.contains("--no-vizion"), "{err}");
    assert_eq!(status(&h, "a"), "stopped");
    // Global options on other commands, as pm2 allows.
    ok(&h, &["start", "a", "--update-env", "--no-color"]);
    ok(&h, &["stop", "a", "--parallel", "4", "-a"]);
    ok(&h, &["jlist", "--no-automation"]);
    // An option pm2 refuses is refused.
    let o = pm2(&h, &["start", "a.sh", "--bogus"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("--bogus"), "{}", stderr(&o));
    // --filter-env and --instance-var.
    let o = std::process::Command::new(h.dir.join("bin/pm2"))
        .args([
            "start",
            "env.sh",
            "--filter-env",
            "--filter-env=FID_SECRET",
            "--instance-var",
            "SLOT",
        ])
        .env("PM2_HOME", &h.root)
        .env("FID_SECRET_X", "leaked")
        .current_dir(&h.dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let log = h.root.join("logs/env-out.log");
    wait_until(secs(20), "env.sh output", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.contains("slot="))
    });
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        "secret=none slot=0\n"
    );
    // --log-type json: pm2's JSON line per chunk.
    ok(
        &h,
        &["start", "chunks.sh", "--log-type", "json", "--name", "j"],
    );
    let log = h.root.join("logs/j-out.log");
    wait_until(secs(20), "json log", || {
        std::fs::read_to_string(&log).is_ok_and(|s| s.ends_with('\n'))
    });
    let line: serde_json::Value =
        serde_json::from_str(std::fs::read_to_string(&log).unwrap().trim()).unwrap();
    assert_eq!(line["message"], "one");
    assert_eq!(line["type"], "out");
    assert_eq!(line["app_name"], "j");
    assert!(line["process_id"].is_u64());
    assert!(line["timestamp"].as_str().unwrap().ends_with('Z'));
    // --disable-logs: nothing kept.
    ok(
        &h,
        &["start", "chunks.sh", "--disable-logs", "--name", "quiet"],
    );
    wait_until(secs(20), "quiet online", || status(&h, "quiet") == "online");
    assert_eq!(
        std::fs::read_to_string(h.root.join("logs/quiet-out.log")).unwrap_or_default(),
        ""
    );
}

/// Item 5 (API.js:1548-1575): all-digit names; a number is a name first, then a
/// namespace, then an id.
#[test]
fn item05_all_digit_names() {
    let h = Home::new("fid-digits");
    h.script("a.sh", LOOP);
    ok(&h, &["start", "a.sh", "--name", "first"]);
    ok(&h, &["start", "a.sh", "--name", "455", "-f"]);
    assert_eq!(app(&h, "455")["pm_id"], 1);
    ok(&h, &["stop", "455"]);
    assert_eq!(status(&h, "455"), "stopped");
    assert_eq!(status(&h, "first"), "online");
    // No app named 0: the id.
    ok(&h, &["stop", "0"]);
    assert_eq!(status(&h, "first"), "stopped");
}

/// Item 11 (API.js:1458-1460): `all` that names no app is an error.
#[test]
fn item11_all_with_no_app_is_an_error() {
    let h = Home::new("fid-all-empty");
    for verb in ["stop", "restart", "reload", "delete"] {
        let o = pm2(&h, &[verb, "all"]);
        assert_eq!(o.status.code(), Some(1), "{verb}");
        assert_eq!(stderr(&o), "[PM2][WARN] No process found\n", "{verb}");
    }
}

/// Item 14 (God/ForkMode.js:158-188): without timestamps output goes to the log files as
/// it arrives, partial lines included, the combined file (`-l`) too.
#[test]
fn item14_log_output_as_it_arrives() {
    let h = Home::new("fid-chunks");
    h.script(
        "part.sh",
        "#!/bin/sh\nprintf 'half'\nprintf 'err' >&2\nexec sleep 1000\n",
    );
    ok(&h, &["start", "part.sh", "-l", "all.log"]);
    let (out, all) = (h.root.join("logs/part-out.log"), h.dir.join("all.log"));
    wait_until(secs(20), "the partial line in both files", || {
        std::fs::read_to_string(&out).is_ok_and(|s| s == "half")
            && std::fs::read_to_string(&all).is_ok_and(|s| s.len() == 7)
    });
    let all = std::fs::read_to_string(&all).unwrap();
    assert!(all == "halferr" || all == "errhalf", "{all}");
}

/// Item 3 (binaries/CLI.js:253-300): several scripts in one start share the options and
/// the `-- args`.
#[test]
fn item03_several_scripts_share_options_and_args() {
    let h = Home::new("fid-several");
    let body = "#!/bin/sh\necho \"$(basename $0) $*\"\nexec sleep 1000\n";
    h.script("a.sh", body);
    h.script("b.sh", body);
    ok(
        &h,
        &[
            "start",
            "a.sh",
            "b.sh",
            "-o",
            "x.log",
            "--merge-logs",
            "--",
            "argv1",
            "argv2",
        ],
    );
    for name in ["a", "b"] {
        assert_eq!(
            app(&h, name)["pm2_env"]["args"],
            serde_json::json!(["argv1", "argv2"])
        );
    }
    let x = h.dir.join("x.log");
    wait_until(secs(20), "both apps in x.log", || {
        std::fs::read_to_string(&x)
            .is_ok_and(|s| s.contains("a.sh argv1 argv2\n") && s.contains("b.sh argv1 argv2\n"))
    });
}

/// Item 6 (God.js:205): `-p echo.pid` is written as `echo-ID.pid` and removed on stop.
#[test]
fn item06_custom_pid_file_per_copy() {
    let h = Home::new("fid-pidfile");
    h.script("echo.sh", LOOP);
    ok(&h, &["start", "echo.sh", "-p", "echo.pid", "-i", "2"]);
    let (p0, p1) = (h.dir.join("echo-0.pid"), h.dir.join("echo-1.pid"));
    let pids: Vec<u64> = jlist(&h)
        .iter()
        .map(|a| a["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(
        std::fs::read_to_string(&p0).unwrap().trim(),
        pids[0].to_string()
    );
    assert_eq!(
        std::fs::read_to_string(&p1).unwrap().trim(),
        pids[1].to_string()
    );
    assert_eq!(
        app(&h, "echo")["pm2_env"]["pm_pid_path"],
        p0.to_string_lossy().as_ref()
    );
    assert!(!h.dir.join("echo.pid").exists());
    ok(&h, &["stop", "all"]);
    assert!(!p0.exists() && !p1.exists(), "removed on stop");
}

/// Item 7 (God/ActionMethods.js:411-416, God.js:512-518): restart counts only a running
/// app; a delayed crash restart counts when it fires, `waiting restart` meanwhile.
#[test]
fn item07_restarts_counted_as_pm2() {
    let h = Home::new("fid-count");
    h.script("a.sh", LOOP);
    ok(&h, &["start", "a.sh"]);
    ok(&h, &["restart", "a"]);
    assert_eq!(app(&h, "a")["pm2_env"]["restart_time"], 1);
    ok(&h, &["stop", "a"]);
    ok(&h, &["restart", "a"]);
    assert_eq!(
        app(&h, "a")["pm2_env"]["restart_time"],
        1,
        "a stopped app's restart is not counted"
    );
    // Crashes after 0.5 s, restarts 3 s later.
    h.script("crash.sh", "#!/bin/sh\nsleep 0.5\nexit 3\n");
    ok(&h, &["start", "crash.sh", "--restart-delay", "3000"]);
    wait_until(secs(20), "waiting restart", || {
        status(&h, "crash") == "waiting restart"
    });
    assert_eq!(app(&h, "crash")["pm2_env"]["restart_time"], 0);
    wait_until(secs(20), "the delayed restart", || {
        app(&h, "crash")["pm2_env"]["restart_time"] == 1
    });
}

/// Item 10 (Client.js:507-522): any stop or delete stops watching; restart --watch and
/// start --watch of a registered app toggle it.
#[test]
fn item10_watch_follows_pm2s_rules() {
    let h = Home::new("fid-watch");
    h.script("a.sh", LOOP);
    ok(&h, &["start", "a.sh", "--watch"]);
    assert_eq!(app(&h, "a")["pm2_env"]["watch"], true);
    ok(&h, &["stop", "a"]);
    assert_eq!(app(&h, "a")["pm2_env"]["watch"], false);
    ok(&h, &["start", "a.sh", "--watch"]);
    assert_eq!(app(&h, "a")["pm2_env"]["watch"], true);
    assert_eq!(status(&h, "a"), "online");
    ok(&h, &["restart", "a", "--watch"]);
    assert_eq!(app(&h, "a")["pm2_env"]["watch"], false);
    ok(&h, &["restart", "a", "--watch"]);
    assert_eq!(app(&h, "a")["pm2_env"]["watch"], true);
}

/// Item 12 (API/Startup.js:556-586): a dump that does not parse is reported and the
/// backup used; ward keeps the damaged file as dump.pm2.broken.
#[test]
fn item12_resurrect_falls_back_to_the_backup() {
    let h = Home::new("fid-resurrect");
    h.script("a.sh", LOOP);
    ok(&h, &["start", "a.sh"]);
    ok(&h, &["save"]);
    ok(&h, &["save"]);
    assert!(h.root.join("dump.pm2.bak").exists());
    ok(&h, &["kill"]);
    std::fs::write(h.root.join("dump.pm2"), "[{\"name\": ").unwrap();
    let o = pm2(&h, &["resurrect"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let said = stderr(&o);
    assert!(
        said.starts_with("[PM2][ERROR] Failed to parse dump file in "),
        "{said}"
    );
    assert_eq!(status(&h, "a"), "online");
    assert_eq!(
        std::fs::read_to_string(h.root.join("dump.pm2.broken")).unwrap(),
        "[{\"name\": "
    );
    // A missing dump also falls back.
    ok(&h, &["kill"]);
    std::fs::remove_file(h.root.join("dump.pm2")).ok();
    ok(&h, &["resurrect"]);
    assert_eq!(status(&h, "a"), "online");
}

/// Item 13 (API/Extra.js:617): `init simple` writes pm2's short template.
#[test]
fn item13_init_simple() {
    let h = Home::new("fid-init");
    let out = ok(&h, &["init", "simple"]);
    assert!(out.starts_with("File "), "{out}");
    assert_eq!(
        std::fs::read_to_string(h.dir.join("ecosystem.config.js")).unwrap(),
        "module.exports = {\n  apps : [{\n    name   : \"app1\",\n    script : \"./app.js\"\n  }]\n}\n"
    );
    std::fs::remove_file(h.dir.join("ecosystem.config.js")).unwrap();
    ok(&h, &["ecosystem"]);
    let full = std::fs::read_to_string(h.dir.join("ecosystem.config.js")).unwrap();
    assert!(full.len() > 200 && full.contains("module.exports"));
}

/// Item 8 (Utility.js:33-76, API.js:1091): `restart FILE` applies every key the file
/// gives the app, `'null'` deletes one, and starts the apps that are not running.
#[test]
fn item08_restart_file_applies_the_file() {
    let h = Home::new("fid-restart-file");
    h.script("a.sh", LOOP);
    ok(
        &h,
        &[
            "start",
            "a.sh",
            "--name",
            "api",
            "--max-restarts",
            "3",
            "--restart-delay",
            "100",
        ],
    );
    std::fs::write(
        h.dir.join("eco.json"),
        r#"{"apps": [
            {"name": "api", "script": "a.sh", "max_restarts": 7, "restart_delay": "null"},
            {"name": "worker", "script": "a.sh"},
            {"name": "other", "script": "a.sh"}
        ]}"#,
    )
    .unwrap();
    let out = ok(&h, &["restart", "eco.json"]);
    assert!(
        out.contains("[PM2][WARN] Applications worker, other not running, starting..."),
        "{out}"
    );
    let api = app(&h, "api");
    assert_eq!(api["pm2_env"]["max_restarts"], 7);
    assert_eq!(api["pm2_env"]["restart_delay"], 0);
    assert_eq!(api["pm2_env"]["restart_time"], 1);
    assert_eq!(status(&h, "worker"), "online");
    assert_eq!(status(&h, "other"), "online");
}

/// Item 9 (API.js:1587-1640): options given to restart/reload are applied.
#[test]
fn item09_options_on_restart_are_applied() {
    let h = Home::new("fid-restart-opts");
    h.script("a.sh", LOOP);
    ok(&h, &["start", "a.sh"]);
    ok(&h, &["restart", "0", "--name", "new"]);
    assert_eq!(app(&h, "new")["pm_id"], 0);
    ok(&h, &["stop", "new"]);
    // --node-args on a script that is not node: stored and shown as pm2 does.
    ok(
        &h,
        &[
            "restart",
            "a.sh",
            "--node-args=--harmony",
            "--interpreter",
            "sh",
        ],
    );
    let a = app(&h, "new");
    assert_eq!(a["pm2_env"]["node_args"], serde_json::json!(["--harmony"]));
    assert_eq!(status(&h, "new"), "online");
    ok(&h, &["reload", "new", "--node-args=null", "--", "x", "y"]);
    let a = app(&h, "new");
    assert_eq!(a["pm2_env"]["node_args"], serde_json::json!([]));
    assert_eq!(a["pm2_env"]["args"], serde_json::json!(["x", "y"]));
    // A bad value changes nothing.
    let o = pm2(&h, &["restart", "new", "--name", "a/b"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(jlist(&h).iter().any(|a| a["name"] == "new"));
}

/// Item 2 (Common.js:723-763, 922): a script with a space runs through `bash -c`; its
/// name is the string's base name cut at its last dot.
#[test]
fn item02_command_strings_run_through_bash() {
    let h = Home::new("fid-cmdstring");
    ok(&h, &["start", "echo started; exec sleep 1000 # v1.2"]);
    let a = &jlist(&h)[0];
    assert_eq!(a["name"], "echo started; exec sleep 1000 # v1");
    let exec = a["pm2_env"]["pm_exec_path"].as_str().unwrap();
    assert!(exec.ends_with("/bash") || exec.ends_with("/sh"), "{exec}");
    assert_eq!(a["pm2_env"]["exec_interpreter"], "none");
    assert_eq!(
        a["pm2_env"]["args"],
        serde_json::json!(["-c", "echo started; exec sleep 1000 # v1.2"])
    );
    assert_eq!(status(&h, "echo started; exec sleep 1000 # v1"), "online");
    std::fs::write(
        h.dir.join("eco.json"),
        r#"{"apps": [{"name": "c", "cmd": "echo from-eco; exec sleep 1000"}]}"#,
    )
    .unwrap();
    ok(&h, &["start", "eco.json"]);
    wait_until(secs(20), "the command's output", || {
        std::fs::read_to_string(h.root.join("logs/c-out.log")).is_ok_and(|s| s == "from-eco\n")
    });
}

/// Item 16 (Common.js:203-232, API/schema.json, API.js:871-872): jlist fields as pm2.
#[test]
fn item16_jlist_fields_as_pm2() {
    let h = Home::new("fid-jlist");
    std::fs::write(h.dir.join("app.js"), "setInterval(() => {}, 1000);\n").unwrap();
    h.script("a.sh", LOOP);
    ok(&h, &["start", "app.js", "-l"]);
    ok(&h, &["start", "a.sh"]);
    std::fs::write(
        h.dir.join("eco.json"),
        r#"{"apps": [{"name": "eco", "script": "a.sh"}]}"#,
    )
    .unwrap();
    ok(&h, &["start", "eco.json"]);
    let l = jlist(&h);
    let (node, sh, eco) = (&l[0]["pm2_env"], &l[1]["pm2_env"], &l[2]["pm2_env"]);
    assert_eq!(
        node["pm_log_path"],
        h.root.join("logs/app.log").to_string_lossy().as_ref()
    );
    assert!(sh.get("pm_log_path").is_none());
    for k in ["vizion", "pmx", "automation"] {
        assert_eq!(sh[k], true, "{k}");
    }
    assert_eq!(node["env"]["app"], serde_json::json!({}));
    assert_eq!(eco["env"]["eco"], "{}");
    assert_eq!(eco["eco"], "{}");
    assert!(sh.get("a").is_none());
    assert_eq!(node["axm_options"]["module_name"], "app");
    assert!(node["axm_options"]["module_version"].is_string());
    assert_eq!(sh["axm_options"], serde_json::json!({}));
}

/// Item 17: pm2 mode speaks as pm2: `[PM2]` prefixes, `[PM2][ERROR]` errors, pm2's
/// command names in messages, `pm2 id`, and pm2's exit codes.
#[test]
fn item17_pm2_mode_speaks_as_pm2() {
    let h = Home::new("fid-speak");
    h.script("a.sh", LOOP);
    let out = ok(&h, &["start", "a.sh"]);
    assert!(out.starts_with("[PM2] "), "{out}");
    assert!(!out.contains("[ward]"), "{out}");
    let o = pm2(&h, &["stop", "nope"]);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "[PM2][ERROR] Process or Namespace nope not found\n"
    );
    ok(&h, &["start", "a.sh", "-f"]);
    assert_eq!(ok(&h, &["id", "a"]), "[ 0, 1 ]\n");
    assert_eq!(ok(&h, &["id", "a.sh"]), "[ 0, 1 ]\n");
    assert_eq!(ok(&h, &["id", "nope"]), "[]\n");
    let o = pm2(&h, &["scale", "a", "0"]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.starts_with("[PM2][ERROR] ") && err.contains("`pm2 delete a`"),
        "{err}"
    );
    let o = pm2(&h, &["version"]);
    assert_eq!(o.status.code(), Some(1), "pm2 7 has no `version` command");
    ok(&h, &["delete", "all"]);
    let o = pm2(&h, &["save"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(stderr(&o).starts_with("[PM2][WARN] "), "{}", stderr(&o));
    assert!(stderr(&o).contains("`pm2 save --force`"), "{}", stderr(&o));
}

/// Item 18 (API/Startup.js:138-263): `pm2 startup` writes a unit that brings the pm2-mode
/// daemon back with dump.pm2, as `pm2-USER`, with pm2's platform names.
#[test]
fn item18_startup_brings_back_the_pm2_dump() {
    let h = Home::new("fid-startup");
    h.script("a.sh", LOOP);
    let dest = h.dir.join("root");
    let dest_s = dest.to_string_lossy().into_owned();
    ok(&h, &["startup", "systemd", "-u", "root", "--dest", &dest_s]);
    let unit = std::fs::read_to_string(dest.join("etc/systemd/system/pm2-root.service"))
        .expect("the unit is named pm2-USER");
    let root_s = h.root.to_string_lossy().into_owned();
    assert!(
        unit.contains(&format!("Environment=WARD_HOME={root_s}\n")),
        "{unit}"
    );
    assert!(unit.contains("Environment=WARD_MODE=pm2\n"), "{unit}");
    // -u USER --hp HOME without PM2_HOME: HOME/.pm2.
    let o = Command::new(h.dir.join("bin/pm2"))
        .args([
            "startup",
            "upstart",
            "-u",
            "alice",
            "--hp",
            "/home/alice",
            "--dest",
        ])
        .arg(&dest)
        .env_remove("PM2_HOME")
        .env_remove("WARD_HOME")
        .env("HOME", &h.dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let init = std::fs::read_to_string(dest.join("etc/init.d/pm2-alice")).unwrap();
    assert!(init.contains("WARD_HOME=\"/home/alice/.pm2\""), "{init}");
    assert!(init.contains("WARD_MODE=pm2"), "{init}");
    // What the unit runs at boot brings back what `pm2 save` wrote.
    ok(&h, &["start", "a.sh"]);
    ok(&h, &["save"]);
    ok(&h, &["kill"]);
    let mut boot = Command::new(BIN);
    boot.args(["daemon", "--resurrect"])
        .env_remove("PM2_HOME")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    for line in unit.lines() {
        if let Some((k, v)) = line
            .strip_prefix("Environment=")
            .and_then(|kv| kv.split_once('='))
        {
            boot.env(k, v);
        }
    }
    let mut child = boot.spawn().unwrap();
    // Asked before the boot daemon answers, a client would start a daemon of its own.
    let pid_file = h.root.join("pm2.pid");
    wait_until(secs(20), "the boot daemon", || {
        std::fs::read_to_string(&pid_file).is_ok_and(|s| s.trim() == child.id().to_string())
    });
    wait_until(secs(20), "the saved app back", || {
        pm2(&h, &["jlist"]).status.success()
            && jlist(&h)
                .iter()
                .any(|a| a["name"] == "a" && a["pm2_env"]["status"] == "online")
    });
    ok(&h, &["kill"]);
    let _ = child.wait();
}

/// Item 19: a signal sent right after `start` reaches a Node app's handler.
#[test]
fn item19_send_signal_right_after_start_reaches_node() {
    let h = Home::new("fid-node-signal");
    std::fs::write(
        h.dir.join("sig.js"),
        "process.on('SIGUSR2', () => console.log('got USR2'));\nsetInterval(() => {}, 1000);\n",
    )
    .unwrap();
    for i in 0..3 {
        let name = format!("s{i}");
        ok(&h, &["start", "sig.js", "--name", &name]);
        ok(&h, &["sendSignal", "SIGUSR2", &name]);
        let log = h.root.join(format!("logs/{name}-out.log"));
        wait_until(secs(20), "the handler's line", || {
            std::fs::read_to_string(&log).is_ok_and(|s| s.contains("got USR2"))
        });
        assert_eq!(status(&h, &name), "online");
        assert_eq!(app(&h, &name)["pm2_env"]["restart_time"], 0);
    }
}

/// Item 15 (Common.js:285-296, API.js:947-950): a `.json` file or a piped list is a
/// JavaScript expression (node evaluates what JSON cannot say); `pm2` works like `apps`.
#[test]
fn item15_json_files_are_javascript_expressions() {
    let h = Home::new("fid-jsexpr");
    h.script("a.sh", LOOP);
    std::fs::write(
        h.dir.join("eco.json"),
        "{\n  // a comment, single quotes and a computed value, as pm2 reads them\n  pm2: [{ name: 'calc-' + (40 + 2), script: 'a.sh' }]\n}\n",
    )
    .unwrap();
    ok(&h, &["start", "eco.json"]);
    assert_eq!(status(&h, "calc-42"), "online");
    let mut c = Command::new(h.dir.join("bin/pm2"));
    c.args(["start", "-"])
        .env("PM2_HOME", &h.root)
        .current_dir(&h.dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b"{ apps: [{ name: 'piped', script: 'a.sh' }] }")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(status(&h, "piped"), "online");
}

/// Item 4, the options that act: --no-treekill, --increment-var, --uid, --ext, -w,
/// --attach.
#[test]
fn item04_options_with_a_meaning_act() {
    let h = Home::new("fid-options-act");
    // --no-treekill: a stop leaves the app's children running.
    h.script(
        "tree.sh",
        "#!/bin/sh\nsleep 1001 &\necho $! > child.pid\nexec sleep 1000\n",
    );
    ok(&h, &["start", "tree.sh", "--no-treekill"]);
    assert_eq!(app(&h, "tree")["pm2_env"]["treekill"], false);
    let child_pid = h.dir.join("child.pid");
    wait_until(secs(20), "child pid", || {
        std::fs::read_to_string(&child_pid).is_ok_and(|s| s.ends_with('\n'))
    });
    let child: u32 = std::fs::read_to_string(&child_pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    ok(&h, &["stop", "tree"]);
    assert!(alive(child), "the child outlives a stop without treekill");
    let _ = Command::new("kill").arg(child.to_string()).status();
    // --increment-var: counts up from the environment's value, copy by copy.
    h.script(
        "port.sh",
        "#!/bin/sh\necho \"port=$PORT\"\nexec sleep 1000\n",
    );
    let o = Command::new(h.dir.join("bin/pm2"))
        .args(["start", "port.sh", "-i", "3", "--increment-var", "PORT"])
        .env("PM2_HOME", &h.root)
        .env("PORT", "3000")
        .current_dir(&h.dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let ports: Vec<String> = jlist(&h)
        .iter()
        .filter(|a| a["name"] == "port")
        .map(|a| a["pm2_env"]["env"]["PORT"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ports, ["3000", "3001", "3002"]);
    // --uid: as root the app runs as that user; otherwise a clear refusal.
    let o = pm2(
        &h,
        &["start", "a-missing-user.sh", "--uid", "no-such-user-x"],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("User no-such-user-x cannot be found"),
        "{}",
        stderr(&o)
    );
    h.script("who.sh", LOOP);
    let o = pm2(&h, &["start", "who.sh", "--uid", "65534", "--gid", "65534"]);
    let root = std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"));
    if root {
        assert!(o.status.success(), "{}", stderr(&o));
        // From an ecosystem file too.
        std::fs::write(
            h.dir.join("owner.json"),
            r#"{"apps": [{"name": "who2", "script": "who.sh", "uid": 65534, "gid": "65534"}]}"#,
        )
        .unwrap();
        ok(&h, &["start", "owner.json"]);
        for name in ["who", "who2"] {
            let pid = app(&h, name)["pid"].as_u64().unwrap();
            let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let uid = st.lines().find(|l| l.starts_with("Uid:")).unwrap();
            assert_eq!(
                uid.split_whitespace().nth(1),
                Some("65534"),
                "{name}: {uid}"
            );
        }
    } else {
        assert_eq!(o.status.code(), Some(1));
        assert!(
            stderr(&o).contains("need the daemon to run as root"),
            "{}",
            stderr(&o)
        );
    }
    // --ext: the other files are not watched.
    std::fs::create_dir_all(h.dir.join("w")).unwrap();
    std::fs::write(h.dir.join("w/notes.txt"), "").unwrap();
    std::fs::write(h.dir.join("w/lib.js"), "").unwrap();
    let w = h.dir.join("w");
    std::fs::copy(h.dir.join("who.sh"), w.join("ext.sh")).unwrap();
    let o = pm2_in(&h, &w, &["start", "ext.sh", "--watch", "--ext", "js"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let ignored = app(&h, "ext")["pm2_env"]["ignore_watch"].clone();
    assert!(
        ignored.as_array().unwrap().contains(&"notes.txt".into()),
        "{ignored}"
    );
    assert!(
        !ignored.as_array().unwrap().contains(&"lib.js".into()),
        "{ignored}"
    );
    // -w: the settings in ./NAME-pm2.json, which start reads back.
    let out = ok(&h, &["start", "who.sh", "-n", "written", "-w"]);
    assert!(out.contains("Writing configuration to"), "{out}");
    ok(&h, &["delete", "written"]);
    ok(&h, &["start", "written-pm2.json"]);
    assert_eq!(status(&h, "written"), "online");
    // --attach: the started app's output follows.
    h.script(
        "talk.sh",
        "#!/bin/sh\nwhile true; do echo attached-line; sleep 0.2; done\n",
    );
    let mut c = Command::new(h.dir.join("bin/pm2"))
        .args(["start", "talk.sh", "--attach"])
        .env("PM2_HOME", &h.root)
        .current_dir(&h.dir)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = c.stdout.take().unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let s2 = seen.clone();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            s2.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    wait_until(secs(20), "the app's lines on the terminal", || {
        seen.lock().unwrap().contains("attached-line")
    });
    let _ = c.kill();
    let _ = c.wait();
}

/// In pm2 mode every line ward adds speaks as pm2 (`[PM2] `), those on stderr too: the
/// note about fork-mode copies said `[ward]`.
#[test]
fn notes_on_stderr_speak_as_pm2() {
    let h = Home::new("fid-notes");
    h.script("loop.sh", LOOP);
    let o = pm2(&h, &["start", "loop.sh", "-i", "2"]);
    assert!(o.status.success(), "{o:?}");
    let err = stderr(&o);
    assert!(
        err.contains("[PM2] loop: 2 copies in fork mode") && !err.contains("[ward]"),
        "{err}"
    );
}
