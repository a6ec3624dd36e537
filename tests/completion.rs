//! Issue 19: `ward completion bash|zsh|fish` completes commands, each command's flags and
//! the apps of a running daemon, and never starts one. bash runs the script for real with
//! COMP_WORDS/COMP_CWORD set; fish completes for real; zsh is syntax-checked.
mod util;
use std::path::PathBuf;
use std::process::Command;
use util::*;

/// `ward` (and `pm2`) on a PATH of the test's own, as an installed ward would be.
fn bin_dir(h: &Home) -> PathBuf {
    let dir = h.dir.join("bin");
    if !dir.exists() {
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(BIN, dir.join("ward")).unwrap();
        std::os::unix::fs::symlink(BIN, dir.join("pm2")).unwrap();
    }
    dir
}

fn path_with(h: &Home) -> String {
    format!(
        "{}:{}",
        bin_dir(h).display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// Sources `script` in bash, sets COMP_WORDS to `line` split on spaces (a trailing space
/// is an empty word being completed), runs `func` and returns COMPREPLY, sorted.
fn bash_complete(h: &Home, script: &str, func: &str, line: &str) -> Vec<String> {
    let file = h.dir.join(format!("{func}.bash"));
    std::fs::write(&file, script).unwrap();
    let words: Vec<String> = line.split(' ').map(|w| format!("'{w}'")).collect();
    let prog = format!(
        "source '{}'\nCOMP_WORDS=({})\nCOMP_CWORD={}\nCOMP_LINE='{line}'\n{func}\n\
         printf '%s\\n' \"${{COMPREPLY[@]}}\"\n",
        file.display(),
        words.join(" "),
        words.len() - 1
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &prog])
        .env("PATH", path_with(h))
        .env("WARD_HOME", &h.root)
        .env("PM2_HOME", &h.root)
        .current_dir(&h.dir)
        .output()
        .expect("bash");
    assert!(out.status.success(), "{line}: {out:?}");
    let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect();
    v.sort();
    v
}

#[test]
fn bash_completes_commands_flags_and_running_apps() {
    let h = Home::new("compl-bash");
    let script = h.ok(&["completion", "bash"]);
    assert_eq!(script, h.ok(&["completion"]), "bash is the default");
    let c = |line: &str| bash_complete(&h, &script, "_ward_complete", line);

    let st = c("ward st");
    for w in ["start", "stop", "status", "startup", "startOrRestart"] {
        assert!(st.contains(&w.to_string()), "{w} in {st:?}");
    }
    assert!(!st.contains(&"list".to_string()), "{st:?}");
    assert_eq!(c("ward --vers"), ["--version"]);
    assert_eq!(c("ward start app.js --na"), ["--name", "--namespace"]);
    assert_eq!(c("ward logs --nos"), ["--nostream"]);
    assert_eq!(
        c("ward ls --"),
        ["--help", "--json", "--mini-list", "--sort"]
    );
    assert_eq!(c("ward -s stop --"), ["--help", "--only", "--watch"]);
    // Without a daemon: no names, and none is started for them.
    assert_eq!(c("ward restart "), ["all"]);
    assert!(
        !h.socket().exists() && h.daemon_pid().is_none(),
        "completion started a daemon"
    );

    h.ok(&["start", "sleep", "-n", "api", "--", "1000"]);
    h.ok(&["start", "sleep", "-n", "api-worker", "--", "1000"]);
    h.ok(&["start", "sleep", "-n", "jobs", "--", "1000"]);
    assert_eq!(c("ward restart a"), ["all", "api", "api-worker"]);
    assert_eq!(c("ward logs j"), ["jobs"]);
    assert_eq!(c("ward stop --watch api-"), ["api-worker"]);
    // start: registered names and files.
    h.script("jobrunner.sh", "#!/bin/sh\n");
    assert_eq!(c("ward start job"), ["jobrunner.sh", "jobs"]);
    // Commands that take no app offer none.
    assert_eq!(c("ward jlist "), Vec::<String>::new());
    assert_eq!(h.ok(&["completion", "names"]), "api\napi-worker\njobs\n");
}

#[test]
fn pm2_completion_completes_pm2() {
    let h = Home::new("compl-pm2");
    let pm2 = bin_dir(&h).join("pm2");
    let run = |args: &[&str]| {
        let o = Command::new(&pm2)
            .args(args)
            .env("PM2_HOME", &h.root)
            .env_remove("WARD_HOME")
            .env_remove("WARD_MODE")
            .current_dir(&h.dir)
            .output()
            .unwrap();
        assert!(o.status.success(), "pm2 {args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    let script = run(&["completion"]);
    assert!(
        script.contains("complete -o default -F _pm2_complete pm2"),
        "{script}"
    );
    run(&["start", "sleep", "-n", "web", "--", "1000"]);
    assert!(h.root.join("pm2.pid").exists(), "pm2's home is used");
    let c = |line: &str| bash_complete(&h, &script, "_pm2_complete", line);
    assert_eq!(c("pm2 delete w"), ["web"]);
    assert_eq!(c("pm2 jl"), ["jlist"]);
    run(&["kill"]);
}

/// Fails the test when a shell is missing: CI installs it, and a skipped check is no check.
fn need(shell: &str) {
    let there = Command::new(shell)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        there,
        "{shell} is required for this test (.ci/run installs it)"
    );
}

#[test]
fn zsh_script_is_valid_zsh() {
    need("zsh");
    let h = Home::new("compl-zsh");
    let script = h.ok(&["completion", "zsh"]);
    assert!(script.starts_with("#compdef ward\n"), "{script}");
    let file = h.dir.join("_ward");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("zsh").arg("-n").arg(&file).output().unwrap();
    assert!(out.status.success(), "zsh -n: {out:?}");
    // Loaded the way zsh loads it from a site-functions folder, it registers itself.
    let prog = format!(
        "autoload -U compinit; compinit -u -d '{}/zcompdump'; source '{}'; print -r -- $_comps[ward]",
        h.dir.display(),
        file.display()
    );
    let out = Command::new("zsh")
        .args(["-f", "-c", &prog])
        .env("HOME", &h.dir)
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.trim() == "_ward", "{out:?}");
}

#[test]
fn fish_completes_for_real() {
    need("fish");
    let h = Home::new("compl-fish");
    let script = h.ok(&["completion", "fish"]);
    let file = h.dir.join("ward.fish");
    std::fs::write(&file, &script).unwrap();
    let out = Command::new("fish")
        .arg("--no-execute")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "fish --no-execute: {out:?}");
    h.ok(&["start", "sleep", "-n", "api", "--", "1000"]);
    let complete = |line: &str| {
        let prog = format!("source '{}'; complete -C '{line}'", file.display());
        let out = Command::new("fish")
            .args(["--no-config", "-c", &prog])
            .env("PATH", path_with(&h))
            .env("WARD_HOME", &h.root)
            .env("HOME", &h.dir)
            .env("XDG_CONFIG_HOME", h.dir.join("config"))
            .env("XDG_DATA_HOME", h.dir.join("data"))
            .current_dir(&h.dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{line}: {out:?}");
        let mut v: Vec<String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| l.split('\t').next().unwrap_or("").to_string())
            .collect();
        v.sort();
        v
    };
    let st = complete("ward sto");
    assert_eq!(st, ["stop"]);
    assert_eq!(complete("ward logs --nos"), ["--nostream"]);
    assert!(complete("ward restart a").contains(&"api".to_string()));
}
