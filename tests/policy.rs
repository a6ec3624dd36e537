//! Restart policies and lifecycle (issue 4), with real processes: restart delay, backoff,
//! errored, autorestart off, stop exit codes, the stop ladder, memory limit, cron, watch,
//! reset, sendSignal, and a crash loop that must not starve the control socket.
mod util;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;
use util::*;

/// A shell script that appends the time of each start (ns) to `starts`, then runs `rest`.
fn starter(h: &Home, name: &str, rest: &str) -> PathBuf {
    h.script(
        &format!("{name}.sh"),
        &format!("#!/bin/sh\ndate +%s%N >> {name}.starts\n{rest}\n"),
    )
}

fn starts(h: &Home, name: &str) -> Vec<u64> {
    std::fs::read_to_string(h.dir.join(format!("{name}.starts")))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn gaps_ms(t: &[u64]) -> Vec<u64> {
    t.windows(2).map(|w| (w[1] - w[0]) / 1_000_000).collect()
}

fn env_of(h: &Home, name: &str) -> Value {
    h.app(name).unwrap_or_else(|| panic!("no app {name}"))["pm2_env"].clone()
}

fn restarts(h: &Home, name: &str) -> u64 {
    env_of(h, name)["restart_time"].as_u64().unwrap_or(0)
}

/// The app's exit records from state.json (what `describe` shows).
fn exits(h: &Home, name: &str) -> Vec<Value> {
    let s = std::fs::read_to_string(h.root.join("state.json")).unwrap_or_default();
    let v: Value = serde_json::from_str(&s).unwrap_or(Value::Null);
    v["apps"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|a| a["spec"]["name"] == name)
        .and_then(|a| a["run"]["exits"].as_array().cloned())
        .unwrap_or_default()
}

fn daemon_log(h: &Home) -> String {
    std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default()
}

fn timed(h: &Home, args: &[&str]) -> Duration {
    let t = Instant::now();
    h.ok(args);
    t.elapsed()
}

#[test]
fn restart_delay_is_observed_and_shown_as_waiting_restart() {
    let h = Home::new("delay");
    starter(&h, "d", "exit 1");
    h.ok(&[
        "start",
        "d.sh",
        "--restart-delay",
        "300",
        "--max-restarts",
        "100",
    ]);
    wait_until(secs(10), "status waiting restart", || {
        h.status("d").as_deref() == Some("waiting restart")
    });
    wait_until(secs(20), "4 starts", || starts(&h, "d").len() >= 4);
    h.ok(&["stop", "d"]);
    let g = gaps_ms(&starts(&h, "d"));
    assert!(
        g.iter().all(|&x| x >= 295),
        "gaps {g:?} shorter than 300 ms"
    );
    assert!(
        daemon_log(&h).contains("restarting in 300 ms"),
        "{}",
        daemon_log(&h)
    );
}

#[test]
fn exponential_backoff_grows() {
    let h = Home::new("backoff");
    starter(&h, "b", "exit 1");
    h.ok(&[
        "start",
        "b.sh",
        "--exp-backoff-restart-delay",
        "300",
        "--max-restarts",
        "100",
    ]);
    wait_until(secs(30), "5 starts", || starts(&h, "b").len() >= 5);
    h.ok(&["stop", "b"]);
    let g = gaps_ms(&starts(&h, "b"));
    // 300, 450, 675, 1012 ms, plus the time to start a shell (long on a loaded machine).
    for (i, want) in [300, 450, 675, 1012].iter().enumerate() {
        assert!(
            g[i] >= want - 5,
            "gap {i} is {} ms, want ≥ {want}: {g:?}",
            g[i]
        );
    }
    assert!(g[0] < 900, "the first delay is the base one: {g:?}");
    assert!(daemon_log(&h).contains("restarting in 1012 ms"));
}

#[test]
fn errored_after_max_restarts_and_restart_brings_it_back() {
    let h = Home::new("errored");
    std::fs::write(h.dir.join("crash"), "").unwrap();
    starter(&h, "e", "[ -f crash ] && exit 1\nexec sleep 1000");
    h.ok(&["start", "e.sh", "--max-restarts", "3"]);
    wait_until(secs(10), "errored", || {
        h.status("e").as_deref() == Some("errored")
    });
    // 3 restarts, then the fourth quick exit gives up: 4 starts in all.
    assert_eq!(starts(&h, "e").len(), 4);
    assert_eq!(env_of(&h, "e")["unstable_restarts"], 4);
    assert!(daemon_log(&h).contains("errored, no more restarts"));
    let out = h.ok(&["ls"]);
    assert!(out.contains("errored"), "{out}");

    std::fs::remove_file(h.dir.join("crash")).unwrap();
    h.ok(&["restart", "e"]);
    wait_until(secs(10), "online again", || {
        h.status("e").as_deref() == Some("online") && h.pid("e").is_some()
    });
}

#[test]
fn no_autorestart_leaves_it_stopped() {
    let h = Home::new("noauto");
    starter(&h, "n", "exit 0");
    starter(&h, "n1", "exit 1");
    h.ok(&["start", "n.sh", "n1.sh", "--no-autorestart"]);
    for name in ["n", "n1"] {
        wait_until(secs(10), "an exit record", || exits(&h, name).len() == 1);
        // pm2 shows `stopped` here (it never sets one-launch-status); so does ward.
        assert_eq!(h.status(name).as_deref(), Some("stopped"));
        assert_eq!(restarts(&h, name), 0);
        assert_eq!(starts(&h, name).len(), 1);
    }
    assert_eq!(exits(&h, "n")[0]["reason"], "exited");
    assert_eq!(exits(&h, "n1")[0]["reason"], "crashed");
    assert!(daemon_log(&h).contains("autorestart is off"));
}

#[test]
fn stop_exit_codes_are_not_restarted() {
    let h = Home::new("stopcodes");
    starter(&h, "s3", "exit 3");
    starter(&h, "s4", "exit 4");
    h.ok(&[
        "start",
        "s3.sh",
        "s4.sh",
        "--stop-exit-codes",
        "0",
        "3",
        "--max-restarts",
        "1000",
    ]);
    wait_until(secs(10), "s4 restarted", || starts(&h, "s4").len() >= 3);
    wait_until(secs(10), "s3 exit recorded", || exits(&h, "s3").len() == 1);
    assert_eq!(h.status("s3").as_deref(), Some("stopped"));
    assert_eq!(starts(&h, "s3").len(), 1);
    assert_eq!(exits(&h, "s3")[0]["exit"]["Code"], 3);
    assert!(daemon_log(&h).contains("stop_exit_codes"));
}

#[test]
fn kill_timeout_ends_a_tree_that_ignores_signals() {
    let h = Home::new("killtimeout");
    h.script(
        "stubborn.sh",
        "#!/bin/bash\n\
         trap '' INT TERM\n\
         sleep 1000 & echo $! > gc1\n\
         bash -c 'sleep 1000 & echo $! > gc2; wait' &\n\
         echo up > ready\n\
         wait\n",
    );
    h.ok(&["start", "stubborn.sh", "--kill-timeout", "1000"]);
    wait_until(secs(10), "grandchildren up", || {
        h.dir.join("ready").exists()
            && h.dir.join("gc2").exists()
            && std::fs::read_to_string(h.dir.join("gc2")).is_ok_and(|s| !s.trim().is_empty())
    });
    let read = |f: &str| -> u32 {
        std::fs::read_to_string(h.dir.join(f))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    let (main, gc1, gc2) = (h.pid("stubborn").unwrap(), read("gc1"), read("gc2"));
    for p in [main, gc1, gc2] {
        assert!(alive(p), "{p} should run");
    }
    let took = timed(&h, &["stop", "stubborn"]);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_secs(5),
        "stop took {took:?}, want ≈ 1 s"
    );
    for p in [main, gc1, gc2] {
        wait_until(secs(5), "every process of the tree gone", || !alive(p));
    }
    assert!(daemon_log(&h).contains("did not stop within 1000 ms"));
}

#[test]
fn kill_signal_sigterm_reaches_the_app() {
    let h = Home::new("killsignal");
    h.script(
        "graceful.sh",
        "#!/bin/bash\ntrap 'echo term > marker; exit 0' TERM\necho up > ready\n\
         while true; do sleep 0.1; done\n",
    );
    h.ok(&[
        "start",
        "graceful.sh",
        "--kill-signal",
        "SIGTERM",
        "--kill-timeout",
        "8000",
    ]);
    wait_until(secs(10), "ready", || h.dir.join("ready").exists());
    let took = timed(&h, &["stop", "graceful"]);
    assert_eq!(
        std::fs::read_to_string(h.dir.join("marker")).unwrap_or_default(),
        "term\n"
    );
    assert!(
        took < Duration::from_secs(6),
        "it left on TERM, not SIGKILL: {took:?}"
    );
    assert_eq!(env_of(&h, "graceful")["kill_signal"], "SIGTERM");
}

#[test]
fn a_stopped_app_still_stops() {
    let h = Home::new("sigstop");
    h.script("frozen.sh", "#!/bin/sh\nwhile true; do sleep 1; done\n");
    h.ok(&["start", "frozen.sh", "--kill-timeout", "10000"]);
    wait_until(secs(10), "online", || h.pid("frozen").is_some());
    let pid = h.pid("frozen").unwrap();
    let st = std::process::Command::new("kill")
        .args(["-STOP", "--", &format!("-{pid}")])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(secs(5), "stopped by SIGSTOP", || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('T'))
        })
    });
    let took = timed(&h, &["stop", "frozen"]);
    assert!(
        took < Duration::from_secs(5),
        "SIGCONT should let SIGINT act: {took:?}"
    );
    assert!(!alive(pid));
    assert_eq!(h.status("frozen").as_deref(), Some("stopped"));
}

#[test]
fn max_memory_restart_restarts_a_hungry_app() {
    let h = Home::new("memory");
    h.script(
        "hungry.py",
        "import time\nopen('hungry.starts', 'a').write('%d\\n' % time.time_ns())\n\
         hog = b'x' * (80 << 20)\ntime.sleep(1000)\n",
    );
    h.ok(&[
        "start",
        "hungry.py",
        "--max-memory-restart",
        "40M",
        "--max-restarts",
        "100",
    ]);
    wait_until(secs(30), "restarted for memory", || {
        exits(&h, "hungry")
            .iter()
            .any(|e| e["reason"] == "memory_limit")
    });
    wait_until(secs(10), "started again", || {
        starts(&h, "hungry").len() >= 2
    });
    assert!(restarts(&h, "hungry") >= 1);
    assert_eq!(env_of(&h, "hungry")["max_memory_restart"], 40 << 20);
    let log = daemon_log(&h);
    assert!(
        log.contains("over its max_memory_restart of 40.0 MB"),
        "{log}"
    );
}

#[test]
fn cron_restart_every_two_seconds() {
    let h = Home::new("cron");
    starter(&h, "c", "exec sleep 1000");
    let err = h.fails(&["start", "c.sh", "--cron-restart", "0 25 * * *"]);
    assert!(err.contains("hour field \"25\""), "{err}");
    h.ok(&["start", "c.sh", "--cron-restart", "*/2 * * * * *"]);
    wait_until(secs(20), "two cron restarts", || starts(&h, "c").len() >= 3);
    let g = gaps_ms(&starts(&h, "c"));
    assert!(g[1] >= 1500, "cron fired too often: {g:?}");
    let ex = exits(&h, "c");
    assert!(ex.iter().all(|e| e["reason"] == "cron"), "{ex:?}");
    assert_eq!(ex[0]["detail"], "*/2 * * * * *");
    assert!(daemon_log(&h).contains("cron_restart \"*/2 * * * * *\" came due"));
    // `ward stop` drops the schedule's effect: a stopped app stays stopped.
    h.ok(&["stop", "c"]);
    let n = starts(&h, "c").len();
    h.ok(&["start", "c"]);
    wait_until(secs(10), "cron again after start", || {
        starts(&h, "c").len() >= n + 2
    });
}

fn touch(p: &Path) {
    std::fs::write(p, format!("{:?}", Instant::now())).unwrap();
}

#[test]
fn watch_restarts_on_change_but_not_for_logs_or_ignored_paths() {
    let h = Home::new("watch");
    let proj = h.dir.join("proj");
    std::fs::create_dir_all(proj.join("src")).unwrap();
    std::fs::create_dir_all(proj.join("tmp")).unwrap();
    std::fs::create_dir_all(proj.join("node_modules/dep")).unwrap();
    std::fs::write(
        proj.join("app.sh"),
        "#!/bin/sh\ndate +%s%N >> ../w.starts\nwhile true; do echo tick; sleep 0.05; done\n",
    )
    .unwrap();
    let mut c = h.cmd(&[
        "start",
        "app.sh",
        "--name",
        "w",
        "--watch",
        "--ignore-watch",
        "tmp",
        "-o",
        "logs/out.log",
        "-e",
        "logs/err.log",
    ]);
    c.current_dir(&proj);
    let out = c.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until(
        secs(10),
        "output in the log inside the watched tree",
        || std::fs::read_to_string(proj.join("logs/out.log")).is_ok_and(|s| s.contains("tick")),
    );
    assert_eq!(env_of(&h, "w")["watch"], true);
    assert!(h.ok(&["ls"]).contains("enabled"));

    // Ignored: ward's own log (written all the time, and touched), tmp/, node_modules/.
    touch(&proj.join("logs/out.log"));
    touch(&proj.join("tmp/scratch"));
    touch(&proj.join("node_modules/dep/index.js"));
    touch(&proj.join(".hidden"));
    // Watched.
    touch(&proj.join("src/a.js"));
    wait_until(secs(10), "a restart", || restarts(&h, "w") >= 1);
    wait_until(secs(10), "online", || {
        h.status("w").as_deref() == Some("online")
    });
    // state.json is written at the end of the loop turn, after the reply that said
    // "online" went out: wait for it rather than race it.
    let mut ex = Vec::new();
    wait_until(secs(10), "the exit in state.json", || {
        ex = exits(&h, "w");
        !ex.is_empty()
    });
    assert_eq!(ex.len(), 1, "{ex:?}");
    assert_eq!(ex[0]["reason"], "watch");
    assert_eq!(
        ex[0]["detail"],
        proj.join("src/a.js").to_string_lossy().as_ref()
    );
    assert!(daemon_log(&h).contains("src/a.js changed"));
    let desc = h.ok(&["describe", "w"]);
    assert!(
        desc.contains("watched path changed:") && desc.contains("src/a.js"),
        "{desc}"
    );

    // A folder made after the start is watched too.
    std::fs::create_dir(proj.join("src/new")).unwrap();
    wait_until(secs(10), "restart for the new folder", || {
        restarts(&h, "w") >= 2
    });
    wait_until(secs(10), "online", || {
        h.status("w").as_deref() == Some("online")
    });
    touch(&proj.join("src/new/b.js"));
    wait_until(secs(10), "restart for a file in it", || {
        exits(&h, "w")
            .last()
            .is_some_and(|e| e["detail"] == proj.join("src/new/b.js").to_string_lossy().as_ref())
    });
    wait_until(secs(10), "online", || {
        h.status("w").as_deref() == Some("online")
    });
    let n = restarts(&h, "w");

    // stop --watch: stopped and no longer watching.
    h.ok(&["stop", "--watch", "w"]);
    assert_eq!(h.status("w").as_deref(), Some("stopped"));
    assert_eq!(env_of(&h, "w")["watch"], false);
    // restart --watch: watching again.
    h.ok(&["restart", "w", "--watch"]);
    assert_eq!(env_of(&h, "w")["watch"], true);
    wait_until(secs(10), "online", || {
        h.status("w").as_deref() == Some("online")
    });
    let n2 = restarts(&h, "w");
    assert_eq!(n2, n + 1);
    touch(&proj.join("src/a.js"));
    wait_until(secs(10), "restart after watching again", || {
        restarts(&h, "w") > n2
    });
    assert!(exits(&h, "w").iter().all(|e| {
        let d = e["detail"].as_str().unwrap_or("");
        !d.contains("proj/logs") && !d.contains("proj/tmp") && !d.contains("node_modules")
    }));
}

#[test]
fn reset_zeroes_the_counters() {
    let h = Home::new("reset");
    h.script("r.sh", "#!/bin/sh\nexec sleep 1000\n");
    h.ok(&["start", "r.sh"]);
    h.ok(&["restart", "r"]);
    h.ok(&["restart", "r"]);
    assert_eq!(restarts(&h, "r"), 2);
    let out = h.ok(&["reset", "r"]);
    assert!(out.contains("reset"), "{out}");
    assert_eq!(restarts(&h, "r"), 0);
    assert_eq!(env_of(&h, "r")["unstable_restarts"], 0);
    assert_eq!(h.status("r").as_deref(), Some("online"));
    let err = h.fails(&["reset", "nope"]);
    assert!(!err.is_empty());
}

#[test]
fn send_signal_reaches_the_main_pid() {
    let h = Home::new("sendsignal");
    h.script(
        "sig.sh",
        "#!/bin/bash\ntrap 'echo usr2 >> marker' USR2\necho up > ready\n\
         while true; do sleep 0.1; done\n",
    );
    h.script("idle.sh", "#!/bin/sh\nexit 0\n");
    h.ok(&["start", "sig.sh"]);
    h.ok(&["start", "idle.sh", "--no-autorestart"]);
    wait_until(secs(10), "ready", || h.dir.join("ready").exists());
    let out = h.ok(&["sendSignal", "SIGUSR2", "sig"]);
    assert!(out.contains("SIGUSR2 sent to pid"), "{out}");
    wait_until(secs(10), "the trap ran", || {
        std::fs::read_to_string(h.dir.join("marker")).is_ok_and(|s| s == "usr2\n")
    });
    h.ok(&["send-signal", "USR2", "sig"]);
    wait_until(secs(10), "the trap ran twice", || {
        std::fs::read_to_string(h.dir.join("marker")).is_ok_and(|s| s == "usr2\nusr2\n")
    });
    assert_eq!(h.status("sig").as_deref(), Some("online"));
    wait_until(secs(10), "idle exited", || {
        h.status("idle").as_deref() == Some("stopped")
    });
    let err = h.fails(&["sendSignal", "SIGUSR2", "all"]);
    assert!(err.contains("not running: idle"), "{err}");
    assert!(
        h.fails(&["sendSignal", "SIGNOPE", "sig"])
            .contains("unknown signal")
    );
}

#[test]
fn a_crash_loop_of_100_apps_does_not_starve_the_socket() {
    let h = Home::new("crashloop");
    let mut names = Vec::new();
    for i in 0..100 {
        let n = format!("crash{i}.sh");
        h.script(&n, "#!/bin/sh\nexit 1\n");
        names.push(n);
    }
    let mut args = vec!["start", "--max-restarts", "100000000", "--min-uptime", "0"];
    args.extend(names.iter().map(String::as_str));
    h.ok(&args);
    wait_until(secs(30), "the loop is going", || {
        h.jlist()
            .iter()
            .filter(|a| a["pm2_env"]["restart_time"].as_u64().unwrap_or(0) >= 3)
            .count()
            >= 50
    });
    let total = |h: &Home| -> u64 {
        h.jlist()
            .iter()
            .map(|a| a["pm2_env"]["restart_time"].as_u64().unwrap_or(0))
            .sum()
    };
    let before = total(&h);
    let mut times = Vec::new();
    for _ in 0..10 {
        let t = timed(&h, &["ls"]);
        assert!(
            t < Duration::from_secs(10),
            "ls took {t:?} during the crash loop"
        );
        times.push(t);
    }
    times.sort();
    eprintln!(
        "ls during a crash loop of 100 apps: median {:?}, max {:?}",
        times[5], times[9]
    );
    assert!(total(&h) > before, "the loop went on while ls was served");
    h.ok(&["delete", "all"]);
}

#[test]
fn every_policy_flag_and_command_is_documented() {
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/ward.1"))
        .unwrap()
        .replace("\\-", "-");
    let h = Home::new("docs");
    let start = h.ok(&["help", "start"]);
    for flag in [
        "--restart-delay",
        "--exp-backoff-restart-delay",
        "--max-restarts",
        "--min-uptime",
        "--no-autorestart",
        "--stop-exit-codes",
        "--kill-timeout",
        "--kill-signal",
        "--max-memory-restart",
        "--cron-restart",
        "--watch",
        "--ignore-watch",
        "--watch-delay",
    ] {
        assert!(start.contains(flag), "ward help start lacks {flag}");
        assert!(man.contains(flag), "man page lacks {flag}");
    }
    for (cmd, word) in [
        ("reset", "reset"),
        ("sendSignal", "sendSignal"),
        ("send-signal", "send-signal"),
        ("stop", "--watch"),
        ("restart", "--watch"),
    ] {
        assert!(
            h.ok(&["help", cmd]).contains(word),
            "ward help {cmd} lacks {word}"
        );
        assert!(man.contains(word), "man page lacks {word}");
    }
    assert!(man.contains("WARD_WORKER_INTERVAL"));
    assert!(h.ok(&["help"]).contains("WARD_WORKER_INTERVAL"));
}
