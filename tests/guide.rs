//! Issue 19, first contact: help that guides (typos, unknown options, a bare `ward`),
//! colours only where they show, and feedback on long starts.
mod util;
use util::*;

/// Runs a shell command line on a pseudo-terminal through script(1) (util-linux, in every
/// Debian), with `env` set; returns what the terminal showed.
fn on_a_tty(h: &Home, line: &str, env: &[(&str, &str)]) -> String {
    let mut c = std::process::Command::new("script");
    c.args(["-qec", line, "/dev/null"])
        .env("WARD_HOME", &h.root)
        .env_remove("NO_COLOR")
        .env_remove("TERM")
        .current_dir(&h.dir)
        .stdin(std::process::Stdio::null());
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c
        .output()
        .expect("script(1) is required (util-linux; CI has it)");
    assert!(out.status.success(), "{line}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_mistyped_command_gets_a_suggestion() {
    let h = Home::new("guide-typo");
    let err = h.fails(&["strat", "app.js"]);
    assert_eq!(
        err,
        "ward: unknown command \"strat\"; did you mean \"start\"?\n"
    );
    let err = h.fails(&["restrat", "all"]);
    assert!(err.contains("did you mean \"restart\"?"), "{err}");
    let err = h.fails(&["help", "lsit"]);
    assert!(err.contains("did you mean \"list\"?"), "{err}");
    // Nothing near: no guess, the list of commands instead.
    let err = h.fails(&["frobnicate"]);
    assert!(
        err.contains("unknown command \"frobnicate\"; `ward help` lists the commands"),
        "{err}"
    );
    assert!(h.daemon_pid().is_none(), "a typo started the daemon");
}

#[test]
fn an_unknown_option_names_its_command_and_help_page() {
    let h = Home::new("guide-opt");
    let err = h.fails(&["start", "app.js", "--bogus"]);
    assert_eq!(
        err,
        "ward: start: unknown option '--bogus'; `ward help start` lists its options\n"
    );
    // Through an alias, the page is the command's own.
    let err = h.fails(&["ls", "--bogus"]);
    assert!(err.contains("list: unknown option '--bogus'"), "{err}");
    assert!(err.contains("`ward help list`"), "{err}");
    let err = h.fails(&["describe", "a", "b"]);
    assert!(err.contains("describe: unexpected argument"), "{err}");
    assert!(h.daemon_pid().is_none());
}

#[test]
fn bare_ward_prints_a_short_usage() {
    let h = Home::new("guide-bare");
    let out = h.run(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.starts_with("ward: no command given\n"), "{err}");
    assert!(err.contains("Usage: ward <command> [options]"), "{err}");
    assert!(err.contains("ward start app.js"), "{err}");
    assert!(err.contains("`ward help`"), "{err}");
    // Short: a screenful at most, unlike `ward help`.
    assert!(err.lines().count() <= 15, "{err}");
    assert!(h.ok(&["help"]).lines().count() > err.lines().count());
    // Through a pm2 link it names pm2, as every other message there does.
    let out = h.pm2_in(&h.dir, &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Usage: pm2 <command> [options]"), "{err}");
    assert!(
        err.contains("  pm2 start app.js ") && err.contains("`pm2 help`"),
        "{err}"
    );
    assert!(!err.contains("  ward "), "{err}");
}

#[test]
fn term_dumb_gets_no_colour() {
    let h = Home::new("guide-dumb");
    h.ok(&["start", "sleep", "-n", "nap", "--", "1000"]);
    h.wait_online("nap");
    let ls = format!("'{BIN}' ls");
    let tty = on_a_tty(&h, &ls, &[("TERM", "xterm")]);
    assert!(tty.contains("nap") && tty.contains("\x1b["), "{tty}");
    let dumb = on_a_tty(&h, &ls, &[("TERM", "dumb")]);
    assert!(dumb.contains("nap"), "{dumb}");
    assert!(!dumb.contains('\x1b'), "colours with TERM=dumb:\n{dumb}");
    let logs = format!("'{BIN}' logs --nostream");
    h.ok(&[
        "start",
        "sh",
        "-n",
        "say",
        "--",
        "-c",
        "echo hi >&2; exec sleep 1000",
    ]);
    h.wait_log("say-error.log", "hi");
    let tty = on_a_tty(&h, &logs, &[("TERM", "xterm")]);
    assert!(tty.contains("\x1b["), "{tty}");
    let dumb = on_a_tty(&h, &logs, &[("TERM", "dumb")]);
    assert!(dumb.contains("hi") && !dumb.contains('\x1b'), "{dumb}");
}

#[test]
fn a_start_of_many_apps_prints_one_summary_line() {
    let h = Home::new("guide-many");
    let out = h.ok(&["start", "sleep", "-n", "many", "-i", "120", "--", "1000"]);
    let notes: Vec<&str> = out.lines().filter(|l| l.starts_with("[ward]")).collect();
    assert_eq!(notes, ["[ward] 120 apps started ✓"], "{out}");
    // The table still lists every copy.
    assert_eq!(
        out.lines().filter(|l| l.contains(" many ")).count(),
        120,
        "{out}"
    );
    // Asked for, one line per app.
    let out = h.ok(&["--verbose", "restart", "all"]);
    let notes = out
        .lines()
        .filter(|l| l.starts_with("[ward] [many]("))
        .count();
    assert_eq!(notes, 120, "{out}");
    // A few apps keep their own lines.
    let out = h.ok(&["start", "sleep", "-n", "few", "-i", "3", "--", "1000"]);
    let notes = out
        .lines()
        .filter(|l| l.starts_with("[ward] [few]("))
        .count();
    assert_eq!(notes, 3, "{out}");
}

/// An app that ignores SIGINT makes its restart last its kill timeout (2.5 s): a start
/// that is slow for sure.
#[test]
fn a_slow_start_shows_progress_on_a_terminal_and_never_in_a_pipe() {
    let h = Home::new("guide-slow");
    h.script(
        "stubborn.sh",
        "#!/bin/sh\ntrap '' INT\nwhile :; do sleep 1; done\n",
    );
    h.ok(&["start", "stubborn.sh", "--kill-timeout", "2500"]);
    h.wait_online("stubborn");
    let line = format!("'{BIN}' start stubborn");
    let tty = on_a_tty(&h, &line, &[("TERM", "xterm")]);
    assert!(
        tty.contains("\r[ward] starting 1 app… 1 s"),
        "no progress on a terminal:\n{tty:?}"
    );
    // The table follows on a clean line.
    assert!(tty.contains("stubborn"), "{tty}");
    assert_eq!(h.restarts("stubborn"), 1);
    let started = std::time::Instant::now();
    let out = h.run(&["start", "stubborn"]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        started.elapsed() > secs(2),
        "the restart was not slow, so this run proves nothing"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!err.contains("starting") && !err.contains('\r'), "{err:?}");
    assert!(!stdout.contains("starting 1 app"), "{stdout}");
    // A slow restart says so too.
    let line = format!("'{BIN}' restart stubborn");
    let tty = on_a_tty(&h, &line, &[("TERM", "xterm")]);
    assert!(
        tty.contains("\r[ward] restarting stubborn… 1 s"),
        "no progress on a terminal:\n{tty:?}"
    );
    // --silent keeps the terminal quiet too.
    let line = format!("'{BIN}' start stubborn --silent");
    let tty = on_a_tty(&h, &line, &[("TERM", "xterm")]);
    assert!(!tty.contains("starting 1 app"), "{tty:?}");
}
