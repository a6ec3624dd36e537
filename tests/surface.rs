//! Issue 11: YAML and stdin configs, startOrRestart, append_env_to_name, deploy env.
mod util;
use std::io::Write;
use util::*;

const SHOW: &str = "#!/bin/sh\necho \"env:MODE=$MODE PORT=$PORT\"\nexec sleep 1000\n";

fn env_of(h: &Home, name: &str, key: &str) -> Option<String> {
    let id = h.app(name)?["pm_id"].to_string();
    h.ok(&["env", &id])
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")).map(String::from))
}

#[test]
fn yaml_ecosystem_with_several_apps_and_env_blocks() {
    let h = Home::new("surface-yaml");
    h.script("show.sh", SHOW);
    std::fs::write(
        h.dir.join("process.yml"),
        "# apps of the test\napps:\n  - name: web\n    script: ./show.sh\n    env:\n      MODE: dev\n      PORT: 3000\n    env_production:\n      MODE: prod\n  - name: jobs\n    script: show.sh\n    args:\n      - --queue\n      - 'high prio'\n    instances: 2\n",
    )
    .unwrap();
    h.ok(&["start", "process.yml", "--env", "production"]);
    assert_eq!(h.status("web").as_deref(), Some("online"));
    let jobs: Vec<_> = h
        .jlist()
        .into_iter()
        .filter(|a| a["name"] == "jobs")
        .collect();
    assert_eq!(jobs.len(), 2);
    assert_eq!(
        jobs[0]["pm2_env"]["args"],
        serde_json::json!(["--queue", "high prio"])
    );
    assert_eq!(env_of(&h, "web", "MODE").as_deref(), Some("prod"));
    assert_eq!(env_of(&h, "web", "PORT").as_deref(), Some("3000"));
    // A malformed file names its line, and starts nothing.
    std::fs::write(
        h.dir.join("bad.yaml"),
        "apps:\n  - name: x\n    script: &a show.sh\n",
    )
    .unwrap();
    let err = h.fails(&["start", "bad.yaml"]);
    assert!(
        err.contains("bad.yaml:3") && err.contains("anchors"),
        "{err}"
    );
    std::fs::write(
        h.dir.join("bad2.yml"),
        "apps:\n  - name: y\n    instances: lots\n    script: show.sh\n",
    )
    .unwrap();
    let err = h.fails(&["start", "bad2.yml"]);
    assert!(err.contains("instances"), "{err}");
    assert!(h.app("x").is_none() && h.app("y").is_none());
}

#[test]
fn json_on_stdin_starts_and_stops() {
    let h = Home::new("surface-stdin");
    h.script("show.sh", SHOW);
    let pipe = |args: &[&str], json: &str| {
        let mut c = h
            .cmd(args)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        c.stdin.take().unwrap().write_all(json.as_bytes()).unwrap();
        c.wait_with_output().unwrap()
    };
    let apps = r#"{"apps":[{"name":"piped","script":"show.sh","env":{"MODE":"stdin"}}]}"#;
    let out = pipe(&["start", "-"], apps);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.status("piped").as_deref(), Some("online"));
    assert_eq!(env_of(&h, "piped", "MODE").as_deref(), Some("stdin"));
    let out = pipe(&["stop", "-"], apps);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(h.status("piped").as_deref(), Some("stopped"));
    let out = pipe(&["start", "-"], "{\"apps\": [");
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("<stdin>"));
    let out = pipe(&["delete", "-"], apps);
    assert!(out.status.success());
    assert!(h.app("piped").is_none());
}

#[test]
fn start_or_restart_on_a_half_running_file() {
    let h = Home::new("surface-sor");
    h.script("show.sh", SHOW);
    std::fs::write(
        h.dir.join("eco.json"),
        r#"{"apps":[{"name":"a","script":"show.sh"},{"name":"b","script":"show.sh"}]}"#,
    )
    .unwrap();
    h.ok(&["start", "show.sh", "-n", "a"]);
    let a_pid = h.pid("a").unwrap();
    h.ok(&["startOrRestart", "eco.json"]);
    assert_ne!(h.pid("a"), Some(a_pid), "a was restarted");
    assert_eq!(h.app("a").unwrap()["pm2_env"]["restart_time"], 1);
    assert_eq!(h.status("b").as_deref(), Some("online"), "b was started");
    assert_eq!(h.app("b").unwrap()["pm2_env"]["restart_time"], 0);
    h.ok(&["startOrReload", "eco.json"]);
    h.ok(&["startOrGracefulReload", "eco.json"]);
    assert_eq!(h.app("b").unwrap()["pm2_env"]["restart_time"], 2);
    let err = h.fails(&["startOrRestart", "show.sh"]);
    assert!(err.contains("ecosystem file"), "{err}");
}

/// `startOrReload FILE` is pm2's `_startJson` with reloadProcessId, as `reload FILE`: an
/// app of two copies is replaced one copy at a time (a new process beside each old one),
/// with the file's environment; the app not registered is started.
#[test]
fn start_or_reload_rolls_the_running_apps_and_starts_the_rest() {
    let h = Home::new("surface-sorl");
    h.script("show.sh", SHOW);
    let file = |mode: &str| {
        format!(
            r#"{{"apps":[{{"name":"w","script":"show.sh","instances":2,"env":{{"MODE":"{mode}"}}}},
            {{"name":"m","script":"show.sh"}}]}}"#
        )
    };
    std::fs::write(h.dir.join("eco.json"), file("one")).unwrap();
    h.ok(&["start", "eco.json", "--only", "w"]);
    let before: Vec<u64> = h
        .jlist()
        .iter()
        .filter(|a| a["name"] == "w")
        .map(|a| a["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(before.len(), 2);
    std::fs::write(h.dir.join("eco.json"), file("two")).unwrap();
    h.ok(&["startOrReload", "eco.json"]);
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    for old in &before {
        assert!(
            log.contains(&format!("replaced pid {old}")),
            "each copy replaced by a new process beside it:\n{log}"
        );
    }
    let after: Vec<serde_json::Value> =
        h.jlist().into_iter().filter(|a| a["name"] == "w").collect();
    assert_eq!(after.len(), 2);
    for a in &after {
        assert!(!before.contains(&a["pid"].as_u64().unwrap()));
        assert_eq!(a["pm2_env"]["env"]["MODE"], "two", "the file's environment");
    }
    assert_eq!(h.status("m").as_deref(), Some("online"), "m was started");
    let err = h.fails(&["startOrGracefulReload", "w"]);
    assert!(err.contains("ecosystem file"), "{err}");
}

#[test]
fn append_env_to_name_and_deploy_env() {
    let h = Home::new("surface-append");
    h.script("show.sh", SHOW);
    std::fs::write(
        h.dir.join("eco.json"),
        r#"{"apps":[{"name":"api","script":"show.sh","append_env_to_name":true,
                     "env":{"MODE":"base"}},
                    {"name":"plain","script":"show.sh","env_staging":{"MODE":"own"}}],
            "deploy":{"staging":{"env":{"MODE":"from-deploy","PORT":"9"}}}}"#,
    )
    .unwrap();
    h.ok(&["start", "eco.json", "--env", "staging"]);
    assert!(h.app("api").is_none());
    assert_eq!(h.status("api-staging").as_deref(), Some("online"));
    assert_eq!(
        env_of(&h, "api-staging", "MODE").as_deref(),
        Some("from-deploy")
    );
    // The app's own env_<env> block wins over the deploy block.
    assert_eq!(env_of(&h, "plain", "MODE").as_deref(), Some("own"));
    assert_eq!(env_of(&h, "plain", "PORT").as_deref(), Some("9"));
    h.ok(&["restart", "eco.json", "--env", "staging"]);
    assert_eq!(h.app("api-staging").unwrap()["pm2_env"]["restart_time"], 1);
}
