//! Log capture and `ward logs`/`flush`/`reloadLogs`, with real apps and the real binary.
mod util;
use util::*;

use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `ward logs ...` running as a child; its stdout lines are collected by a thread.
struct Follower {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Follower {
    fn new(h: &Home, args: &[&str]) -> Follower {
        let mut all = vec!["logs"];
        all.extend_from_slice(args);
        let mut child = h
            .cmd(&all)
            .env("NO_COLOR", "1")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ward logs");
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let l2 = lines.clone();
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines() {
                match line {
                    Ok(l) => l2.lock().unwrap().push(l),
                    Err(_) => break,
                }
            }
        });
        Follower { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    fn wait_for(&self, what: &str) {
        let start = Instant::now();
        loop {
            if self.lines().iter().any(|l| l == what) {
                return;
            }
            if start.elapsed() > secs(15) {
                panic!(
                    "ward logs never printed {what:?}; it printed:\n{}",
                    self.lines().join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(s: &str) -> Vec<&str> {
    s.lines().collect()
}

/// An app that prints `out N` for N in 1..=20 and `err N` for 1..=3, then waits for the
/// file `go` in its folder, prints `after`/`err after`, and sleeps.
fn chatty(h: &Home, name: &str) {
    h.script(
        &format!("{name}.sh"),
        "#!/bin/sh\nfor i in $(seq 1 20); do echo \"out $i\"; done\n\
         for i in 1 2 3; do echo \"err $i\" >&2; done\n\
         while [ ! -f go ]; do sleep 0.05; done\necho after\necho 'err after' >&2\n\
         exec sleep 1000\n",
    );
    h.ok(&["start", &format!("{name}.sh")]);
    wait_until(secs(10), "output written", || {
        h.read_log(&format!("{name}-out.log")).contains("out 20\n")
            && h.read_log(&format!("{name}-error.log")).contains("err 3\n")
    });
}

#[test]
fn logs_shows_last_lines_with_pm2_prefix_then_follows() {
    let h = Home::new("logs-follow");
    chatty(&h, "app");
    let f = Follower::new(&h, &["app"]);
    f.wait_for("0|app      | out 20");
    f.wait_for("0|app      | err 3");
    let got = f.lines();
    // The default is the last 15 lines of each file.
    assert!(got.iter().any(|l| l == "0|app      | out 6"), "{got:#?}");
    assert!(!got.iter().any(|l| l == "0|app      | out 5"), "{got:#?}");
    assert!(
        got[0].starts_with("[TAILING] Tailing last 15 lines for [app]"),
        "{got:#?}"
    );
    assert!(
        got.iter()
            .any(|l| l.ends_with("app-out.log last 15 lines:"))
    );
    std::fs::write(h.dir.join("go"), "").unwrap();
    f.wait_for("0|app      | after");
    f.wait_for("0|app      | err after");
}

/// Waits until the `ward logs` child has `file` open: it follows from the end of the
/// file, so what is written from then on is shown.
fn wait_following(f: &Follower, h: &Home, file: &str) {
    let want = h.log_path(file);
    let pid = f.child.id();
    wait_until(secs(10), &format!("ward logs following {file}"), || {
        std::fs::read_dir(format!("/proc/{pid}/fd"))
            .map(|d| {
                d.flatten()
                    .any(|e| std::fs::read_link(e.path()).is_ok_and(|t| t == want))
            })
            .unwrap_or(false)
    });
}

/// pm2's `logs --json` and `logs --format`: new lines only, one record each.
#[test]
fn logs_json_and_format_stream_new_lines_as_pm2() {
    let h = Home::new("logs-json");
    chatty(&h, "a");
    let json = Follower::new(&h, &["a", "--json"]);
    let kv = Follower::new(&h, &["a", "--format"]);
    for f in [&json, &kv] {
        wait_following(f, &h, "a-out.log");
        wait_following(f, &h, "a-error.log");
    }
    std::fs::write(h.dir.join("go"), "").unwrap();
    let start = Instant::now();
    while json.lines().len() < 2 || kv.lines().len() < 2 {
        assert!(
            start.elapsed() < secs(15),
            "{:?} {:?}",
            json.lines(),
            kv.lines()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let got = json.lines();
    assert_eq!(got.len(), 2, "no history, only the two new lines: {got:#?}");
    let recs: Vec<serde_json::Value> = got
        .iter()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    for (r, (msg, kind)) in recs.iter().zip([("after", "out"), ("err after", "err")]) {
        assert_eq!(r["message"], msg, "{r}");
        assert_eq!(r["type"], kind, "{r}");
        assert_eq!(r["process_id"], 0, "{r}");
        assert_eq!(r["app_name"], "a", "{r}");
        let ts = r["timestamp"].as_str().unwrap();
        assert!(is_date(ts, "dddd-dd-ddTdd:dd:dd.dddZ"), "{ts}");
    }
    let got = kv.lines();
    assert_eq!(got.len(), 2, "{got:#?}");
    for (l, tail) in got.iter().zip([
        " app=a id=0 type=out message=after",
        " app=a id=0 type=error message=err after",
    ]) {
        let ts = l
            .strip_prefix("timestamp=")
            .unwrap_or_else(|| panic!("{l:?}"));
        let zone = ts.as_bytes()[19];
        assert!(is_date(&ts[..19], "dddd-dd-dd-dd:dd:dd"), "{l:?}");
        assert!(zone == b'+' || zone == b'-', "{l:?}");
        assert!(is_date(&ts[20..24], "dddd"), "{l:?}");
        assert_eq!(&ts[24..], tail);
    }
}

#[test]
fn logs_options_nostream_raw_out_err_lines() {
    let h = Home::new("logs-opts");
    chatty(&h, "app");
    // Another app, to check that targets select.
    h.script("other.sh", "#!/bin/sh\necho other-line\nexec sleep 1000\n");
    h.ok(&["start", "other.sh"]);
    wait_until(secs(10), "other output", || {
        h.read_log("other-out.log").contains("other-line")
    });

    let out = h.ok(&["logs", "--nostream", "--lines", "2"]);
    let l = lines_of(&out);
    assert!(l.contains(&"0|app      | out 19"), "{out}");
    assert!(l.contains(&"0|app      | out 20"), "{out}");
    assert!(!l.contains(&"0|app      | out 18"), "{out}");
    assert!(l.contains(&"0|app      | err 3"), "{out}");
    assert!(l.contains(&"1|other    | other-line"), "{out}");

    let out = h.ok(&["logs", "app", "--nostream", "--raw", "--lines", "3"]);
    assert_eq!(out, "out 18\nout 19\nout 20\n");
    let raw = h.run(&["logs", "app", "--nostream", "--raw", "--lines", "1"]);
    assert_eq!(String::from_utf8_lossy(&raw.stderr), "err 3\n");

    let out = h.ok(&["logs", "0", "--nostream", "--out"]);
    assert!(out.contains("| out 20") && !out.contains("| err"), "{out}");
    let out = h.ok(&["log", "/^ap/", "--nostream", "--err"]);
    assert!(out.contains("| err 3") && !out.contains("| out"), "{out}");
    assert!(!out.contains("other"), "{out}");
    let out = h.ok(&["logs", "default", "--nostream", "--raw", "--out"]);
    assert!(
        out.contains("other-line") && out.contains("out 20"),
        "{out}"
    );

    let out = h.ok(&["logs", "--nostream", "--lines", "0"]);
    assert_eq!(out, "");
    let err = h.fails(&["logs", "nope", "--nostream"]);
    assert!(err.contains("nope"), "{err}");

    // --lines 0 prints nothing first, then follows.
    let f = Follower::new(&h, &["app", "--lines", "0", "--raw"]);
    std::thread::sleep(Duration::from_millis(400)); // let it reach the end of the files
    std::fs::write(h.dir.join("go"), "").unwrap();
    f.wait_for("after");
    assert!(
        !f.lines().iter().any(|l| l.contains("out 20")),
        "{:?}",
        f.lines()
    );
}

/// pm2 shows its own log (pm2.log) first when it shows every app's, alone for the target
/// `PM2`, and never for one app, raw, or with --out/--err; `ward logs` does the same with
/// ward.log, and follows it.
#[test]
fn logs_of_every_app_show_the_daemon_log_first() {
    let h = Home::new("logs-daemon");
    chatty(&h, "app");
    let first = h.pid("app").unwrap();
    let out = h.ok(&["logs", "--nostream", "--lines", "3"]);
    let l = lines_of(&out);
    assert_eq!(
        l[0],
        "[TAILING] Tailing last 3 lines for [all] processes (change the value with --lines \
         option)",
        "{out}"
    );
    assert_eq!(
        l[1],
        format!("{} last 3 lines:", h.root.join("ward.log").display()),
        "{out}"
    );
    let started = format!("started app (id 0), pid {first}");
    let daemon: Vec<&str> = l[2..]
        .iter()
        .copied()
        .take_while(|x| !x.is_empty())
        .collect();
    assert!(
        !daemon.is_empty()
            && daemon.len() <= 3
            && daemon.iter().all(|x| x.starts_with("ward       | 20"))
            && daemon.iter().any(|x| x.ends_with(&started)),
        "{out}"
    );
    let app_at = l
        .iter()
        .position(|x| x.ends_with("app-out.log last 3 lines:"));
    assert!(app_at.is_some_and(|i| i > 2 + daemon.len()), "{out}");
    for args in [
        &["logs", "app", "--nostream"][..],
        &["logs", "--nostream", "--raw"],
        &["logs", "--nostream", "--out"],
        &["logs", "--nostream", "--err"],
    ] {
        let out = h.ok(args);
        assert!(
            !out.contains("ward.log") && !out.contains("started app"),
            "{args:?}: {out}"
        );
    }
    let out = h.ok(&["logs", "app", "--nostream", "--lines", "1"]);
    assert!(
        out.starts_with("[TAILING] Tailing last 1 lines for [app] process (change"),
        "{out}"
    );
    // pm2's --highlight VALUE (marks only on a terminal: a pipe gets the lines as they are).
    let out = h.ok(&["logs", "app", "--highlight", "out", "--nostream", "--out"]);
    assert!(lines_of(&out).contains(&"0|app      | out 20"), "{out}");

    // Followed: what the daemon writes from now on shows up.
    let f = Follower::new(&h, &["--lines", "0"]);
    h.ok(&["restart", "app"]);
    let second = h.pid("app").unwrap();
    let want = format!("started app (id 0), pid {second}");
    wait_until(secs(15), "the restart in the followed daemon log", || {
        f.lines()
            .iter()
            .any(|x| x.starts_with("ward       | ") && x.ends_with(&want))
    });

    // As pm2: pm2.log, labelled PM2; `pm2 logs PM2` shows it alone.
    let p = Home::new("logs-daemon-pm2");
    let ok = |args: &[&str]| {
        let o = p.pm2_in(&p.dir, args);
        assert!(o.status.success(), "{args:?}: {o:?}");
        String::from_utf8_lossy(&o.stdout).into_owned()
    };
    ok(&["start", "sleep", "--name", "s", "--", "1000"]);
    let out = ok(&["logs", "--nostream", "--lines", "2"]);
    assert!(
        out.contains(&format!(
            "{} last 2 lines:",
            p.root.join("pm2.log").display()
        )),
        "{out}"
    );
    assert!(
        lines_of(&out)
            .iter()
            .any(|x| x.starts_with("PM2        | ") && x.contains("started s (id 0)")),
        "{out}"
    );
    let out = ok(&["logs", "PM2", "--nostream", "--lines", "2"]);
    assert!(
        out.contains("PM2        | ") && !out.contains("s-out.log"),
        "{out}"
    );
}

#[test]
fn logs_timestamp_prefixes_shown_lines() {
    let h = Home::new("logs-timestamp");
    chatty(&h, "app");
    let out = h.ok(&[
        "logs",
        "app",
        "--nostream",
        "--out",
        "--lines",
        "1",
        "--timestamp",
    ]);
    let line = lines_of(&out)
        .into_iter()
        .find(|l| l.ends_with("| out 20"))
        .unwrap_or_else(|| panic!("{out}"));
    // YYYY-MM-DD-HH:mm:ss 0|app      | out 20
    let (stamp, rest) = line.split_at(19);
    assert!(is_date(stamp, "dddd-dd-dd-dd:dd:dd"), "{line}");
    assert_eq!(rest, " 0|app      | out 20");
    let out = h.ok(&[
        "logs",
        "--timestamp",
        "[at] HH:mm",
        "app",
        "--nostream",
        "--out",
        "--lines",
        "1",
    ]);
    assert!(
        lines_of(&out).iter().any(|l| l.starts_with("at ")
            && is_date(&l[3..8], "dd:dd")
            && l.ends_with(" 0|app      | out 20")),
        "{out}"
    );
}

/// `d` stands for a digit in `pattern`.
fn is_date(s: &str, pattern: &str) -> bool {
    s.len() == pattern.len()
        && s.chars().zip(pattern.chars()).all(|(c, p)| match p {
            'd' => c.is_ascii_digit(),
            p => c == p,
        })
}

#[test]
fn time_prefixes_whole_lines_and_holds_partial_lines() {
    let h = Home::new("logs-time");
    h.script(
        "p.sh",
        "#!/bin/sh\nprintf abc\nsleep 0.5\necho def\necho second\nprintf 'e1' >&2\nsleep 0.3\necho ' e2' >&2\nexec sleep 1000\n",
    );
    h.ok(&["start", "p.sh", "--time"]);
    wait_until(secs(10), "both lines", || {
        h.read_log("p-out.log").contains("second\n") && h.read_log("p-error.log").ends_with("\n")
    });
    let out = h.read_log("p-out.log");
    let l = lines_of(&out);
    assert_eq!(l.len(), 2, "{out}");
    assert!(is_date(&l[0][..19], "dddd-dd-ddTdd:dd:dd"), "{out}");
    assert_eq!(&l[0][19..], ": abcdef", "{out}");
    assert_eq!(&l[1][19..], ": second", "{out}");
    let err = h.read_log("p-error.log");
    assert_eq!(lines_of(&err).len(), 1, "{err}");
    assert!(err.ends_with(": e1 e2\n"), "{err}");

    h.script("q.sh", "#!/bin/sh\necho hello\nexec sleep 1000\n");
    h.ok(&["start", "q.sh", "--log-date-format", "[at] YYYY Z"]);
    wait_until(secs(10), "line", || {
        h.read_log("q-out.log").contains("hello")
    });
    let out = h.read_log("q-out.log");
    assert!(
        out.starts_with("at ") && out.ends_with(": hello\n"),
        "{out}"
    );
    assert!(is_date(&out[3..7], "dddd"), "{out}");
    // Z is +HH:MM or -HH:MM.
    assert!(
        out.as_bytes()[8] == b'+' || out.as_bytes()[8] == b'-',
        "{out}"
    );
    assert_eq!(out.len(), "at 2026 +00:00: hello\n".len(), "{out}");
}

#[test]
fn output_error_and_combined_files() {
    let h = Home::new("logs-files");
    h.script(
        "a.sh",
        "#!/bin/sh\necho o1\necho e1 >&2\nsleep 0.2\necho o2\necho e2 >&2\nexec sleep 1000\n",
    );
    h.ok(&[
        "start",
        "a.sh",
        "-o",
        "out.txt",
        "-e",
        "sub/err.txt",
        "-l",
        "all.txt",
    ]);
    let read = |p: &str| std::fs::read_to_string(h.dir.join(p)).unwrap_or_default();
    wait_until(secs(10), "all four lines", || {
        read("all.txt").lines().count() == 4
    });
    assert_eq!(read("out.txt"), "o1\no2\n");
    assert_eq!(read("sub/err.txt"), "e1\ne2\n");
    let all = read("all.txt");
    for l in ["o1", "o2", "e1", "e2"] {
        assert!(all.lines().any(|x| x == l), "{all}");
    }
    let app = h.app("a").unwrap();
    assert_eq!(
        app["pm2_env"]["pm_out_log_path"],
        h.dir.join("out.txt").to_string_lossy().as_ref()
    );
    // `ward logs` reads the files the app really uses.
    let out = h.ok(&["logs", "a", "--nostream", "--raw", "--out"]);
    assert_eq!(out, "o1\no2\n");

    // -l without a path: logs/NAME.log; --log=PATH also works.
    h.script(
        "b.sh",
        "#!/bin/sh\necho b-out\necho b-err >&2\nexec sleep 1000\n",
    );
    h.ok(&["start", "b.sh", "-l"]);
    wait_until(secs(10), "combined default", || {
        h.read_log("b.log").lines().count() == 2
    });
    h.script("c.sh", "#!/bin/sh\necho c-out\nexec sleep 1000\n");
    h.ok(&["start", "c.sh", "--log=c-all.txt", "--merge-logs"]);
    wait_until(secs(10), "--log=", || read("c-all.txt") == "c-out\n");
}

#[test]
fn dev_null_discards_a_stream() {
    let h = Home::new("logs-null");
    h.script(
        "n.sh",
        "#!/bin/sh\necho gone\necho kept-err >&2\nexec sleep 1000\n",
    );
    h.ok(&["start", "n.sh", "-o", "/dev/null"]);
    wait_until(secs(10), "stderr kept", || {
        h.read_log("n-error.log").contains("kept-err")
    });
    assert!(!exists(&h.log_path("n-out.log")));
    h.script(
        "m.sh",
        "#!/bin/sh\necho kept-out\necho gone >&2\nexec sleep 1000\n",
    );
    h.ok(&["start", "m.sh", "-e", "NULL", "--time"]);
    wait_until(secs(10), "stdout kept", || {
        h.read_log("m-out.log").contains("kept-out")
    });
    assert!(!exists(&h.log_path("m-error.log")));
    assert!(!exists(&h.dir.join("NULL")));
    // `ward logs` skips what does not exist.
    let out = h.ok(&["logs", "n", "--nostream", "--raw"]);
    assert_eq!(out, "");
}

#[test]
fn flush_empties_files_and_following_continues() {
    let h = Home::new("logs-flush");
    chatty(&h, "app");
    h.script("b.sh", "#!/bin/sh\necho keep-me\nexec sleep 1000\n");
    h.ok(&["start", "b.sh"]);
    wait_until(secs(10), "b output", || {
        h.read_log("b-out.log").contains("keep-me")
    });
    let f = Follower::new(&h, &["app", "--raw"]);
    f.wait_for("out 20");

    let out = h.ok(&["flush", "app"]);
    assert!(out.contains("app-out.log"), "{out}");
    assert_eq!(h.read_log("app-out.log"), "");
    assert_eq!(h.read_log("app-error.log"), "");
    assert!(h.read_log("b-out.log").contains("keep-me"));
    let daemon_log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(daemon_log.contains("daemon started"), "{daemon_log}");

    // Writing continues at the start of the emptied file, and the follower sees it.
    std::fs::write(h.dir.join("go"), "").unwrap();
    f.wait_for("after");
    wait_until(secs(10), "after in the emptied file", || {
        h.read_log("app-out.log") == "after\n"
    });

    // Without a target: every app and the daemon's log.
    h.ok(&["flush"]);
    assert_eq!(h.read_log("b-out.log"), "");
    let daemon_log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(!daemon_log.contains("daemon started"), "{daemon_log}");
    assert!(h.fails(&["flush", "nope"]).contains("nope"));
}

#[test]
fn reload_logs_after_an_external_mv_and_sigusr2() {
    let h = Home::new("logs-reload");
    h.script(
        "t.sh",
        "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"tick $i\"; sleep 0.05; done\n",
    );
    h.ok(&["start", "t.sh"]);
    wait_until(secs(10), "ticks", || {
        h.read_log("t-out.log").contains("tick 3\n")
    });
    let f = Follower::new(&h, &["t", "--raw", "--lines", "0"]);
    let log = h.log_path("t-out.log");
    let moved = h.log_path("t-out.log.1");
    std::fs::rename(&log, &moved).unwrap();
    // Until the daemon re-opens, it writes to the moved file.
    let before = std::fs::read_to_string(&moved).unwrap().len();
    wait_until(secs(10), "writes go to the moved file", || {
        std::fs::read_to_string(&moved).unwrap().len() > before
    });
    let out = h.ok(&["reloadLogs"]);
    assert!(out.contains("Reloading"), "{out}");
    wait_until(secs(10), "a new file with new ticks", || {
        h.read_log("t-out.log").contains("tick")
    });
    // The follower went over to the new file.
    let first_new = h.read_log("t-out.log").lines().next().unwrap().to_string();
    f.wait_for(&first_new);

    // SIGUSR2 does the same.
    std::fs::rename(&log, &moved).unwrap();
    let pid = h.daemon_pid().unwrap();
    let st = std::process::Command::new("kill")
        .args(["-USR2", &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    wait_until(secs(10), "new file after SIGUSR2", || {
        h.read_log("t-out.log").contains("tick")
    });
    assert!(alive(pid));
    // Nothing lost across the two moves: the numbers run on.
    let all = format!(
        "{}{}",
        std::fs::read_to_string(&moved).unwrap(),
        h.read_log("t-out.log")
    );
    assert!(all.lines().all(|l| l.starts_with("tick ")), "{all}");
}

/// Every `N` of a numbered sequence in `files`, checking each line is whole.
fn numbers_in(files: &[std::path::PathBuf], strip: usize) -> Vec<u64> {
    let mut nums = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(f).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{} ends in the middle of a line",
            f.display()
        );
        for l in text.lines() {
            let n = l[strip..]
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("broken line {l:?} in {}", f.display()));
            nums.push(n);
        }
    }
    nums
}

fn rotated(h: &Home, stem: &str) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(h.root.join("logs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{stem}__"))
        })
        .collect();
    v.sort();
    v
}

#[test]
fn rotation_keeps_every_line_exactly_once() {
    let h = Home::new("logs-rotate");
    const N: u64 = 30000;
    h.script(
        "seq.sh",
        &format!("#!/bin/sh\nseq 1 {N}\nexec sleep 1000\n"),
    );
    h.ok(&[
        "start",
        "seq.sh",
        "--max-log-size",
        "16K",
        "--log-retain",
        "1000",
    ]);
    let all_files = || {
        let mut f = rotated(&h, "seq-out");
        f.push(h.log_path("seq-out.log"));
        f
    };
    // A file listed a moment ago may be rotated away (renamed) before it is read: read it
    // as empty, and look again.
    wait_until(secs(30), "the whole sequence", || {
        all_files().iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .ends_with(&format!("\n{N}\n"))
        })
    });
    let files = all_files();
    assert!(files.len() > 5, "expected several rotations: {files:?}");
    let mut nums = numbers_in(&files, 0);
    nums.sort_unstable();
    let want: Vec<u64> = (1..=N).collect();
    assert!(
        nums == want,
        "{} numbers, not each of 1..={N} once",
        nums.len()
    );
    // Each rotated file passed the size only by the rest of its last line.
    for f in &files[..files.len() - 1] {
        let len = std::fs::metadata(f).unwrap().len();
        assert!((16384..16384 + 6).contains(&len), "{f:?}: {len}");
    }

    // With timestamps and a retain count: the newest files are kept, lines whole.
    h.script(
        "tseq.sh",
        &format!("#!/bin/sh\nseq 1 {N}\nexec sleep 1000\n"),
    );
    h.ok(&[
        "start",
        "tseq.sh",
        "--max-log-size",
        "8K",
        "--log-retain",
        "3",
        "--time",
    ]);
    wait_until(secs(30), "the whole timed sequence", || {
        let mut f = rotated(&h, "tseq-out");
        f.push(h.log_path("tseq-out.log"));
        f.iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .ends_with(&format!(": {N}\n"))
        })
    });
    let kept = rotated(&h, "tseq-out");
    assert_eq!(kept.len(), 3, "{kept:?}");
    let mut files = kept;
    files.push(h.log_path("tseq-out.log"));
    let nums = numbers_in(&files, "2026-11-25T20:01:02: ".len());
    // What is kept is the end of the sequence, in order, without gaps or repeats.
    let first = nums[0];
    let want: Vec<u64> = (first..=N).collect();
    assert!(nums == want, "kept numbers are not {first}..={N} in order");
}

#[test]
fn following_survives_builtin_rotation() {
    let h = Home::new("logs-follow-rotate");
    // Bursts of 100 numbers, a rotation every few bursts: the follower looks every 150 ms,
    // so it sees each file before the next rotation replaces it.
    h.script(
        "burst.sh",
        "#!/bin/sh\nwhile [ ! -f go ]; do sleep 0.05; done\ni=0\n\
         while [ $i -lt 1000 ]; do i=$((i+1)); echo $i; \
         case $i in *00) sleep 0.3;; esac; done\nexec sleep 1000\n",
    );
    h.ok(&["start", "burst.sh", "--max-log-size", "1K"]);
    let f = Follower::new(&h, &["burst", "--raw", "--lines", "0", "--out"]);
    std::thread::sleep(Duration::from_millis(400)); // let it open the (empty) file first
    std::fs::write(h.dir.join("go"), "").unwrap();
    f.wait_for("1000");
    assert!(rotated(&h, "burst-out").len() >= 3);
    let got: Vec<u64> = f
        .lines()
        .iter()
        .map(|l| l.parse().unwrap_or_else(|_| panic!("bad line {l:?}")))
        .collect();
    let want: Vec<u64> = (1..=1000).collect();
    assert!(
        got == want,
        "the follower printed {} lines, not 1..=1000 in order",
        got.len()
    );
}

/// The process events of a `Follower` of `--json`: (status, app name), in order.
fn events(f: &Follower) -> Vec<(String, String)> {
    f.lines()
        .iter()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["type"] == "process_event")
        .map(|v| {
            assert!(
                v["timestamp"].as_str().is_some_and(|t| t.ends_with('Z')),
                "{v}"
            );
            (
                v["status"].as_str().unwrap_or("?").to_string(),
                v["app_name"].as_str().unwrap_or("?").to_string(),
            )
        })
        .collect()
}

/// Restarts `app` until every follower has printed a `restart` event of it (a follower
/// asks the daemon for events as it starts, so the first restart may come before).
fn restart_until_heard(h: &Home, app: &str, followers: &[&Follower], times: usize) {
    let count = |f: &Follower| {
        events(f)
            .iter()
            .filter(|(s, n)| s == "restart" && n == app)
            .count()
    };
    let deadline = Instant::now() + secs(30);
    while followers.iter().any(|f| count(f) < times) {
        assert!(
            Instant::now() < deadline,
            "no restart event of {app}: {:?}",
            followers.iter().map(|f| events(f)).collect::<Vec<_>>()
        );
        let before: Vec<usize> = followers.iter().map(|f| count(f)).collect();
        h.ok(&["restart", app]);
        // Until each has heard this one, or 2 s (one that was not listening yet).
        let heard = Instant::now() + Duration::from_secs(2);
        while Instant::now() < heard && followers.iter().zip(&before).any(|(f, &b)| count(f) <= b) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// pm2's `logs --json` prints process events beside the lines (Log.jsonStream): the
/// daemon sends them to the client. pm2's order for a restart: the exit, the new
/// process's online, then the CLI's `restart`. ward keeps to the apps shown.
#[test]
fn logs_json_carries_process_events() {
    let h = Home::new("logs-json-events");
    for name in ["a", "b"] {
        h.script(
            &format!("{name}.sh"),
            "#!/bin/sh\necho up\nexec sleep 1000\n",
        );
        h.ok(&["start", &format!("{name}.sh")]);
    }
    let all = Follower::new(&h, &["--json"]);
    let only_b = Follower::new(&h, &["b", "--json"]);
    // Twice: a follower may have begun to listen in the middle of the first restart (after
    // its online, before its `restart`); the second is heard whole.
    restart_until_heard(&h, "b", &[&all, &only_b], 2);
    for f in [&all, &only_b] {
        let of_b: Vec<String> = events(f)
            .into_iter()
            .filter(|(_, n)| n == "b")
            .map(|(s, _)| s)
            .collect();
        let last = of_b.iter().rposition(|s| s == "restart").unwrap();
        assert!(
            last >= 2 && of_b[last - 2..last] == ["exit", "online"],
            "{of_b:?}"
        );
    }
    // a's events reach the follower of everything, not the follower of b: b's restart
    // after a's is printed after it, so by then a's would be there too.
    restart_until_heard(&h, "a", &[&all], 1);
    let heard = events(&only_b)
        .iter()
        .filter(|(s, n)| s == "restart" && n == "b")
        .count();
    restart_until_heard(&h, "b", &[&only_b], heard + 1);
    assert!(
        events(&only_b).iter().all(|(_, n)| n == "b"),
        "{:?}",
        events(&only_b)
    );
    h.ok(&["stop", "a"]);
    wait_until(secs(10), "stop after exit", || {
        let a: Vec<String> = events(&all)
            .into_iter()
            .filter(|(_, n)| n == "a")
            .map(|(s, _)| s)
            .collect();
        a.ends_with(&["exit".to_string(), "stop".to_string()])
    });
}

/// The copies of `-i 2 --merge-logs` write one file: `ward logs` shows it once, under the
/// first copy's prefix, as pm2 does (each line was shown, and followed, once per copy).
#[test]
fn a_file_copies_share_is_shown_once() {
    let h = Home::new("logs-merged-once");
    h.script(
        "m.sh",
        "#!/bin/sh\necho \"hello $NODE_APP_INSTANCE\"\nexec sleep 1000\n",
    );
    h.ok(&["start", "m.sh", "-i", "2", "--merge-logs"]);
    wait_until(secs(10), "both copies' lines", || {
        let log = h.read_log("m-out.log");
        log.contains("hello 0\n") && log.contains("hello 1\n")
    });
    let out = h.ok(&["logs", "m", "--nostream", "--out", "--lines", "5"]);
    let l = lines_of(&out);
    let header = format!("{} last 5 lines:", h.log_path("m-out.log").display());
    assert_eq!(l.iter().filter(|x| **x == header).count(), 1, "{out}");
    for line in ["0|m        | hello 0", "0|m        | hello 1"] {
        assert_eq!(l.iter().filter(|x| **x == line).count(), 1, "{out}");
    }
}

#[test]
fn merged_copies_share_whole_lines_across_rotations() {
    let h = Home::new("logs-merged");
    const N: u64 = 3000;
    // Each line in two writes, both copies at once: a line is whole in the shared file only
    // if ward holds each copy's partial line until its newline.
    h.script(
        "m.sh",
        &format!(
            "#!/bin/sh\nwhile [ ! -f go ]; do sleep 0.01; done\ni=0\n\
             while [ $i -lt {N} ]; do i=$((i+1)); printf '%s-' $NODE_APP_INSTANCE; \
             printf '%s\\n' $i; done\nexec sleep 1000\n"
        ),
    );
    h.ok(&[
        "start",
        "m.sh",
        "-i",
        "2",
        "--merge-logs",
        "--max-log-size",
        "8K",
        "--log-retain",
        "1000",
    ]);
    std::fs::write(h.dir.join("go"), "").unwrap();
    let files = || {
        let mut f = rotated(&h, "m-out");
        f.push(h.log_path("m-out.log"));
        f
    };
    let count = || {
        files()
            .iter()
            .map(|f| {
                std::fs::read_to_string(f)
                    .unwrap_or_default()
                    .lines()
                    .count()
            })
            .sum::<usize>()
    };
    wait_until(secs(30), "both sequences", || count() == 2 * N as usize);
    let mut seen = std::collections::HashSet::new();
    for f in files() {
        let text = std::fs::read_to_string(&f).unwrap();
        assert!(
            text.is_empty() || text.ends_with('\n'),
            "{f:?} ends mid-line"
        );
        for l in text.lines() {
            let (copy, n) = l
                .split_once('-')
                .unwrap_or_else(|| panic!("broken line {l:?} in {f:?}"));
            let n: u64 = n.parse().unwrap_or_else(|_| panic!("broken line {l:?}"));
            assert!(copy == "0" || copy == "1", "{l:?}");
            assert!(seen.insert((copy.to_string(), n)), "{l:?} twice");
        }
    }
    assert_eq!(seen.len(), 2 * N as usize);
    // Both copies moved on to the fresh file at each rotation: no rotated file grew far
    // past the size (a copy still writing into a rotated file would make it grow on).
    // The two copies write about 39 kB; a rotated file takes 8 kB and what the other copy
    // wrote before it noticed the rotation (seen: 9.7 to 12.8 kB), so at least three
    // rotations.
    let f = files();
    let sizes: Vec<u64> = f
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .collect();
    assert!(f.len() >= 4, "{f:?}: {sizes:?}");
    for r in &f[..f.len() - 1] {
        let len = std::fs::metadata(r).unwrap().len();
        assert!(len < 4096 + 64 * 1024 + 16, "{r:?}: {len}");
    }
}

#[test]
fn config_json_gives_rotation_defaults() {
    let h = Home::new("logs-config");
    std::fs::create_dir_all(&h.root).unwrap();
    std::fs::write(
        h.root.join("config.json"),
        r#"{"max_log_size": "4K", "log_retain": 2, "something_else": true}"#,
    )
    .unwrap();
    h.script("s.sh", "#!/bin/sh\nseq 1 5000\nexec sleep 1000\n");
    h.ok(&["start", "s.sh"]);
    wait_until(secs(30), "sequence done", || {
        let mut f = rotated(&h, "s-out");
        f.push(h.log_path("s-out.log"));
        f.iter().any(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .ends_with("\n5000\n")
        })
    });
    assert_eq!(rotated(&h, "s-out").len(), 2);
}

#[test]
fn flood_arrives_whole_and_ls_answers() {
    let h = Home::new("logs-flood");
    const MB: u64 = 200;
    h.script(
        "flood.sh",
        &format!("#!/bin/sh\ndd if=/dev/zero bs=1M count={MB} 2>/dev/null\nexec sleep 1000\n"),
    );
    h.ok(&["start", "flood.sh"]);
    let mut ls_times = Vec::new();
    let size = || {
        std::fs::metadata(h.log_path("flood-out.log"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let start = Instant::now();
    while size() < MB << 20 {
        assert!(start.elapsed() < secs(120), "only {} bytes arrived", size());
        let t = Instant::now();
        h.ok(&["ls"]);
        ls_times.push(t.elapsed());
    }
    assert_eq!(size(), MB << 20);
    assert_eq!(h.status("flood").as_deref(), Some("online"));
    ls_times.sort();
    eprintln!(
        "flood: {MB} MB in {:?}; {} `ward ls` during it, median {:?}",
        start.elapsed(),
        ls_times.len(),
        ls_times.get(ls_times.len() / 2)
    );
    let _ = std::fs::remove_file(h.log_path("flood-out.log"));
}

#[test]
fn full_disk_keeps_app_and_daemon_then_recovers() {
    let h = Home::new("logs-full");
    let link = h.dir.join("out.log");
    std::os::unix::fs::symlink("/dev/full", &link).unwrap();
    h.script(
        "t.sh",
        "#!/bin/sh\ni=0\nwhile true; do i=$((i+1)); echo \"tick $i\"; sleep 0.02; done\n",
    );
    h.ok(&["start", "t.sh", "-o", "out.log"]);
    let daemon_log = || std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default();
    wait_until(secs(10), "the failure is logged", || {
        daemon_log().contains("unable to write to")
    });
    let pid = h.pid("t").unwrap();
    let dpid = h.daemon_pid().unwrap();
    // Some more ticks go nowhere; the app keeps running (its pipe is drained).
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(h.pid("t"), Some(pid));
    assert_eq!(h.status("t").as_deref(), Some("online"));
    assert!(alive(dpid));
    assert_eq!(
        daemon_log().matches("unable to write to").count(),
        1,
        "{}",
        daemon_log()
    );

    // Space comes back: point the path at a real file and re-open.
    let real = h.dir.join("real.log");
    std::fs::remove_file(&link).unwrap();
    std::os::unix::fs::symlink(&real, &link).unwrap();
    h.ok(&["reloadLogs"]);
    wait_until(secs(10), "ticks in the real file", || {
        std::fs::read_to_string(&real)
            .unwrap_or_default()
            .lines()
            .count()
            > 3
    });
    wait_until(secs(10), "recovery logged", || {
        daemon_log().contains("works again")
    });
    assert_eq!(h.pid("t"), Some(pid));
    assert!(alive(dpid));
}

#[test]
fn daemon_log_records_starts_exits_restarts() {
    let h = Home::new("logs-daemonlog");
    h.script("crash.sh", "#!/bin/sh\nsleep 0.2\nexit 3\n");
    h.ok(&["start", "crash.sh", "--max-restarts", "1000"]);
    let daemon_log = || std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default();
    wait_until(secs(10), "a restart", || {
        daemon_log().contains("crash exited with code 3")
    });
    h.ok(&["stop", "crash"]);
    h.script("up.sh", "#!/bin/sh\nexec sleep 1000\n");
    h.ok(&["start", "up.sh"]);
    h.ok(&["restart", "up"]);
    h.ok(&["stop", "up"]);
    let text = daemon_log();
    for want in [
        "started crash (id 0)",
        "crash exited with code 3 after",
        "restarting",
        "up (id 1) was killed by SIGINT: restarting",
        "up (id 1) was killed by SIGINT: stopped",
    ] {
        assert!(text.contains(want), "ward.log lacks {want:?}:\n{text}");
    }
    // Every line starts with a timestamp.
    for l in text.lines() {
        assert!(is_date(&l[..19], "dddd-dd-ddTdd:dd:dd"), "{l}");
    }
}

#[test]
fn ecosystem_log_keys() {
    let h = Home::new("logs-eco");
    h.script(
        "e.sh",
        "#!/bin/sh\nseq 1 2000\necho done >&2\nexec sleep 1000\n",
    );
    std::fs::write(
        h.dir.join("eco.json"),
        r#"{"apps": [{"name": "e", "script": "e.sh", "time": true, "out_file": "o.log",
            "log_file": true, "max_log_size": "4K", "log_retain": 2}]}"#,
    )
    .unwrap();
    h.ok(&["start", "eco.json"]);
    wait_until(secs(10), "stderr line in the combined file", || {
        h.read_log("e.log").contains(": done\n")
    });
    let out = std::fs::read_to_string(h.dir.join("o.log")).unwrap();
    assert!(
        out.is_empty() || is_date(&out[..19], "dddd-dd-ddTdd:dd:dd"),
        "{out}"
    );
    let rotated: Vec<_> = std::fs::read_dir(&h.dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("o__"))
        .collect();
    assert_eq!(rotated.len(), 2);
}

#[test]
fn rotated_files_do_not_restart_a_watched_app() {
    let h = Home::new("logs-watch-rotate");
    let proj = h.dir.join("proj");
    std::fs::create_dir_all(proj.join("src")).unwrap();
    std::fs::write(
        proj.join("app.sh"),
        "#!/bin/sh\nseq 1 3000\nexec sleep 1000\n",
    )
    .unwrap();
    let mut c = h.cmd(&[
        "start",
        "app.sh",
        "--name",
        "w",
        "--watch",
        "-o",
        "out.log",
        "--max-log-size",
        "2K",
    ]);
    c.current_dir(&proj);
    assert!(c.output().unwrap().status.success());
    let rotated_in_proj = || {
        std::fs::read_dir(&proj)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with("out__"))
            .count()
    };
    wait_until(secs(10), "rotations in the watched folder", || {
        rotated_in_proj() >= 3
    });
    std::fs::write(proj.join("src/a.js"), "x").unwrap();
    let daemon_log = || std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default();
    wait_until(secs(10), "the restart for src/a.js", || {
        daemon_log().contains("src/a.js changed")
    });
    let text = daemon_log();
    assert!(
        !text.contains("out__"),
        "a rotated file restarted the app:\n{text}"
    );
    // One restart, for src/a.js (the exit that follows it is logged as "watched path
    // changed" too, so count the restarts themselves).
    assert_eq!(text.matches("restarting w:").count(), 1, "{text}");
}
