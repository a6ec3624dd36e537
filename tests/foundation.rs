//! Issue 3, the foundation, proved against the real binary: every command, interpreters,
//! cwd and environment, process groups, autorestart, logs, errors that change nothing, the
//! `ls` table, state.json, and a daemon that survives garbage on its socket.
mod util;
use util::*;

use std::time::Duration;

/// A shell app that stays up; prints a line first so tests can wait for it.
const LOOP: &str = "#!/bin/sh\necho started\nwhile true; do sleep 1; done\n";

fn names(h: &Home) -> Vec<String> {
    h.snapshot().into_iter().map(|a| a.1).collect()
}

// ---- start ------------------------------------------------------------------------------

#[test]
fn start_default_names_and_name_flag() {
    let h = Home::new("names");
    h.script("loop.sh", LOOP);
    h.script(
        "worker.py",
        "import time\nprint('py', flush=True)\ntime.sleep(1000)\n",
    );
    let out = h.ok(&["start", "loop.sh"]);
    assert!(out.contains("[loop](0)"), "{out}");
    h.ok(&["start", "worker.py", "-n", "jobs"]);
    h.ok(&["start", "worker.py", "--name", "jobs2"]);
    assert_eq!(names(&h), ["loop", "jobs", "jobs2"]);
    for n in ["loop", "jobs", "jobs2"] {
        h.wait_online(n);
    }
    let loop_app = h.must("loop");
    assert_eq!(
        loop_app["pm2_env"]["pm_exec_path"],
        h.dir.join("loop.sh").to_str().unwrap()
    );
}

#[test]
fn start_binary_with_args_after_dashes() {
    let h = Home::new("args");
    h.script("server", "#!/bin/sh\necho \"args: $*\"\nexec sleep 1000\n");
    h.ok(&["start", "./server", "--", "--port", "8080"]);
    h.wait_online("server");
    h.wait_log("server-out.log", "args: --port 8080");
    let app = h.must("server");
    assert_eq!(
        app["pm2_env"]["args"],
        serde_json::json!(["--port", "8080"])
    );
    assert_eq!(app["pm2_env"]["exec_interpreter"], "none");
}

#[test]
fn start_bare_word_from_path() {
    let h = Home::new("path");
    h.ok(&["start", "sleep", "--", "1000"]);
    let pid = h.wait_online("sleep");
    let argv = cmdline(pid);
    assert!(argv[0].ends_with("/sleep"), "{argv:?}");
    assert_eq!(argv[1..], ["1000"]);
    let exec = h.must("sleep")["pm2_env"]["pm_exec_path"].clone();
    assert!(exec.as_str().unwrap().ends_with("/sleep"), "{exec}");
    assert!(std::path::Path::new(exec.as_str().unwrap()).is_absolute());
}

#[test]
fn start_refuses_a_running_script_and_force_starts_a_copy() {
    let h = Home::new("dup");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh"]);
    h.wait_online("loop");
    let before = h.snapshot();
    let err = h.fails(&["start", "loop.sh"]);
    assert!(
        err.contains("already launched") && err.contains("-f"),
        "{err}"
    );
    assert_eq!(h.snapshot(), before, "a refused start changed the table");
    h.ok(&["start", "loop.sh", "-f"]);
    assert_eq!(names(&h), ["loop", "loop"]);
    wait_until(secs(10), "both copies online", || {
        h.snapshot().iter().all(|a| a.3 == "online")
    });
    // Both copies run, in groups of their own.
    let pids: Vec<u64> = h.snapshot().iter().map(|a| a.2).collect();
    assert_ne!(pids[0], pids[1]);
}

#[test]
fn start_of_a_stopped_app_by_name_and_by_id() {
    let h = Home::new("restartstopped");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh"]);
    let p1 = h.wait_online("loop");
    h.ok(&["stop", "loop"]);
    assert_eq!(h.status("loop").as_deref(), Some("stopped"));
    assert_eq!(h.must("loop")["pid"], 0);
    assert!(!alive(p1));

    h.ok(&["start", "loop"]);
    let p2 = h.wait_online("loop");
    assert_ne!(p1, p2);
    h.ok(&["stop", "0"]);
    assert_eq!(h.status("loop").as_deref(), Some("stopped"));
    assert!(!alive(p2));
    h.ok(&["start", "0"]);
    let p3 = h.wait_online("loop");
    assert!(alive(p3));
    // Starting a stopped script by its path also brings it back, without a copy.
    h.ok(&["stop", "loop"]);
    h.ok(&["start", "loop.sh"]);
    h.wait_online("loop");
    assert_eq!(names(&h), ["loop"]);
}

// ---- ls, stop, restart, reload, delete --------------------------------------------------

#[test]
fn ls_and_its_aliases() {
    let h = Home::new("ls");
    h.ok(&["start", "sleep", "-n", "napper", "--", "1000"]);
    h.wait_online("napper");
    for cmd in ["ls", "list", "status", "l", "ps"] {
        let out = h.ok(&[cmd]);
        let head = out.lines().nth(1).unwrap_or_default();
        for col in ["id", "name", "pid", "status", "↺", "uptime", "cpu", "mem"] {
            assert!(head.contains(col), "{cmd}: no column {col} in:\n{out}");
        }
        assert!(
            out.contains("napper") && out.contains("online"),
            "{cmd}:\n{out}"
        );
        assert!(
            !out.contains('\x1b'),
            "{cmd} printed colours to a pipe:\n{out}"
        );
    }
}

#[test]
fn restart_counts_and_targets() {
    let h = Home::new("restart");
    for n in ["alpha", "beta", "gamma"] {
        h.ok(&["start", "sleep", "-n", n, "--", "1000"]);
    }
    let pa = h.wait_online("alpha");
    h.wait_online("beta");
    h.wait_online("gamma");

    h.ok(&["restart", "alpha"]);
    let pa2 = h.wait_online("alpha");
    assert_ne!(pa, pa2);
    assert!(!alive(pa));
    assert_eq!(h.restarts("alpha"), 1);
    assert_eq!(h.restarts("beta"), 0);

    // Names and numeric ids together; each app once.
    h.ok(&["restart", "alpha", "beta", "2", "0"]);
    assert_eq!(
        [h.restarts("alpha"), h.restarts("beta"), h.restarts("gamma")],
        [2, 1, 1]
    );

    // A regular expression on names.
    h.ok(&["restart", "/^(beta|gamma)$/"]);
    assert_eq!(
        [h.restarts("alpha"), h.restarts("beta"), h.restarts("gamma")],
        [2, 2, 2]
    );

    // reload is restart outside cluster mode.
    let pg = h.wait_online("gamma");
    h.ok(&["reload", "gamma"]);
    let pg2 = h.wait_online("gamma");
    assert_ne!(pg, pg2);
    assert_eq!(h.restarts("gamma"), 3);

    // Every app online again, in ls too.
    let ls = h.ok(&["ls"]);
    assert_eq!(ls.matches("online").count(), 3, "{ls}");
}

#[test]
fn stop_all_then_delete_and_del() {
    let h = Home::new("stopall");
    for n in ["a1", "a2", "a3", "a4"] {
        h.ok(&["start", "sleep", "-n", n, "--", "1000"]);
    }
    let pids: Vec<u32> = ["a1", "a2", "a3", "a4"]
        .iter()
        .map(|n| h.wait_online(n))
        .collect();
    h.ok(&["stop", "all"]);
    for a in h.snapshot() {
        assert_eq!((a.2, a.3.as_str()), (0, "stopped"), "{a:?}");
    }
    for p in pids {
        assert!(!alive(p), "pid {p} survived stop all");
    }
    h.ok(&["delete", "a1"]);
    h.ok(&["del", "1"]);
    assert_eq!(names(&h), ["a3", "a4"]);
    h.ok(&["start", "a3"]);
    let p3 = h.wait_online("a3");
    h.ok(&["delete", "all"]);
    assert!(h.jlist().is_empty());
    assert!(!alive(p3), "delete left the process running");
}

#[test]
fn jlist_is_pm2_shaped() {
    let h = Home::new("jlist");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh"]);
    let pid = h.wait_online("loop");
    let a = h.must("loop");
    assert_eq!(a["pid"], pid);
    assert_eq!(a["name"], "loop");
    assert_eq!(a["pm_id"], 0);
    assert!(a["monit"]["cpu"].is_number(), "{a}");
    assert!(a["monit"]["memory"].as_u64().unwrap() > 0, "{a}");
    let e = &a["pm2_env"];
    assert_eq!(e["status"], "online");
    assert_eq!(e["restart_time"], 0);
    assert_eq!(e["pm_exec_path"], h.dir.join("loop.sh").to_str().unwrap());
    assert_eq!(e["pm_cwd"], h.dir.to_str().unwrap());
    assert_eq!(e["exec_interpreter"], "bash");
    assert_eq!(e["exec_mode"], "fork_mode");
    assert_eq!(e["pm_id"], 0);
    assert_eq!(e["name"], "loop");
    assert_eq!(e["autorestart"], true);
    assert!(e["pm_uptime"].as_u64().unwrap() > 0);
    assert!(e["created_at"].as_u64().unwrap() > 0);
    assert_eq!(
        e["pm_out_log_path"],
        h.log_path("loop-out.log").to_str().unwrap()
    );
    assert_eq!(
        e["pm_err_log_path"],
        h.log_path("loop-error.log").to_str().unwrap()
    );
    assert!(e["env"].is_object());
    // `ls --json` is the same document.
    let j: serde_json::Value = serde_json::from_str(&h.ok(&["ls", "--json"])).unwrap();
    assert_eq!(j[0]["pid"], pid);
}

// ---- ping, kill, daemon -----------------------------------------------------------------

#[test]
fn ping_starts_the_daemon() {
    let h = Home::new("ping");
    assert!(!exists(&h.socket()));
    assert_eq!(h.ok(&["ping"]), "pong\n");
    let pid = h.daemon_pid().expect("ward.pid written");
    assert!(alive(pid));
    assert!(exists(&h.socket()));
    // A second ping talks to the same daemon.
    h.ok(&["ping"]);
    assert_eq!(h.daemon_pid(), Some(pid));
    // The home is private: its socket is the daemon's door.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&h.root).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o700);
}

#[test]
fn first_command_starts_the_daemon() {
    let h = Home::new("autostart");
    let out = h.ok(&["ls"]);
    assert!(out.contains("name"), "{out}");
    let pid = h.daemon_pid().expect("daemon started by ls");
    assert!(alive(pid));
}

#[test]
fn kill_leaves_no_process_behind() {
    let h = Home::new("kill");
    h.script("tree.sh", "#!/bin/sh\nsleep 1000 &\nsleep 1000 &\nwait\n");
    h.ok(&["start", "tree.sh"]);
    h.ok(&["start", "sleep", "--", "1000"]);
    let g1 = h.wait_online("tree");
    let g2 = h.wait_online("sleep");
    wait_until(secs(10), "tree.sh's children", || {
        group_members(g1).len() == 3
    });
    let daemon = h.daemon_pid().unwrap();
    let ours = processes_of(&h);
    assert!(
        ours.contains(&daemon) && ours.contains(&g1) && ours.contains(&g2),
        "{ours:?}"
    );
    let out = h.ok(&["kill"]);
    assert!(out.contains("killed"), "{out}");
    assert!(!alive(daemon), "daemon still alive after kill");
    wait_until(secs(10), "every app process gone", || {
        group_members(g1).is_empty() && group_members(g2).is_empty()
    });
    // Nor the fd holder, nor anything else started for this home.
    wait_until(secs(10), "no process of this home", || {
        processes_of(&h).is_empty()
    });
    assert!(!exists(&h.socket()));
    assert!(!exists(&h.root.join("state.json")));
    // kill with no daemon is not an error.
    let out = h.ok(&["kill"]);
    assert!(out.contains("no daemon"), "{out}");
    // The next daemon starts empty.
    assert!(h.jlist().is_empty());
}

#[test]
fn version_and_help() {
    let h = Home::new("help");
    let v = h.ok(&["--version"]);
    assert_eq!(v.trim(), env!("CARGO_PKG_VERSION"));
    assert_eq!(h.ok(&["-v"]), v);
    let help = h.ok(&["help"]);
    for cmd in [
        "start", "stop", "restart", "reload", "delete", "list", "jlist", "ping", "kill",
    ] {
        assert!(help.contains(cmd), "help lacks {cmd}:\n{help}");
        let one = h.ok(&["help", cmd]);
        assert!(one.starts_with("Usage: ward "), "help {cmd}:\n{one}");
        assert_eq!(h.ok(&[cmd, "--help"]), one, "{cmd} --help");
        assert_eq!(h.ok(&[cmd, "-h"]), one, "{cmd} -h");
    }
    assert_eq!(h.ok(&["--help"]), help);
    // Aliases lead to the same page.
    assert_eq!(h.ok(&["help", "ls"]), h.ok(&["help", "list"]));
    assert_eq!(h.ok(&["del", "--help"]), h.ok(&["help", "delete"]));
    assert!(h.ok(&["help", "start"]).contains("--interpreter"));
    // Help needs no daemon.
    assert!(h.daemon_pid().is_none());
    let err = h.fails(&["help", "frobnicate"]);
    assert!(err.contains("unknown command"), "{err}");
}

// ---- interpreters -----------------------------------------------------------------------

/// The interpreter a process runs under: argv[0]'s file name.
fn argv0_name(pid: u32) -> String {
    let argv = cmdline(pid);
    let a0 = argv.first().cloned().unwrap_or_default();
    a0.rsplit('/').next().unwrap_or_default().to_string()
}

#[test]
fn interpreters_by_extension() {
    let h = Home::new("interp");
    h.script(
        "s.sh",
        "#!/bin/sh\necho \"bash=$BASH_VERSION\"\nexec sleep 1000\n",
    );
    h.script(
        "p.py",
        "import sys, time\nprint('python', sys.version_info[0], flush=True)\ntime.sleep(1000)\n",
    );
    h.script(
        "j.js",
        "console.log('node ' + process.version); setInterval(() => {}, 1000);\n",
    );
    h.ok(&["start", "s.sh"]);
    h.ok(&["start", "p.py"]);
    h.ok(&["start", "j.js"]);

    // bash, although the shebang says sh: the extension decides, as in pm2.
    let out = h.wait_log("s-out.log", "bash=");
    assert!(!out.contains("bash=\n"), "not run by bash: {out:?}");
    assert_eq!(h.must("s")["pm2_env"]["exec_interpreter"], "bash");

    h.wait_log("p-out.log", "python 3");
    let py = h.must("p")["pm2_env"]["exec_interpreter"].clone();
    assert!(py == "python" || py == "python3", "{py}");
    let pid = h.wait_online("p");
    let argv = cmdline(pid);
    assert!(argv0_name(pid).starts_with("python"), "{argv:?}");
    assert_eq!(argv.last().unwrap(), h.dir.join("p.py").to_str().unwrap());

    h.wait_log("j-out.log", "node v");
    assert_eq!(h.must("j")["pm2_env"]["exec_interpreter"], "node");
    let pid = h.wait_online("j");
    assert_eq!(argv0_name(pid), "node", "{:?}", cmdline(pid));
}

#[test]
fn interpreter_flags() {
    let h = Home::new("interpflags");
    // --interpreter on a file with no extension and no execute bit.
    std::fs::write(
        h.dir.join("plain"),
        "echo \"plain under $0\"\nexec sleep 1000\n",
    )
    .unwrap();
    h.ok(&["start", "plain", "--interpreter", "sh"]);
    h.wait_log("plain-out.log", "plain under");
    assert_eq!(h.must("plain")["pm2_env"]["exec_interpreter"], "sh");

    // --interpreter-args go before the script.
    h.script("traced.sh", "echo traced\nsleep 1000\n");
    h.ok(&["start", "traced.sh", "--interpreter-args", "-x -e"]);
    let pid = h.wait_online("traced");
    let argv = cmdline(pid);
    assert_eq!(argv0_name(pid), "bash", "{argv:?}");
    assert_eq!(argv[1..3], ["-x", "-e"], "{argv:?}");
    h.wait_log("traced-error.log", "+ echo traced");
    assert_eq!(
        h.must("traced")["pm2_env"]["node_args"],
        serde_json::json!(["-x", "-e"])
    );

    // --interpreter none runs the file itself: its shebang decides.
    let direct = h.script(
        "direct.sh",
        "#!/bin/sh\necho \"direct: $BASH_VERSION.\"\nwhile true; do sleep 1; done\n",
    );
    h.ok(&["start", "direct.sh", "--interpreter", "none"]);
    h.wait_log("direct-out.log", "direct: .");
    assert_eq!(h.must("direct")["pm2_env"]["exec_interpreter"], "none");
    let pid = h.wait_online("direct");
    assert_eq!(cmdline(pid), ["/bin/sh", direct.to_str().unwrap()]);
}

// ---- where and how apps run -------------------------------------------------------------

#[test]
fn cwd_and_environment() {
    let h = Home::new("cwd");
    let sub = h.dir.join("sub");
    let other = h.dir.join("other");
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::create_dir_all(&other).unwrap();
    h.script(
        "where.sh",
        "echo \"pwd=$(pwd) var=$WARD_TEST_VAR\"\nexec sleep 1000\n",
    );
    let unique = format!("v{}", std::process::id());
    // Typed in sub/: the app runs in sub/, and sees the client's environment.
    let out = h
        .cmd(&["start", "../where.sh"])
        .current_dir(&sub)
        .env("WARD_TEST_VAR", &unique)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let log = h.wait_log("where-out.log", "pwd=");
    assert!(
        log.contains(&format!("pwd={} var={unique}", sub.display())),
        "{log}"
    );
    assert_eq!(h.must("where")["pm2_env"]["pm_cwd"], sub.to_str().unwrap());
    assert_eq!(
        h.must("where")["pm2_env"]["pm_exec_path"],
        h.dir.join("where.sh").to_str().unwrap()
    );

    // --cwd overrides, relative to where start was typed; as in pm2, the script is then
    // found relative to that folder.
    h.ok(&["start", "../where.sh", "-n", "w2", "--cwd", "other"]);
    h.wait_log("w2-out.log", &format!("pwd={} var=", other.display()));
    assert_eq!(h.must("w2")["pm2_env"]["pm_cwd"], other.to_str().unwrap());
    assert_eq!(
        h.must("w2")["pm2_env"]["pm_exec_path"],
        h.dir.join("where.sh").to_str().unwrap()
    );
    let pid = h.wait_online("w2");
    let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    let env = String::from_utf8_lossy(&env);
    assert!(env.split('\0').any(|v| v == "pm_id=1"), "pm2's variables");
    assert!(env.split('\0').any(|v| v == "name=w2"), "pm2's variables");
}

#[test]
fn stop_kills_the_whole_process_group() {
    let h = Home::new("group");
    h.script(
        "parent.sh",
        "#!/bin/sh\nsleep 1000 &\necho child $!\nwait\n",
    );
    h.ok(&["start", "parent.sh"]);
    let pid = h.wait_online("parent");
    let log = h.wait_log("parent-out.log", "child ");
    let child: u32 = log.trim().rsplit(' ').next().unwrap().parse().unwrap();
    assert!(alive(child));
    // The app leads a group of its own, and the child is in it.
    assert!(
        group_members(pid).contains(&child),
        "{:?}",
        group_members(pid)
    );
    h.ok(&["stop", "parent"]);
    assert!(!alive(pid), "parent survived stop");
    // The child got SIGKILL when its parent ended; it may take a moment to go.
    wait_until(secs(10), "the child gone", || {
        !alive(child) && group_members(pid).is_empty()
    });
}

#[test]
fn autorestart_after_a_crash() {
    let h = Home::new("crash");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh"]);
    let pid = h.wait_online("loop");
    kill9(pid);
    wait_until(secs(10), "loop back with a new pid", || {
        h.pid("loop").is_some_and(|p| p != pid) && h.status("loop").as_deref() == Some("online")
    });
    assert_eq!(h.restarts("loop"), 1);
    assert!(h.ok(&["ls"]).contains("│ 1 "), "restart count in ls");
}

#[test]
fn no_autorestart_stays_stopped() {
    let h = Home::new("noauto");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh", "--no-autorestart"]);
    let pid = h.wait_online("loop");
    assert_eq!(h.must("loop")["pm2_env"]["autorestart"], false);
    kill9(pid);
    wait_until(secs(10), "loop stopped", || {
        h.status("loop").as_deref() == Some("stopped")
    });
    // An app that ran to its end does not come back either.
    h.script("once.sh", "echo once\n");
    h.ok(&["start", "once.sh", "--no-autorestart"]);
    wait_until(secs(10), "once stopped", || {
        h.status("once").as_deref() == Some("stopped")
    });
    h.wait_log("once-out.log", "once");
    let snap = h.snapshot();
    assert_eq!(snap[0], (0, "loop".into(), 0, "stopped".into(), 0));
    assert_eq!(snap[1], (1, "once".into(), 0, "stopped".into(), 0));
}

#[test]
fn output_goes_to_log_files() {
    let h = Home::new("logs");
    h.script(
        "talk.sh",
        "echo to-stdout\necho to-stderr >&2\nexec sleep 1000\n",
    );
    h.ok(&["start", "talk.sh"]);
    let out = h.wait_log("talk-out.log", "to-stdout");
    let err = h.wait_log("talk-error.log", "to-stderr");
    assert!(!out.contains("to-stderr"), "{out}");
    assert!(!err.contains("to-stdout"), "{err}");
}

// ---- errors change nothing --------------------------------------------------------------

#[test]
fn errors_are_clear_and_change_nothing() {
    let h = Home::new("errors");
    h.script("good.sh", LOOP);
    std::fs::write(h.dir.join("plain"), "echo hi\n").unwrap(); // mode 0644, no extension
    std::fs::write(h.dir.join("x.rb"), "puts 1\n").unwrap();
    h.ok(&["start", "good.sh"]);
    h.wait_online("good");
    let before = h.snapshot();

    let cases: &[(&[&str], &str)] = &[
        (&["stop", "nope"], "nope not found"),
        (&["restart", "good", "nope"], "nope not found"),
        (&["delete", "nope", "good"], "nope not found"),
        (&["stop", "42"], "no app with id 42"),
        (&["restart", "0", "42"], "no app with id 42"),
        (&["restart", "/(/"], "invalid regular expression"),
        (&["restart", "/^zzz/"], "no app name matches"),
        (&["start", "missing.js"], "script not found"),
        (
            &["start", "good.sh", "missing.js", "-f"],
            "script not found",
        ),
        (&["start", "plain"], "not executable"),
        (
            &["start", "good", "x.rb", "--interpreter", "/no/such"],
            "interpreter not found",
        ),
        (
            &["start", "x.rb", "--interpreter", "no-such-interp"],
            "interpreter not found",
        ),
        (
            &["start", "good.sh", "-f", "--cwd", "/no/such/dir"],
            "no such folder",
        ),
        (
            &["start", "good.sh", "-n", "../x", "-f"],
            "invalid app name",
        ),
        (&["start", "good.sh", "-n", "a/b", "-f"], "invalid app name"),
        (&["start", "good.sh", "-n", "..", "-f"], "invalid app name"),
        (&["start", "good.sh", "-n", "all", "-f"], "invalid app name"),
        (&["start", "good.sh", "--bogus"], "--bogus"),
        (
            &["start", "good.sh", "--max-restarts", "x"],
            "--max-restarts",
        ),
        (&["ls", "--bogus"], "--bogus"),
        (&["stop"], "needs a target"),
        (&["start"], "start needs"),
        (&["frobnicate"], "unknown command"),
        (&["stop", "good", "--", "x"], "only goes with start"),
        (&[], "no command given"),
    ];
    for (args, want) in cases {
        let out = h.run(args);
        let err = failed(&out);
        assert!(
            err.starts_with("ward: ") && err.contains(want),
            "ward {args:?}: stderr should say {want:?}, got {err:?}"
        );
        assert!(out.stdout.is_empty(), "ward {args:?} printed to stdout");
        assert_eq!(h.snapshot(), before, "ward {args:?} changed the table");
    }
    assert!(!exists(&h.log_path("x-out.log")));
    assert!(!exists(&h.root.join("x-out.log")));
}

// ---- the ls table -----------------------------------------------------------------------

/// Runs `ward ls` on a pseudo-terminal (through script(1)); `None` when script is missing.
fn ls_on_a_tty(h: &Home, no_color: bool) -> Option<String> {
    let cmd = format!("{} ls", BIN);
    let mut c = std::process::Command::new("script");
    c.args(["-qec", &cmd, "/dev/null"])
        .env("WARD_HOME", &h.root)
        .env_remove("NO_COLOR")
        .stdin(std::process::Stdio::null());
    if no_color {
        c.env("NO_COLOR", "1");
    }
    let out = c.output().ok()?;
    assert!(out.status.success(), "{out:?}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn colours_only_on_a_terminal_and_never_with_no_color() {
    let h = Home::new("colour");
    h.ok(&["start", "sleep", "--", "1000"]);
    h.wait_online("sleep");
    let piped = h.ok(&["ls"]);
    assert!(!piped.contains('\x1b'), "{piped}");
    let nc = h.run_env(&["ls"], &[("NO_COLOR", "1")]);
    assert!(!String::from_utf8_lossy(&nc.stdout).contains('\x1b'));
    match ls_on_a_tty(&h, false) {
        Some(tty) => {
            assert!(tty.contains("\x1b["), "no colours on a terminal:\n{tty}");
            let tty_nc = ls_on_a_tty(&h, true).unwrap();
            assert!(tty_nc.contains("sleep"), "{tty_nc}");
            assert!(
                !tty_nc.contains("\x1b["),
                "colours with NO_COLOR:\n{tty_nc}"
            );
        }
        None => eprintln!("script(1) not found: terminal colours not checked"),
    }
}

#[test]
fn ls_into_a_closed_pipe_ends_quietly() {
    let h = Home::new("pipe");
    for i in 0..3 {
        h.ok(&["start", "sleep", "-n", &format!("s{i}"), "--", "1000"]);
    }
    // The reader is gone before ward writes a byte.
    for args in [&["ls"][..], &["jlist"], &["restart", "all"], &["help"]] {
        let (r, w) = nix::unistd::pipe().unwrap();
        drop(r);
        let out = h
            .cmd(args)
            .stdout(std::process::Stdio::from(w))
            .stderr(std::process::Stdio::piped())
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "ward {args:?}: {err}");
        assert!(err.is_empty(), "ward {args:?} complained: {err}");
        use std::os::unix::process::ExitStatusExt;
        assert!(
            out.status.success() || out.status.signal() == Some(13),
            "ward {args:?}: {}",
            out.status
        );
    }
    // And the shell's way.
    let out = std::process::Command::new("bash")
        .args(["-c", &format!("set -o pipefail; {BIN} ls | head -1")])
        .env("WARD_HOME", &h.root)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked") && err.is_empty(), "{err}");
    assert!(
        matches!(out.status.code(), Some(0) | Some(141)),
        "{}",
        out.status
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 1);
}

// ---- state.json -------------------------------------------------------------------------

fn state(h: &Home) -> serde_json::Value {
    let s = std::fs::read_to_string(h.root.join("state.json")).expect("state.json exists");
    serde_json::from_str(&s).unwrap_or_else(|e| panic!("state.json is not JSON ({e}): {s}"))
}

fn state_statuses(h: &Home) -> Vec<(String, String)> {
    state(h)["apps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["spec"]["name"].as_str().unwrap().to_string(),
                a["run"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn state_json_follows_the_table() {
    let h = Home::new("state");
    h.ok(&["start", "sleep", "-n", "one", "--", "1000"]);
    h.wait_online("one");
    wait_until(secs(10), "state.json says online", || {
        state_statuses(&h) == [("one".into(), "online".into())]
    });
    h.ok(&["start", "sleep", "-n", "two", "--", "1000"]);
    h.ok(&["stop", "one"]);
    wait_until(secs(10), "state.json follows", || {
        state_statuses(&h)
            == [
                ("one".into(), "stopped".into()),
                ("two".into(), "online".into()),
            ]
    });
    h.ok(&["delete", "one"]);
    wait_until(secs(10), "state.json follows delete", || {
        state_statuses(&h) == [("two".into(), "online".into())]
    });
    // No temporary file is left beside it.
    let leftovers: Vec<_> = std::fs::read_dir(&h.root)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---- a daemon that survives garbage -----------------------------------------------------

fn header(id: u64, seq: u32, count: u32) -> Vec<u8> {
    let mut d = Vec::with_capacity(16);
    d.extend_from_slice(&id.to_le_bytes());
    d.extend_from_slice(&seq.to_le_bytes());
    d.extend_from_slice(&count.to_le_bytes());
    d
}

/// One datagram of the garbage mix: random bytes, valid header + garbage JSON, valid
/// header + valid JSON of the wrong shape, first or middle frames of messages that never
/// end, and headers with absurd counts.
fn garbage(rng: &mut Rng) -> Vec<u8> {
    let kind = rng.below(6);
    let id = rng.next();
    match kind {
        0 => {
            let n = rng.below(70_000) as usize;
            rng.bytes(n)
        }
        1 => {
            let mut d = header(id, 0, 1);
            let n = rng.below(2_000) as usize;
            d.extend(rng.bytes(n));
            d
        }
        2 => {
            let mut d = header(id, 0, 1);
            let docs: [&[u8]; 6] = [
                b"{}",
                b"{\"req\":\"act\"}",
                b"{\"req\":\"act\",\"verb\":\"stop\",\"targets\":\"all\"}",
                b"{\"req\":\"start\",\"items\":[{\"target\":1}]}",
                b"[1,2,3",
                b"null",
            ];
            d.extend_from_slice(docs[rng.below(docs.len() as u64) as usize]);
            d
        }
        3 => {
            // The first frame of a message that never ends.
            let count = 2 + rng.below(4000) as u32;
            let mut d = header(id, 0, count);
            let n = rng.below(60_000) as usize;
            d.extend(rng.bytes(n));
            d
        }
        4 => {
            let count = 2 + rng.below(10) as u32;
            let seq = 1 + rng.below(count as u64 - 1) as u32;
            let mut d = header(id, seq, count);
            d.extend(rng.bytes(100));
            d
        }
        _ => {
            let mut d = header(id, rng.next() as u32, rng.next() as u32);
            let n = rng.below(100) as usize;
            d.extend(rng.bytes(n));
            d
        }
    }
}

fn rss_kb(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

#[test]
fn daemon_survives_random_datagrams() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let h = Home::new("fuzz");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh"]);
    let pid = h.wait_online("loop");
    let before = h.snapshot();
    let daemon = h.daemon_pid().unwrap();

    let name = format!("ward-fuzz-{}", std::process::id());
    let bound =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    let unbound = UnixDatagram::unbound().unwrap();
    for s in [&bound, &unbound] {
        s.set_write_timeout(Some(secs(30))).unwrap();
    }
    let mut rng = Rng(0x5eed_0000_0000_0001 ^ std::process::id() as u64);
    let sock = h.socket();
    for i in 0..10_000 {
        let d = garbage(&mut rng);
        let s = if i % 2 == 0 { &bound } else { &unbound };
        // A datagram larger than the socket's buffers may be refused by the kernel: that
        // is the sender's problem, not the daemon's.
        if let Err(e) = s.send_to(&d, &sock) {
            assert!(
                matches!(e.raw_os_error(), Some(libc::EMSGSIZE) | Some(libc::ENOBUFS)),
                "send {i} ({} bytes): {e}\nward.log:\n{}",
                d.len(),
                std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default()
            );
        }
    }
    // A client that reads none of its replies must delay no one else: a fresh one fills its
    // receive queue (the kernel holds about 10 datagrams) just before the ping. A daemon
    // with one queue for all would hold the ping back until it gives up on that client (5 s).
    let name = format!("ward-stuck-{}", std::process::id());
    let stuck =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    for _ in 0..50 {
        stuck.send_to(b"not even a header", &sock).unwrap();
    }
    let t = std::time::Instant::now();
    assert_eq!(h.ok(&["ping"]), "pong\n");
    assert!(
        t.elapsed() < Duration::from_millis(2500),
        "ping took {:?} behind a client that reads nothing",
        t.elapsed()
    );
    assert_eq!(h.daemon_pid(), Some(daemon));
    assert!(alive(daemon));
    assert!(h.ok(&["ls"]).contains("loop"));
    assert_eq!(h.snapshot(), before, "garbage changed the table");
    assert!(alive(pid));
    // Abandoned partial messages may not pile up in the daemon's memory.
    let rss = rss_kb(daemon);
    eprintln!(
        "ping after the garbage: {:?}; daemon RSS {rss} kB",
        t.elapsed()
    );
    assert!(rss < 16 * 1024, "daemon RSS {rss} kB after the garbage");

    // Replies to the bound socket are errors, never anything else.
    bound.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut replies = 0;
    while let Ok(n) = bound.recv(&mut buf) {
        replies += 1;
        let body = String::from_utf8_lossy(&buf[16..n]);
        assert!(body.contains("\"error\""), "{body}");
    }
    assert!(replies > 0, "garbage got no error reply");
}

#[test]
fn oversized_and_forged_requests() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let h = Home::new("oversize");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh"]);
    h.wait_online("loop");
    let before = h.snapshot();
    let name = format!("ward-big-{}", std::process::id());
    let s =
        UnixDatagram::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap()).unwrap();
    s.set_read_timeout(Some(secs(10))).unwrap();
    let ask = |d: &[u8]| -> String {
        s.send_to(d, h.socket()).unwrap();
        let mut buf = vec![0u8; 256 * 1024];
        let n = s.recv(&mut buf).expect("a reply");
        String::from_utf8_lossy(&buf[16..n]).into_owned()
    };
    // Larger than any frame the daemon reads.
    nix::sys::socket::setsockopt(&s, nix::sys::socket::sockopt::SndBuf, &(1 << 20)).unwrap();
    let mut big = header(1, 0, 1);
    big.extend(vec![b' '; 200_000]);
    let r = ask(&big);
    assert!(r.contains("too large"), "{r}");

    // Requests the client would never send: names that escape the logs folder.
    for bad in ["a\\u0000b", "../x", "a/b", "..", ""] {
        let req = format!(
            "{{\"req\":\"start\",\"items\":[{{\"target\":\"/bin/sleep\",\"force\":true,\
             \"spec\":{{\"name\":\"{bad}\",\"script\":\"/bin/sleep\",\"args\":[\"1000\"],\
             \"cwd\":\"/\"}}}}]}}"
        );
        let mut d = header(2, 0, 1);
        d.extend_from_slice(req.as_bytes());
        let r = ask(&d);
        assert!(r.contains("invalid app name"), "{bad}: {r}");
    }
    // A request the daemon can only fail at spawn time: the registered app named with it
    // is not restarted, and the new one is not kept.
    let req = "{\"req\":\"start\",\"items\":[{\"target\":\"loop\",\"force\":false},\
               {\"target\":\"/bin/sleep\",\"force\":true,\"spec\":{\"name\":\"bad\",\
               \"script\":\"/bin/sleep\",\"interpreter\":\"/no/such/interp\",\"cwd\":\"/\"}}]}";
    let mut d = header(3, 0, 1);
    d.extend_from_slice(req.as_bytes());
    let r = ask(&d);
    assert!(r.contains("unable to start bad"), "{r}");
    assert_eq!(h.snapshot(), before);
    let logs: Vec<_> = std::fs::read_dir(h.root.join("logs"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(logs.len(), 2, "{logs:?}");
    assert!(!exists(&h.root.join("x-out.log")));
    h.ok(&["ping"]);
}

// ---- many apps --------------------------------------------------------------------------

#[test]
fn a_hundred_apps() {
    let h = Home::new("hundred");
    for i in 0..100 {
        h.ok(&["start", "sleep", "-n", &format!("n{i}"), "--", "1000"]);
    }
    let ls = h.ok(&["ls"]);
    assert_eq!(ls.matches("online").count(), 100, "{ls}");
    let pids: Vec<u64> = h.snapshot().iter().map(|a| a.2).collect();
    assert!(pids.iter().all(|&p| p != 0));
    h.ok(&["stop", "all"]);
    let snap = h.snapshot();
    assert_eq!(snap.len(), 100);
    assert!(
        snap.iter().all(|a| a.3 == "stopped" && a.2 == 0),
        "{snap:?}"
    );
    assert!(pids.iter().all(|&p| !alive(p as u32)));
    h.ok(&["delete", "all"]);
    assert!(h.jlist().is_empty());
    assert!(!h.ok(&["ls"]).contains("n0"));
}

fn kill9(pid: u32) {
    let st = std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
}

#[test]
fn sigterm_stops_every_app_and_the_daemon() {
    let h = Home::new("sigterm");
    h.script("tree.sh", "#!/bin/sh\nsleep 1000 &\nwait\n");
    h.ok(&["start", "tree.sh"]);
    let g = h.wait_online("tree");
    let daemon = h.daemon_pid().unwrap();
    let st = std::process::Command::new("kill")
        .args(["-TERM", &daemon.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(secs(10), "daemon gone", || !alive(daemon));
    wait_until(secs(10), "app group gone", || group_members(g).is_empty());
    wait_until(secs(10), "no process of this home", || {
        processes_of(&h).is_empty()
    });
}

#[test]
fn stop_escalates_to_sigkill_and_spaces_survive() {
    let h = Home::new("escalate");
    let sub = h.dir.join("dir with space");
    std::fs::create_dir_all(&sub).unwrap();
    let script = sub.join("my app.sh");
    std::fs::write(
        &script,
        "trap '' INT\necho \"args:$1|$2\"\nwhile true; do sleep 1; done\n",
    )
    .unwrap();
    h.ok(&[
        "start",
        script.to_str().unwrap(),
        "--kill-timeout",
        "300",
        "--",
        "a b",
        "c",
    ]);
    let pid = h.wait_online("my app");
    h.wait_log("my-app-out.log", "args:a b|c");
    // SIGINT is ignored: the stop ends with SIGKILL after the kill timeout.
    h.ok(&["stop", "my app"]);
    assert_eq!(h.status("my app").as_deref(), Some("stopped"));
    wait_until(secs(10), "the app gone", || !alive(pid));
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(log.contains("SIGKILL"), "{log}");
}

#[test]
fn racing_first_commands_start_one_daemon() {
    let h = Home::new("race");
    let children: Vec<_> = (0..8)
        .map(|_| {
            h.cmd(&["ls"])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert_eq!(log.matches("daemon started").count(), 1, "{log}");
    // A daemon started by a client that lost the race gives way at once, but may still be
    // on its way out when the clients return.
    let daemons = || -> Vec<u32> {
        processes_of(&h)
            .into_iter()
            .filter(|&p| cmdline(p).iter().any(|a| a == "daemon"))
            .collect()
    };
    wait_until(secs(10), "one daemon left", || daemons().len() == 1);
    assert_eq!(daemons().len(), 1, "{:?}", daemons());
}
