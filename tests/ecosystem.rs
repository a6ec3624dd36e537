//! Ecosystem files, environments, instances and namespaces (issue 5), against real
//! processes: every key reaches the app or its supervision, and a broken file starts nothing.
mod util;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde_json::Value;
use util::*;

/// Prints its arguments, its folder and its environment, then stays up.
const SHOW: &str = "#!/bin/sh\necho \"args=$*\"\necho \"pwd=$(pwd)\"\n/usr/bin/env | while read -r l; do echo \"env:$l\"; done\nexec /bin/sleep 1000\n";

fn put(h: &Home, rel: &str, body: &str) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let p = h.dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, body).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

fn fixture(h: &Home, name: &str, as_name: &str) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::copy(src, h.dir.join(as_name)).unwrap();
}

fn have_node() -> bool {
    std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .any(|d| Path::new(d).join("node").is_file())
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Runs ward with extra environment variables; returns (success, stdout, stderr).
fn run_env(h: &Home, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let mut c = h.cmd(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn apps_named(h: &Home, name: &str) -> Vec<Value> {
    h.jlist()
        .into_iter()
        .filter(|a| a["name"] == name)
        .collect()
}

fn env_of(a: &Value, key: &str) -> String {
    a["pm2_env"]["env"][key].as_str().unwrap_or("").to_string()
}

/// The stored spec of the first app of that name, from state.json.
fn spec(h: &Home, name: &str) -> Value {
    let s = std::fs::read_to_string(h.root.join("state.json")).unwrap();
    let v: Value = serde_json::from_str(&s).unwrap();
    v["apps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["spec"]["name"] == name)
        .map(|a| a["spec"].clone())
        .unwrap_or_else(|| panic!("no {name} in state.json:\n{s}"))
}

fn wait_file(p: &Path, needle: &str) {
    wait_until(
        secs(10),
        &format!("{} to contain {needle:?}", p.display()),
        || {
            std::fs::read_to_string(p)
                .unwrap_or_default()
                .contains(needle)
        },
    );
}

fn wait_log(h: &Home, file: &str, needle: &str) {
    wait_file(&h.log_path(file), needle);
}

fn wait_status(h: &Home, name: &str, status: &str) {
    wait_until(secs(10), &format!("{name} {status}"), || {
        h.status(name).as_deref() == Some(status)
    });
}

#[test]
fn js_fixture_with_env_production() {
    let h = Home::new("eco-js");
    fixture(&h, "ecosystem.config.js", "ecosystem.config.js");
    put(&h, "bin/api", SHOW);
    put(&h, "bin/worker", SHOW);
    put(
        &h,
        "bin/migrate",
        "#!/bin/sh\necho \"migrated NODE_ENV=$NODE_ENV\"\n",
    );
    h.ok(&["start", "ecosystem.config.js", "--env", "production"]);
    let api = apps_named(&h, "api");
    assert_eq!(api.len(), 2);
    for (i, a) in api.iter().enumerate() {
        assert_eq!(a["pm2_env"]["NODE_APP_INSTANCE"], i as u64);
        assert_eq!(a["pm2_env"]["instances"], 2);
        assert_eq!(env_of(a, "NODE_ENV"), "production");
        assert_eq!(env_of(a, "PORT"), "8080");
        let id = a["pm_id"].as_u64().unwrap();
        let log = format!("api-out-{id}.log");
        wait_log(&h, &log, &format!("env:NODE_APP_INSTANCE={i}"));
        wait_log(&h, &log, "env:NODE_ENV=production");
        wait_log(&h, &log, "env:API_DEBUG=true");
    }
    wait_log(&h, "worker-out.log", "args=--queue mail --concurrency 4");
    wait_log(
        &h,
        "worker-out.log",
        "env:QUEUE_URL=redis://queue.internal:6379/0",
    );
    wait_file(
        &h.dir.join("logs/migrate.log"),
        "migrated NODE_ENV=development",
    );
    wait_status(&h, "migrate", "stopped");
    let m = h.app("migrate").unwrap();
    assert_eq!(m["pm2_env"]["namespace"], "jobs");
    assert_eq!(m["pm2_env"]["restart_time"], 0);
    let s = spec(&h, "api");
    assert_eq!(s["max_memory_restart"], 300 << 20);
    assert_eq!(s["min_uptime"], 5000);
    assert_eq!(s["kill_timeout"], 3000);
    let s = spec(&h, "worker");
    assert_eq!(s["cron_restart"], "0 3 * * *");
    assert_eq!(s["restart_delay"], 1000);
}

#[test]
fn json_fixture_cluster_max_and_instance_var() {
    let h = Home::new("eco-json");
    fixture(&h, "ecosystem.json", "ecosystem.json");
    put(&h, "bin/web", SHOW);
    put(&h, "bin/warm", SHOW);
    let (ok, _, err) = run_env(&h, &["start", "ecosystem.json"], &[]);
    assert!(ok, "{err}");
    // Cluster mode is for Node apps: these copies are separate processes, and ward says so.
    assert!(
        err.contains("in fork mode: they do not share a port"),
        "{err}"
    );
    let web = apps_named(&h, "web");
    assert_eq!(web.len(), cpus());
    // merge_logs: every copy writes web-out.log.
    for i in 0..cpus() {
        wait_log(&h, "web-out.log", &format!("env:INSTANCE_ID={i}"));
    }
    wait_log(&h, "web-out.log", "env:WORKERS=2");
    assert_eq!(web[0]["pm2_env"]["instance_var"], "INSTANCE_ID");
    assert_eq!(web[0]["pm2_env"]["exec_mode"], "fork_mode");
    wait_log(&h, "cache-warmer-out.log", "args=--all --verbose");
    wait_log(&h, "cache-warmer-out.log", "env:APP_ROLE=warmer");
    let s = spec(&h, "cache-warmer");
    assert_eq!(s["watch"][0], h.dir.join("config").to_str().unwrap());
    assert_eq!(
        s["ignore_watch"],
        serde_json::json!(["node_modules", "logs"])
    );
    assert_eq!(s["stop_exit_codes"], serde_json::json!([0]));
    assert_eq!(s["max_restarts"], 5);
    assert_eq!(spec(&h, "web")["log_date_format"], "YYYY-MM-DD HH:mm Z");
}

#[test]
fn bare_array_and_namespace_targets() {
    let h = Home::new("eco-ns");
    fixture(&h, "processes.json", "processes.json");
    put(&h, "bin/echoenv", SHOW);
    h.ok(&["start", "processes.json"]);
    wait_log(&h, "alpha-out.log", "env:WHO=alpha");
    wait_log(&h, "beta-out.log", "env:WHO=beta");
    assert_eq!(spec(&h, "beta")["log_date_format"], "YYYY-MM-DDTHH:mm:ss");
    h.ok(&["restart", "batch"]);
    for n in ["alpha", "beta"] {
        assert_eq!(h.app(n).unwrap()["pm2_env"]["restart_time"], 1);
        assert_eq!(h.status(n).as_deref(), Some("online"));
    }
    h.ok(&["stop", "batch"]);
    assert_eq!(h.status("alpha").as_deref(), Some("stopped"));
    assert_eq!(h.status("beta").as_deref(), Some("stopped"));
    h.ok(&["delete", "batch"]);
    assert!(h.jlist().is_empty());
    // --namespace on the command line.
    h.script("loop", SHOW);
    h.ok(&["start", "loop", "-n", "x1", "--namespace", "ns1"]);
    h.ok(&["start", "loop", "-n", "x2", "--namespace", "ns1"]);
    h.ok(&["start", "loop", "-n", "x3"]);
    h.ok(&["restart", "ns1"]);
    assert_eq!(h.app("x1").unwrap()["pm2_env"]["restart_time"], 1);
    assert_eq!(h.app("x2").unwrap()["pm2_env"]["restart_time"], 1);
    assert_eq!(h.app("x3").unwrap()["pm2_env"]["restart_time"], 0);
    assert!(h.fails(&["restart", "ns-nope"]).contains("not found"));
}

#[test]
fn script_aliases_args_interpreter_and_cwd() {
    let h = Home::new("eco-keys");
    put(&h, "conf/show", SHOW);
    put(&h, "conf/sub/show", SHOW);
    put(&h, "conf/plain.txt", "echo traced\nexec /bin/sleep 1000\n");
    put(
        &h,
        "conf/eco.json",
        r#"{"apps": [
  {"name": "a1", "exec": "show"},
  {"name": "a2", "cmd": "./show", "args": "x 'y z'"},
  {"name": "a3", "command": "show", "args": ["p", "q r", 7]},
  {"name": "a4", "script": "plain.txt", "interpreter": "/bin/sh", "node_args": "-x"},
  {"name": "a5", "script": "show", "cwd": "sub", "out_file": "o.log", "error_file": "e.log"}
]}"#,
    );
    h.ok(&["start", "conf/eco.json"]);
    let conf = h.dir.join("conf");
    wait_log(&h, "a1-out.log", &format!("pwd={}", conf.display()));
    wait_log(&h, "a2-out.log", "args=x y z");
    wait_log(&h, "a3-out.log", "args=p q r 7");
    wait_log(&h, "a4-out.log", "traced");
    wait_log(&h, "a4-error.log", "+ echo traced");
    let a4 = h.app("a4").unwrap();
    assert_eq!(a4["pm2_env"]["exec_interpreter"], "/bin/sh");
    assert_eq!(a4["pm2_env"]["node_args"], serde_json::json!(["-x"]));
    wait_file(
        &conf.join("sub/o.log"),
        &format!("pwd={}", conf.join("sub").display()),
    );
    assert!(conf.join("sub/e.log").exists());
}

#[test]
fn restart_policy_keys_reach_supervision() {
    let h = Home::new("eco-policy");
    put(&h, "once", "#!/bin/sh\necho once\n");
    put(&h, "code3", "#!/bin/sh\nexit 3\n");
    put(&h, "flappy", "#!/bin/sh\nexit 1\n");
    put(&h, "delayed", "#!/bin/sh\necho ran\nexit 1\n");
    put(
        &h,
        "stubborn",
        "#!/bin/sh\ntrap '' INT\necho ready\nwhile :; do /bin/sleep 0.1; done\n",
    );
    put(
        &h,
        "termy",
        "#!/bin/sh\ntrap 'echo got-term; exit 0' TERM\necho ready\nwhile :; do /bin/sleep 0.1; done\n",
    );
    put(
        &h,
        "policy.config.js",
        "module.exports = { apps: [
  { name: 'once', script: 'once', autorestart: false },
  { name: 'code3', script: 'code3', stop_exit_codes: [3] },
  { name: 'flappy', script: 'flappy', max_restarts: 2, min_uptime: '1h' },
  { name: 'delayed', script: 'delayed', restart_delay: 60000 },
  { name: 'stubborn', script: 'stubborn', kill_timeout: 400 },
  { name: 'termy', script: 'termy', kill_signal: 'SIGTERM', kill_timeout: 5000 },
]};",
    );
    h.ok(&["start", "policy.config.js"]);
    wait_status(&h, "once", "stopped");
    wait_status(&h, "code3", "stopped");
    wait_status(&h, "flappy", "errored");
    wait_status(&h, "delayed", "waiting restart");
    assert_eq!(h.app("once").unwrap()["pm2_env"]["restart_time"], 0);
    assert_eq!(h.app("code3").unwrap()["pm2_env"]["restart_time"], 0);
    assert_eq!(h.app("flappy").unwrap()["pm2_env"]["restart_time"], 2);
    wait_log(&h, "stubborn-out.log", "ready");
    let t = Instant::now();
    h.ok(&["stop", "stubborn"]);
    assert!(t.elapsed().as_millis() >= 400, "{:?}", t.elapsed());
    assert_eq!(h.status("stubborn").as_deref(), Some("stopped"));
    wait_log(&h, "termy-out.log", "ready");
    h.ok(&["stop", "termy"]);
    wait_log(&h, "termy-out.log", "got-term");
}

#[test]
fn keys_of_other_features_round_trip() {
    let h = Home::new("eco-roundtrip");
    put(&h, "show", SHOW);
    put(
        &h,
        "eco.json",
        r#"{"apps": [{"name": "rt", "script": "show", "watch": true, "ignore_watch": "tmp",
  "watch_delay": 250, "max_memory_restart": "1.5G", "cron": "*/5 * * * *",
  "log_date_format": "HH:mm", "wait_ready": true, "listen_timeout": 8000,
  "log_file": true, "log_type": "json", "disable_logs": false, "port": 4321,
  "source_map_support": true, "vizion": false, "treekill": true},
 {"name": "later", "script": "show", "autostart": false}]}"#,
    );
    let (ok, _, err) = run_env(&h, &["start", "eco.json"], &[]);
    assert!(ok, "{err}");
    assert!(
        !err.contains("warning"),
        "known keys give no warning: {err}"
    );
    wait_status(&h, "rt", "online");
    let s = spec(&h, "rt");
    assert_eq!(s["watch"], serde_json::json!([h.dir.to_str().unwrap()]));
    assert_eq!(s["ignore_watch"], serde_json::json!(["tmp"]));
    assert_eq!(s["watch_delay"], 250);
    assert_eq!(s["max_memory_restart"], 1610612736u64);
    assert_eq!(s["cron_restart"], "*/5 * * * *");
    assert_eq!(s["log_date_format"], "HH:mm");
    assert_eq!(s["wait_ready"], true);
    assert_eq!(s["listen_timeout"], 8000);
    assert_eq!(s["log_type"], "json");
    assert_eq!(s["log_file"], h.log_path("rt.log").to_str().unwrap());
    wait_log(&h, "rt-out.log", "env:PORT=4321");
    assert_eq!(h.status("later").as_deref(), Some("stopped"));
    assert_eq!(spec(&h, "later")["autostart"], false);
}

#[test]
fn start_again_restarts_with_the_new_env() {
    let h = Home::new("eco-again");
    put(&h, "show", SHOW);
    let file = |v: &str| {
        put(
            &h,
            "eco.json",
            &format!(r#"{{"apps": [{{"name": "svc", "script": "show", "env": {{"V": "{v}"}}}}]}}"#),
        );
    };
    file("one");
    h.ok(&["start", "eco.json"]);
    wait_log(&h, "svc-out.log", "env:V=one");
    file("two");
    h.ok(&["start", "eco.json"]);
    let a = h.app("svc").unwrap();
    assert_eq!(a["pm2_env"]["restart_time"], 1);
    assert_eq!(env_of(&a, "V"), "two");
    wait_log(&h, "svc-out.log", "env:V=two");
    assert_eq!(h.jlist().len(), 1);
    // A stopped app is started, with the file's env too.
    h.ok(&["stop", "svc"]);
    file("three");
    h.ok(&["start", "eco.json"]);
    assert_eq!(h.status("svc").as_deref(), Some("online"));
    wait_log(&h, "svc-out.log", "env:V=three");
}

#[test]
fn update_env_and_ward_env() {
    let h = Home::new("eco-upenv");
    h.script("show", SHOW);
    let (ok, _, err) = run_env(&h, &["start", "show"], &[("FOO", "one")]);
    assert!(ok, "{err}");
    wait_log(&h, "show-out.log", "env:FOO=one");
    let (ok, out, err) = run_env(&h, &["restart", "show"], &[("FOO", "two"), ("BAR", "b")]);
    assert!(ok, "{err}");
    // pm2 prints its hint with the chatter, on stdout.
    assert!(out.contains("--update-env"), "{out}");
    assert_eq!(env_of(&h.app("show").unwrap(), "FOO"), "one");
    let (ok, _, err) = run_env(
        &h,
        &["restart", "show", "-a"],
        &[("FOO", "two"), ("BAR", "b")],
    );
    assert!(ok, "{err}");
    assert!(!err.contains("--update-env"), "{err}");
    let a = h.app("show").unwrap();
    assert_eq!(env_of(&a, "FOO"), "two");
    assert_eq!(env_of(&a, "BAR"), "b");
    wait_log(&h, "show-out.log", "env:FOO=two");
    // Merged, never deleted: a later -a without BAR keeps it.
    let (ok, _, err) = run_env(&h, &["reload", "show", "--update-env"], &[("FOO", "three")]);
    assert!(ok, "{err}");
    let env = h.ok(&["env", "0"]);
    for want in [
        "FOO: three\n",
        "BAR: b\n",
        "pm_id: 0\n",
        "name: show\n",
        "NODE_APP_INSTANCE: 0\n",
    ] {
        assert!(env.contains(want), "{want:?} in:\n{env}");
    }
    assert_eq!(h.ok(&["env", "show"]), env);
    assert!(h.fails(&["env", "9"]).contains("not found"));
}

#[test]
fn stop_restart_reload_delete_an_ecosystem_file() {
    let h = Home::new("eco-verbs");
    put(&h, "show", SHOW);
    put(
        &h,
        "apps.config.js",
        "module.exports = { apps: [
  { name: 'a', script: 'show', env: { E: 'a' }, env_production: { E: 'a-prod' } },
  { name: 'b', script: 'show' },
  { name: 'c', script: 'show' },
]};",
    );
    h.ok(&["start", "apps.config.js", "--only", "a,b"]);
    assert!(h.app("c").is_none());
    h.ok(&["start", "apps.config.js"]);
    assert_eq!(h.jlist().len(), 3);
    h.ok(&["stop", "apps.config.js", "--only", "b"]);
    assert_eq!(h.status("b").as_deref(), Some("stopped"));
    assert_eq!(h.status("a").as_deref(), Some("online"));
    h.ok(&["restart", "apps.config.js", "--env", "production"]);
    assert_eq!(h.status("b").as_deref(), Some("online"));
    let a = h.app("a").unwrap();
    assert_eq!(env_of(&a, "E"), "a-prod");
    assert_eq!(a["pm2_env"]["restart_time"], 2);
    wait_log(&h, "a-out.log", "env:E=a-prod");
    h.ok(&["reload", "apps.config.js", "--only", "c"]);
    assert_eq!(h.app("c").unwrap()["pm2_env"]["restart_time"], 2);
    h.ok(&["delete", "apps.config.js", "--only", "a,c"]);
    assert_eq!(h.jlist().len(), 1);
    let (ok, _, err) = run_env(&h, &["delete", "apps.config.js"], &[]);
    assert!(ok, "{err}");
    assert!(err.contains("app a is not registered; skipped"), "{err}");
    assert!(h.jlist().is_empty());
    let e = h.fails(&["stop", "apps.config.js"]);
    assert!(
        e.contains("none of the apps of apps.config.js is registered"),
        "{e}"
    );
    let e = h.fails(&["stop", "apps.config.js", "--only", "zz"]);
    assert!(e.contains("--only zz"), "{e}");
}

#[test]
fn instances_and_scale() {
    let h = Home::new("eco-scale");
    h.script("show", SHOW);
    h.ok(&["start", "show", "-n", "many", "-i", "3"]);
    let slots = |h: &Home| -> Vec<(u64, u64)> {
        apps_named(h, "many")
            .iter()
            .map(|a| {
                (
                    a["pm_id"].as_u64().unwrap(),
                    a["pm2_env"]["NODE_APP_INSTANCE"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(slots(&h), vec![(0, 0), (1, 1), (2, 2)]);
    for id in 0..3 {
        wait_log(
            &h,
            &format!("many-out-{id}.log"),
            &format!("env:NODE_APP_INSTANCE={id}"),
        );
        wait_log(
            &h,
            &format!("many-out-{id}.log"),
            &format!("env:pm_id={id}"),
        );
    }
    h.ok(&["scale", "many", "5"]);
    assert_eq!(slots(&h).len(), 5);
    h.ok(&["scale", "many", "-2"]);
    assert_eq!(slots(&h), vec![(0, 0), (1, 1), (2, 2)]);
    h.ok(&["delete", "1"]);
    h.ok(&["scale", "many", "+1"]);
    // The lowest free slot (1) goes to the new copy.
    assert_eq!(slots(&h), vec![(0, 0), (2, 2), (5, 1)]);
    wait_log(&h, "many-out-5.log", "env:NODE_APP_INSTANCE=1");
    assert_eq!(apps_named(&h, "many")[0]["pm2_env"]["instances"], 3);
    assert!(
        h.fails(&["scale", "many", "0"])
            .contains("ward delete many")
    );
    assert!(h.fails(&["scale", "nope", "2"]).contains("not found"));
    assert!(
        h.fails(&["scale", "many", "lots"])
            .contains("invalid number")
    );
    h.ok(&["start", "show", "-n", "all-cpus", "-i", "max"]);
    assert_eq!(apps_named(&h, "all-cpus").len(), cpus());
    h.ok(&["start", "show", "-n", "fewer", "-i", "-1"]);
    assert_eq!(apps_named(&h, "fewer").len(), (cpus() - 1).max(1));
    h.ok(&["start", "show", "-n", "merged", "-i", "2", "--merge-logs"]);
    wait_log(&h, "merged-out.log", "env:NODE_APP_INSTANCE=1");
    wait_log(&h, "merged-out.log", "env:NODE_APP_INSTANCE=0");
}

/// A PATH with no node in it, so that ward reads `.js` files itself.
fn no_node_path(h: &Home) -> String {
    let d = h.dir.join("empty-bin");
    std::fs::create_dir_all(&d).unwrap();
    d.to_string_lossy().into_owned()
}

#[test]
fn js_literals_without_node() {
    let h = Home::new("eco-nonode");
    put(&h, "bin/api", SHOW);
    put(&h, "bin/worker", SHOW);
    put(&h, "bin/migrate", "#!/bin/sh\necho done\n");
    fixture(&h, "ecosystem.config.js", "ecosystem.config.js");
    let path = no_node_path(&h);
    let (ok, _, err) = run_env(&h, &["start", "ecosystem.config.js"], &[("PATH", &path)]);
    assert!(ok, "{err}");
    assert_eq!(apps_named(&h, "api").len(), 2);
    wait_log(
        &h,
        "worker-out.log",
        "env:QUEUE_URL=redis://localhost:6379/0",
    );
    put(
        &h,
        "code.config.js",
        "const base = __dirname;\nmodule.exports = { apps: [{ script: base + '/bin/api' }] };\n",
    );
    let (ok, _, err) = run_env(&h, &["start", "code.config.js"], &[("PATH", &path)]);
    assert!(!ok);
    assert!(err.contains("code.config.js:1:1"), "{err}");
    assert!(err.contains("node is not in PATH"), "{err}");
    put(
        &h,
        "tmpl.config.js",
        "module.exports = {\n  apps: [{ name: 'x', script: `${process.cwd()}/bin/api` }],\n};\n",
    );
    let (ok, _, err) = run_env(&h, &["start", "tmpl.config.js"], &[("PATH", &path)]);
    assert!(!ok);
    assert!(err.contains("tmpl.config.js:2:"), "{err}");
    assert!(err.contains("${"), "{err}");
    assert_eq!(h.jlist().len(), 4, "nothing more started");
}

#[test]
fn node_evaluates_real_code() {
    if !have_node() {
        eprintln!("node is not installed: skipped");
        return;
    }
    let h = Home::new("eco-node");
    put(&h, "bin/api", SHOW);
    put(
        &h,
        "code.config.js",
        "const path = require('path');\nconst name = ['co', 'de'].join('');\n\
         module.exports = { apps: [{ name, script: path.join(__dirname, 'bin', 'api'),\n\
         env: { FROM: `node-${1 + 1}` } }] };\n",
    );
    h.ok(&["start", "code.config.js"]);
    wait_log(&h, "code-out.log", "env:FROM=node-2");
    put(
        &h,
        "esm.config.mjs",
        "export default { apps: [{ name: 'esm', script: './bin/api' }] };\n",
    );
    h.ok(&["start", "esm.config.mjs"]);
    wait_status(&h, "esm", "online");
    put(
        &h,
        "fn.config.js",
        "module.exports = () => ({ apps: [] });\n",
    );
    let e = h.fails(&["start", "fn.config.js"]);
    assert!(e.contains("module.exports is a function"), "{e}");
    put(
        &h,
        "throw.config.js",
        "throw new Error('boom in config');\n",
    );
    let e = h.fails(&["start", "throw.config.js"]);
    assert!(
        e.contains("node failed to evaluate it") && e.contains("boom in config"),
        "{e}"
    );
    // Errors in a file node evaluated still name the app and key.
    put(
        &h,
        "badkey.config.js",
        "const n = 'x';\nmodule.exports = { apps: [{ name: n, script: 'bin/api', instances: 'many' }] };\n",
    );
    let e = h.fails(&["start", "badkey.config.js"]);
    assert!(
        e.contains("badkey.config.js: app \"x\": key \"instances\""),
        "{e}"
    );
    assert_eq!(h.jlist().len(), 2);
}

#[test]
fn ward_ecosystem_writes_a_sample() {
    let h = Home::new("eco-init");
    let out = h.ok(&["ecosystem"]);
    assert!(out.contains("ecosystem.config.js generated"), "{out}");
    let body = std::fs::read_to_string(h.dir.join("ecosystem.config.js")).unwrap();
    assert!(body.contains("env_production"), "{body}");
    assert!(h.fails(&["init"]).contains("does not overwrite"));
    assert_eq!(
        std::fs::read_to_string(h.dir.join("ecosystem.config.js")).unwrap(),
        body
    );
    // `ward start` with no argument reads ./ecosystem.config.js; its script is missing.
    let path = no_node_path(&h);
    let (ok, _, err) = run_env(&h, &["start"], &[("PATH", &path)]);
    assert!(!ok);
    assert!(
        err.contains("app \"api\": key \"script\": script not found"),
        "{err}"
    );
    assert!(err.contains("ecosystem.config.js:7:"), "{err}");
    put(&h, "server.js", "");
    std::fs::remove_file(h.dir.join("ecosystem.config.js")).unwrap();
    put(
        &h,
        "ecosystem.config.js",
        &body.replace("'./server.js'", "'./serve'"),
    );
    put(&h, "serve", SHOW);
    h.ok(&["start"]);
    wait_log(&h, "api-out.log", "env:NODE_ENV=development");
}

/// (file name, content, what the message must say). Each must fail, start nothing.
const BROKEN: &[(&str, &str, &[&str])] = &[
    (
        "comma.json",
        "{\"apps\": [\n  {\"name\": \"a\", \"script\": \"show\"}\n  {\"name\": \"b\"}\n]}",
        &["comma.json:3:3", "expected `,` or `]`"],
    ),
    (
        "garbage.json",
        "{\"apps\": []} trailing",
        &["garbage.json:1:14", "end of the file"],
    ),
    (
        "unclosed.json",
        "{\"apps\": [{\"script\": \"show}]}",
        &["unclosed.json:1:22", "not closed"],
    ),
    (
        "empty.json",
        "",
        &["empty.json:1:1", "ends where a value was expected"],
    ),
    (
        "instances.json",
        "{\"apps\": [{\"name\": \"api\",\n \"script\": \"show\",\n \"instances\": \"lots\"}]}",
        &[
            "instances.json:3:2",
            "app \"api\"",
            "key \"instances\"",
            "\"lots\"",
        ],
    ),
    (
        "noscript.json",
        "{\"apps\": [{\"name\": \"api\", \"args\": \"-v\"}]}",
        &[
            "noscript.json:1:11",
            "app \"api\"",
            "key \"script\" is missing",
        ],
    ),
    (
        "negative.json",
        "{\"apps\": [{\"name\": \"api\", \"script\": \"show\", \"kill_timeout\": -5}]}",
        &[
            "negative.json:1:45",
            "key \"kill_timeout\"",
            "0 or more",
            "-5",
        ],
    ),
    (
        "size.json",
        "{\"apps\": [{\"name\": \"m\", \"script\": \"show\", \"max_memory_restart\": \"lots\"}]}",
        &["size.json:1:43", "key \"max_memory_restart\"", "300M"],
    ),
    (
        "cron.json",
        "{\"apps\": [{\"name\": \"c\", \"script\": \"show\", \"cron_restart\": \"61 * * * *\"}]}",
        &[
            "cron.json:1:43",
            "key \"cron_restart\"",
            "\"61\" is not a valid minute",
        ],
    ),
    (
        "cron4.json",
        "{\"apps\": [{\"name\": \"c\", \"script\": \"show\", \"cron\": \"0 3 * *\"}]}",
        &["key \"cron\"", "has 4 fields"],
    ),
    (
        "bool.json",
        "{\"apps\": [{\"name\": \"b\", \"script\": \"show\", \"autorestart\": \"yes\"}]}",
        &["bool.json:1:43", "key \"autorestart\"", "true or false"],
    ),
    (
        "env.json",
        "{\"apps\": [{\"name\": \"e\", \"script\": \"show\", \"env\": \"A=1\"}]}",
        &["env.json:1:43", "key \"env\"", "object of variables"],
    ),
    (
        "mode.json",
        "{\"apps\": [{\"name\": \"m\", \"script\": \"show\", \"exec_mode\": \"turbo\"}]}",
        &["key \"exec_mode\"", "\"fork\" or \"cluster\""],
    ),
    (
        "dup.json",
        "[{\"name\": \"d\", \"script\": \"show\"}, {\"name\": \"d\", \"script\": \"show\"}]",
        &["dup.json:1:35", "both named \"d\""],
    ),
    (
        "appslist.json",
        "{\"apps\": \"show\"}",
        &["appslist.json:1:2", "key \"apps\"", "list of apps"],
    ),
    ("noapps.json", "{\"apps\": []}", &["no apps"]),
    (
        "notfound.json",
        "{\"apps\": [{\"name\": \"nf\", \"script\": \"missing-prog\"}]}",
        &[
            "notfound.json:1:26",
            "app \"nf\"",
            "key \"script\"",
            "script not found",
        ],
    ),
    (
        "cwd.json",
        "{\"apps\": [{\"name\": \"w\", \"script\": \"show\", \"cwd\": \"nowhere\"}]}",
        &["cwd.json:1:43", "key \"cwd\"", "is not a folder"],
    ),
    (
        "uptime.json",
        "{\"apps\": [{\"name\": \"u\", \"script\": \"show\", \"min_uptime\": \"soon\"}]}",
        &["key \"min_uptime\"", "\"10s\""],
    ),
    (
        "codes.json",
        "{\"apps\": [{\"name\": \"s\", \"script\": \"show\", \"stop_exit_codes\": [\"x\"]}]}",
        &["key \"stop_exit_codes\"", "exit code"],
    ),
    (
        "signal.json",
        "{\"apps\": [{\"name\": \"s\", \"script\": \"show\", \"kill_signal\": \"SIGNOPE\"}]}",
        &["key \"kill_signal\"", "unknown signal"],
    ),
    (
        "name.json",
        "{\"apps\": [{\"name\": \"all\", \"script\": \"show\"}]}",
        &["name.json:1:12", "key \"name\"", "'all' names every app"],
    ),
    (
        "many.json",
        "{\"apps\": [{\"script\": \"show\", \"instances\": 1.5, \"restart_delay\": \"soon\"}]}",
        &["apps[0]: key \"instances\"", "key \"restart_delay\""],
    ),
    ("array.json", "[\"show\"]", &["apps[0]: expected an object"]),
    (
        "scriptnum.json",
        "[{\"name\": \"n\", \"script\": 42}]",
        &[
            "scriptnum.json:1:16",
            "key \"script\": expected a string, got 42",
        ],
    ),
    (
        "second-bad.json",
        "{\"apps\": [{\"name\": \"good\", \"script\": \"show\"}, {\"name\": \"bad\", \"script\": \"show\", \"port\": 70000}]}",
        &["app \"bad\"", "key \"port\"", "1-65535"],
    ),
    (
        "nodejs.config.js",
        "module.exports = { apps: [{ name: 'j', script: 'show', watch: 3 }] }\n",
        &["nodejs.config.js:1:56", "key \"watch\""],
    ),
    (
        "syntax.config.js",
        "module.exports = { apps: [{ name: 'j' script: 'show' }] }\n",
        &["syntax.config.js:1:39", "expected `,` or `}`"],
    ),
    (
        "conf.yaml",
        "apps: []\n",
        &["conf.yaml: the file lists no apps"],
    ),
    (
        "absent.json",
        "",
        &["unable to read absent.json", "No such file"],
    ),
];

#[test]
fn broken_files_start_nothing() {
    let h = Home::new("eco-broken");
    put(&h, "show", SHOW);
    // A running app, to show that a broken file changes nothing.
    h.ok(&["start", "show", "-n", "keep"]);
    let path = no_node_path(&h);
    for (name, body, wants) in BROKEN {
        if *name != "absent.json" {
            put(&h, name, body);
        }
        let (ok, out, err) = run_env(&h, &["start", name], &[("PATH", &path)]);
        assert!(!ok, "{name} should fail:\n{out}");
        for w in *wants {
            assert!(err.contains(w), "{name}: {w:?} not in:\n{err}");
        }
        assert!(
            err.lines()
                .all(|l| l.starts_with("ward: ") || l.starts_with("  ")),
            "{name}: {err}"
        );
        let apps = h.jlist();
        assert_eq!(apps.len(), 1, "{name} started something: {apps:?}");
    }
    // Every error of a file at once; the good app of a bad file does not start either.
    put(
        &h,
        "two.json",
        "[{\"name\": \"g\", \"script\": \"show\"},\n {\"name\": \"b1\", \"script\": \"show\", \"instances\": \"x\"},\n {\"name\": \"b2\", \"script\": \"show\", \"max_restarts\": -1}]",
    );
    let e = h.fails(&["start", "two.json"]);
    assert!(
        e.contains("two.json:2:35: app \"b1\"") && e.contains("two.json:3:35: app \"b2\""),
        "{e}"
    );
    assert!(e.contains("two.json: nothing was done"), "{e}");
    // Flags that only mean something for an ecosystem file.
    assert!(
        h.fails(&["start", "show", "--env", "prod"])
            .contains("--env prod selects the env_prod block")
    );
    assert!(
        h.fails(&["start", "show", "--only", "a"])
            .contains("--only selects apps")
    );
    assert!(
        h.fails(&["restart", "keep", "--env", "prod"])
            .contains("ecosystem file")
    );
    put(&h, "ok.json", "[{\"name\": \"o\", \"script\": \"show\"}]");
    assert!(
        h.fails(&["start", "ok.json", "--only", "zz"])
            .contains("--only zz: ok.json has no app of that name (it has: o)")
    );
    assert!(
        h.fails(&["start", "ok.json", "show"])
            .contains("on its own")
    );
    let e = h.fails(&["start"]);
    assert!(e.contains("no ecosystem.config.js here"), "{e}");
    assert_eq!(h.jlist().len(), 1);
}

#[test]
fn unknown_keys_warn_and_still_start() {
    let h = Home::new("eco-warn");
    put(&h, "show", SHOW);
    put(
        &h,
        "w.json",
        "{\"apps\": [{\"name\": \"w\", \"script\": \"show\",\n  \"instanses\": 2, \"colour\": \"red\"}],\n \"extra\": 1}",
    );
    let (ok, _, err) = run_env(&h, &["start", "w.json"], &[]);
    assert!(ok, "{err}");
    assert!(
        err.contains(
            "w.json:2:3: app \"w\": unknown key \"instanses\" ignored (did you mean \"instances\"?)"
        ),
        "{err}"
    );
    assert!(err.contains("unknown key \"colour\" ignored"), "{err}");
    assert!(
        err.contains("w.json:3:2: unknown top-level key \"extra\""),
        "{err}"
    );
    assert_eq!(apps_named(&h, "w").len(), 1);
}

#[test]
fn help_and_man_page_cover_the_keys_and_commands() {
    let man = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ward.1"))
        .unwrap()
        .replace("\\-", "-");
    assert!(man.contains(".SH ECOSYSTEM FILE"));
    for key in [
        "script",
        "exec",
        "cmd",
        "command",
        "name",
        "args",
        "interpreter",
        "exec_interpreter",
        "interpreter_args",
        "node_args",
        "cwd",
        "env",
        "env_",
        "instances",
        "exec_mode",
        "instance_var",
        "namespace",
        "watch",
        "ignore_watch",
        "watch_delay",
        "max_memory_restart",
        "autorestart",
        "autostart",
        "restart_delay",
        "exp_backoff_restart_delay",
        "max_restarts",
        "min_uptime",
        "kill_timeout",
        "kill_signal",
        "cron_restart",
        "out_file",
        "error_file",
        "log_file",
        "log_date_format",
        "merge_logs",
        "combine_logs",
        "time",
        "stop_exit_codes",
        "wait_ready",
        "listen_timeout",
        "port",
    ] {
        assert!(man.contains(key), "man page lacks the key {key}");
    }
    for flag in [
        "--instances",
        "--merge-logs",
        "--env",
        "--only",
        "--update-env",
        "scale",
        "init",
    ] {
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    let h = Home::new("eco-help");
    for (cmd, want) in [
        ("start", "--only"),
        ("start", "--instances"),
        ("restart", "--update-env"),
        ("reload", "--env"),
        ("stop", "--only"),
        ("delete", "--only"),
        ("env", "KEY: value"),
        ("scale", "+N"),
        ("ecosystem", "ecosystem.config.js"),
        ("init", "ecosystem.config.js"),
    ] {
        let out = h.ok(&["help", cmd]);
        assert!(out.contains(want), "ward help {cmd} lacks {want}:\n{out}");
    }
}

/// pm2 gives each app of a file the variable NAME={} (API.js:871-872). ward keeps it as a
/// mark beside the environment, so that the apps of one file share one: state.json holds
/// it once, and a daemon SIGKILLed and replaced reads it back for every app.
#[test]
fn apps_of_one_file_share_one_environment_and_see_their_names() {
    let h = Home::new("eco-share");
    put(&h, "bin/show", SHOW);
    let mut apps: Vec<Value> = (0..5)
        .map(|i| serde_json::json!({"name": format!("w{i}"), "script": "bin/show"}))
        .collect();
    apps.push(serde_json::json!({"name": "own", "script": "bin/show", "env": {"own": "mine"}}));
    let file = h.dir.join("eco.json");
    std::fs::write(&file, serde_json::json!({ "apps": apps }).to_string()).unwrap();
    h.ok(&["start", file.to_str().unwrap()]);
    let check = |h: &Home| {
        for i in 0..5 {
            let name = format!("w{i}");
            let a = h.must(&name);
            assert_eq!(a["pm2_env"][&name], "{}", "{a}");
            assert_eq!(env_of(&a, &name), "{}");
            assert!(h.ok(&["env", &name]).contains(&format!("{name}: {{}}\n")));
        }
        assert_eq!(env_of(&h.must("own"), "own"), "mine");
    };
    for i in 0..5 {
        wait_log(&h, &format!("w{i}-out.log"), &format!("env:w{i}={{}}"));
    }
    wait_log(&h, "own-out.log", "env:own=mine");
    check(&h);
    let state: Value =
        serde_json::from_slice(&std::fs::read(h.root.join("state.json")).unwrap()).unwrap();
    assert_eq!(state["envs"].as_array().map(Vec::len), Some(2), "{state}");
    assert_eq!(state["env_of"], serde_json::json!([0, 0, 0, 0, 0, 1]));
    assert!(state["apps"][0]["spec"].get("env").is_none(), "{state}");
    assert_eq!(state["apps"][0]["spec"]["name_var"], true);
    assert_eq!(state["envs"][1]["own"], "mine");
    let daemon = h.daemon_pid().unwrap();
    kill(daemon, "-9");
    wait_until(secs(10), "a new daemon", || {
        h.daemon_pid().is_some_and(|p| p != daemon && alive(p))
    });
    check(&h);
    // A restart runs the app with its name again.
    let before = h.pid("w1").unwrap();
    h.ok(&["restart", "w1"]);
    wait_until(secs(10), "w1 restarted", || {
        h.pid("w1").is_some_and(|p| p != before)
    });
    let pid = h.pid("w1").unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    assert!(
        environ.split(|&b| b == 0).any(|v| v == b"w1={}"),
        "{}",
        String::from_utf8_lossy(&environ)
    );
}
