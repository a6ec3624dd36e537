//! Introspection against real apps: describe, jlist, prettylist (checked against node's own
//! util.inspect), metrics, ls --sort/-m, memory summed over a process tree, and `ward monit`
//! driven through tmux.
mod util;
use std::process::{Command, Stdio};

use util::*;

const LOOP: &str = "#!/bin/sh\nwhile true; do echo tick; sleep 1; done\n";

fn online(h: &Home, name: &str) {
    wait_until(secs(10), &format!("{name} online"), || {
        h.status(name).as_deref() == Some("online")
    });
}

#[test]
fn describe_shows_the_app_and_its_last_exits() {
    let h = Home::new("describe");
    // Crashes once with code 3, then stays up.
    h.script(
        "once.sh",
        "#!/bin/sh\nif [ ! -f crashed ]; then touch crashed; echo first >&2; exit 3; fi\nwhile true; do sleep 1; done\n",
    );
    h.ok(&["start", "once.sh", "-n", "web", "--", "--port", "80"]);
    wait_until(secs(10), "web restarted once and online", || {
        h.app("web").is_some_and(|a| {
            a["pm2_env"]["restart_time"] == 1 && a["pm2_env"]["status"] == "online"
        })
    });
    let pid = h.pid("web").unwrap();
    let out = h.ok(&["describe", "web"]);
    for want in [
        " Describing process with id 0 - name web ",
        "│ status                 │ online",
        "│ namespace              │ default",
        "│ restarts               │ 1 ",
        "│ script args            │ --port 80 ",
        "│ interpreter            │ bash",
        "│ exec mode              │ fork_mode",
        "│ unstable restarts      │ 1 ",
        "│ watch & reload         │ ✘",
        " Last exits (newest first) ",
        "│ code 3 │",
        "│ crashed │",
    ] {
        assert!(out.contains(want), "missing {want:?} in:\n{out}");
    }
    assert!(
        out.contains(&format!("│ pid                    │ {pid} ")),
        "{out}"
    );
    let script = h.dir.join("once.sh");
    assert!(
        out.contains(&script.to_string_lossy().into_owned()),
        "{out}"
    );
    let logs = h.root.join("logs");
    assert!(
        out.contains(&format!("{}/web-out.log", logs.display())),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}/pids/web-0.pid", h.root.display())),
        "{out}"
    );
    // Every line of the box has the same width.
    let box_lines: Vec<&str> = out
        .lines()
        .skip(1)
        .take_while(|l| !l.starts_with(' '))
        .collect();
    let w = box_lines[0].chars().count();
    assert!(box_lines.iter().all(|l| l.chars().count() == w), "{out}");
    // Aliases and ids.
    for alias in ["show", "info", "desc"] {
        assert_eq!(h.ok(&[alias, "0"]).lines().next(), out.lines().next());
    }
    let err = h.fails(&["describe", "nope"]);
    assert!(err.contains("nope") && err.contains("not found"), "{err}");
    let err = h.fails(&["describe"]);
    assert!(err.contains("needs a target"), "{err}");
}

#[test]
fn jlist_has_the_fields_pm2_dashboards_read() {
    let h = Home::new("jlistf");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh", "--namespace", "blue"]);
    online(&h, "loop");
    let a = h.app("loop").unwrap();
    let e = &a["pm2_env"];
    assert_eq!(a["pm_id"], 0);
    assert!(a["pid"].as_u64().unwrap() > 0);
    assert!(a["monit"]["memory"].as_u64().unwrap() > 0, "{a}");
    assert!(a["monit"]["cpu"].is_number());
    assert_eq!(e["status"], "online");
    assert_eq!(e["namespace"], "blue");
    assert_eq!(e["exec_mode"], "fork_mode");
    assert_eq!(e["instance_var"], "NODE_APP_INSTANCE");
    assert_eq!(e["NODE_APP_INSTANCE"], 0);
    assert_eq!(e["version"], "N/A");
    assert_eq!(e["exec_interpreter"], "bash");
    assert!(e["node_args"].is_array());
    assert!(e["env"].is_object() && e["env"]["PATH"].is_string(), "{e}");
    assert_eq!(
        e["pm_pid_path"],
        format!("{}/pids/loop-0.pid", h.root.display())
    );
    assert_eq!(
        e["pm_out_log_path"],
        format!("{}/logs/loop-out.log", h.root.display())
    );
    for k in [
        "pm_uptime",
        "created_at",
        "restart_time",
        "unstable_restarts",
    ] {
        assert!(e[k].is_u64(), "{k}: {e}");
    }
    assert!(e["axm_monitor"].is_object());
    // ls --json is jlist.
    let j: serde_json::Value = serde_json::from_str(&h.ok(&["ls", "--json"])).unwrap();
    assert_eq!(j[0]["pm2_env"]["pm_exec_path"], e["pm_exec_path"]);
}

/// `ward prettylist` must be what node's util.inspect prints for the same data (pm2 runs
/// `util.inspect(list, false, null, false)`). node is required: CI installs it.
#[test]
fn prettylist_is_node_util_inspect_of_jlist() {
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is required for this test (CI installs it): cannot compare with util.inspect"
    );
    let h = Home::new("pretty");
    h.script("loop.sh", LOOP);
    // Odd keys and values exercise quoting, escapes and line breaking.
    let out = h
        .cmd(&["start", "loop.sh", "-n", "it's-app", "--", "a", "b c"])
        .env(
            "WARD_T_MULTI",
            "first line\nsecond line that is long enough to be broken up ok",
        )
        .env("weird-key.x", "it's \"quoted\"")
        .env("WARD_T_LONG", "x".repeat(150))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    h.ok(&["start", "loop.sh", "-n", "second"]);
    online(&h, "second");
    // Stopped apps have fixed figures, so the two reads below see the same data.
    h.ok(&["stop", "all"]);
    let jlist = h.ok(&["jlist"]);
    let pretty = h.ok(&["prettylist"]);
    let mut child = Command::new("node")
        .args([
            "-e",
            "let s='';process.stdin.on('data',d=>s+=d).on('end',()=>process.stdout.write(\
             require('util').inspect(JSON.parse(s),false,null,false)))",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(jlist.as_bytes())
        .unwrap();
    let want = String::from_utf8(child.wait_with_output().unwrap().stdout).unwrap();
    assert!(want.contains("status: 'stopped'"), "{want}");
    if pretty != want {
        for (i, (g, w)) in pretty.lines().zip(want.lines()).enumerate() {
            assert_eq!(g, w, "first difference at line {}", i + 1);
        }
        assert_eq!(pretty, want);
    }
    // What shell scripts written for pm2 grep for.
    assert_eq!(pretty.matches("status: 'stopped'").count(), 2);
    assert!(pretty.contains("name: \"it's-app\""), "{pretty}");
}

#[test]
fn ls_sort_and_mini_list() {
    let h = Home::new("lsopts");
    h.script("loop.sh", LOOP);
    for n in ["bravo", "alpha", "charlie"] {
        h.ok(&["start", "loop.sh", "-n", n]);
    }
    online(&h, "charlie");
    h.ok(&["restart", "charlie"]);
    h.ok(&["restart", "charlie"]);
    h.ok(&["restart", "alpha"]);
    let order = |args: &[&str]| -> Vec<String> {
        let out = h.ok(args);
        let names: Vec<String> = out
            .lines()
            .filter_map(|l| {
                ["alpha", "bravo", "charlie"]
                    .into_iter()
                    .find(|n| l.contains(n))
                    .map(String::from)
            })
            .collect();
        assert_eq!(names.len(), 3, "{out}");
        names
    };
    assert_eq!(order(&["ls"]), ["bravo", "alpha", "charlie"]);
    assert_eq!(
        order(&["ls", "--sort", "name"]),
        ["alpha", "bravo", "charlie"]
    );
    assert_eq!(
        order(&["ls", "--sort", "name:desc"]),
        ["charlie", "bravo", "alpha"]
    );
    assert_eq!(
        order(&["ls", "--sort", "restarts:desc"]),
        ["charlie", "alpha", "bravo"]
    );
    assert_eq!(
        order(&["ls", "--sort", "id:desc"]),
        ["charlie", "alpha", "bravo"]
    );
    // Longest up first: the expected order comes from each app's start time.
    let mut by_start: Vec<(u64, String)> = h
        .jlist()
        .iter()
        .map(|a| {
            (
                a["pm2_env"]["pm_uptime"].as_u64().unwrap(),
                a["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    by_start.sort();
    if by_start.windows(2).all(|w| w[0].0 != w[1].0) {
        let want: Vec<String> = by_start.into_iter().map(|(_, n)| n).collect();
        assert_eq!(order(&["ls", "--sort", "uptime:desc"]), want);
    }
    let mini = h.ok(&["ls", "-m", "--sort", "name"]);
    let lines: Vec<&str> = mini.lines().collect();
    assert_eq!(lines.len(), 3, "{mini}");
    assert!(lines[0].starts_with("1  alpha    online  pid:"), "{mini}");
    assert!(lines[2].contains("↺:2"), "{mini}");
    assert!(!mini.contains('│'));
    assert_eq!(h.ok(&["ls", "--mini-list"]).lines().count(), 3);
    let err = h.fails(&["ls", "--sort", "colour"]);
    assert!(err.contains("invalid sort field"), "{err}");
}

#[test]
fn metrics_in_prometheus_text_format() {
    let h = Home::new("metrics");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh", "-n", "up"]);
    h.ok(&["start", "loop.sh", "-n", "down", "--namespace", "ns"]);
    online(&h, "up");
    h.ok(&["stop", "down"]);
    let out = h.ok(&["metrics"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut samples = std::collections::HashMap::new();
    for l in out.lines() {
        if let Some(rest) = l.strip_prefix("# ") {
            assert!(
                rest.starts_with("HELP ward_app_") || rest.starts_with("TYPE ward_app_"),
                "{l}"
            );
            continue;
        }
        let (series, value) = l.rsplit_once(' ').unwrap();
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {l}"));
        samples.insert(series.to_string(), v);
    }
    let get = |m: &str, id: u32, name: &str, ns: &str| -> f64 {
        let k = format!("{m}{{id=\"{id}\",name=\"{name}\",namespace=\"{ns}\"}}");
        *samples
            .get(&k)
            .unwrap_or_else(|| panic!("no {k} in:\n{out}"))
    };
    assert_eq!(get("ward_app_up", 0, "up", "default"), 1.0);
    assert_eq!(get("ward_app_up", 1, "down", "ns"), 0.0);
    assert!(get("ward_app_resident_memory_bytes", 0, "up", "default") > 100_000.0);
    assert_eq!(get("ward_app_resident_memory_bytes", 1, "down", "ns"), 0.0);
    assert_eq!(get("ward_app_restarts_total", 0, "up", "default"), 0.0);
    assert!(get("ward_app_cpu_seconds_total", 0, "up", "default") >= 0.0);
    let start = get("ward_app_start_time_seconds", 0, "up", "default");
    assert!((now - start).abs() < 120.0, "start {start} now {now}");
    for family in [
        "ward_app_up gauge",
        "ward_app_cpu_seconds_total counter",
        "ward_app_resident_memory_bytes gauge",
        "ward_app_restarts_total counter",
        "ward_app_start_time_seconds gauge",
    ] {
        assert!(out.contains(&format!("# TYPE {family}\n")), "{out}");
    }
}

/// ward counts the whole process group: a worker forked by the app counts too (pm2 counts
/// only the first pid). And an app whose process is gone shows 0, not stale figures.
#[test]
fn memory_of_a_process_tree_is_summed_and_gone_is_zero() {
    let h = Home::new("tree");
    h.script(
        "tree.py",
        "import os, time\n\
         if os.fork() == 0:\n    data = b'\\x01' * (50 << 20)\n    while True: time.sleep(1)\n\
         while True: time.sleep(1)\n",
    );
    h.ok(&["start", "tree.py", "--no-autorestart"]);
    online(&h, "tree");
    wait_until(secs(20), "the tree's memory reaches 50 MiB", || {
        h.app("tree")
            .and_then(|a| a["monit"]["memory"].as_u64())
            .is_some_and(|m| m >= 50 << 20)
    });
    let desc = h.ok(&["describe", "tree"]);
    let mem_line = desc
        .lines()
        .find(|l| l.contains("memory (process group)"))
        .unwrap();
    assert!(mem_line.contains("mb"), "{mem_line}");
    let metrics = h.ok(&["metrics"]);
    let line = metrics
        .lines()
        .find(|l| l.starts_with("ward_app_resident_memory_bytes{"))
        .unwrap();
    let v: f64 = line.rsplit_once(' ').unwrap().1.parse().unwrap();
    assert!(v >= (50 << 20) as f64, "{line}");
    // Kill the whole group behind ward's back: no restart, and no stale figures.
    let pid = h.pid("tree").unwrap();
    let _ = Command::new("kill")
        .args(["-9", "--", &format!("-{pid}")])
        .status();
    wait_until(secs(10), "tree no longer online", || {
        h.status("tree").as_deref() != Some("online")
    });
    let a = h.app("tree").unwrap();
    assert_eq!(a["monit"]["memory"], 0, "{a}");
    assert_eq!(a["monit"]["cpu"], 0.0, "{a}");
}

/// A tmux server of its own, killed when the test ends, even on panic.
struct Tmux {
    sock: std::path::PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .args(args)
            .env_remove("TMUX")
            .output()
            .expect("run tmux")
    }
    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p"]).stdout).into_owned()
    }
    fn keys(&self, keys: &[&str]) {
        let mut a = vec!["send-keys", "-t", "w"];
        a.extend_from_slice(keys);
        assert!(self.cmd(&a).status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

/// The dashboard in a real terminal: it shows the apps, the selection moves, `r` restarts
/// the selected app, `q` leaves the alternate screen and gives the shell back. tmux is
/// required (CI installs it): without it this test fails rather than passing unseen.
#[test]
fn monit_in_tmux() {
    let v = Command::new("tmux").arg("-V").output();
    assert!(
        v.is_ok_and(|o| o.status.success()),
        "tmux is required for this test (CI installs it)"
    );
    let h = Home::new("monit");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh", "-n", "alpha"]);
    h.ok(&["start", "loop.sh", "-n", "beta"]);
    online(&h, "beta");
    let t = Tmux {
        sock: h.dir.join("tmux.sock"),
    };
    let shell = "env PS1='ward-test$ ' bash --norc --noprofile";
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "w",
        "-x",
        "120",
        "-y",
        "30",
        shell,
    ]);
    assert!(out.status.success(), "{out:?}");
    wait_until(secs(10), "the shell prompt", || {
        t.screen().contains("ward-test$")
    });
    let line = format!(
        "cd '{}' && WARD_HOME='{}' '{}' monit",
        h.dir.display(),
        h.root.display(),
        BIN
    );
    t.keys(&[&line, "Enter"]);
    let row = |screen: &str, name: &str| -> Option<String> {
        screen
            .lines()
            .find(|l| l.contains(name) && l.contains("online"))
            .map(String::from)
    };
    wait_until(secs(10), "monit shows both apps, alpha selected", || {
        let s = t.screen();
        row(&s, "alpha").is_some_and(|r| r.starts_with(">alpha"))
            && row(&s, "beta").is_some_and(|r| r.starts_with(" beta"))
    });
    assert_eq!(
        String::from_utf8_lossy(
            &t.cmd(&["display", "-p", "-t", "w", "#{alternate_on}"])
                .stdout
        )
        .trim(),
        "1"
    );
    let s = t.screen();
    assert!(s.contains("ward monit"), "{s}");
    assert!(s.contains("─ out "), "{s}");
    t.keys(&["j"]);
    wait_until(secs(10), "the selection moves to beta", || {
        let s = t.screen();
        row(&s, "beta").is_some_and(|r| r.starts_with(">beta")) && s.contains("beta (id 1)")
    });
    std::fs::write(h.dir.join("screen.txt"), t.screen()).unwrap();
    t.keys(&["r"]);
    wait_until(secs(15), "beta restarted by r", || {
        h.app("beta")
            .is_some_and(|a| a["pm2_env"]["restart_time"] == 1)
    });
    assert_eq!(h.app("alpha").unwrap()["pm2_env"]["restart_time"], 0);
    // `s` stops it, and the status line says so in a whole word (it once read "stopp").
    t.keys(&["s"]);
    wait_until(secs(15), "the status line says beta stopped", || {
        t.screen().contains("stopped: [beta](1)")
    });
    assert_eq!(h.status("beta").as_deref(), Some("stopped"));
    t.keys(&["q"]);
    wait_until(secs(10), "monit quits and the shell is back", || {
        let s = t.screen();
        let alt = String::from_utf8_lossy(
            &t.cmd(&["display", "-p", "-t", "w", "#{alternate_on}"])
                .stdout,
        )
        .trim()
        .to_string();
        alt == "0"
            && !s.contains("ward monit ·")
            && s.lines().rfind(|l| !l.trim().is_empty()).map(str::trim_end) == Some("ward-test$")
    });
    // The terminal is back in cooked mode: the shell runs a command typed into it.
    t.keys(&["echo cooked-$((40+2))", "Enter"]);
    wait_until(secs(10), "the shell runs commands again", || {
        t.screen().contains("cooked-42")
    });
}

/// SIGTERM (and SIGINT, SIGHUP) while the dashboard runs: it leaves the alternate screen
/// and gives the terminal back in cooked mode, as `q` does.
#[test]
fn monit_restores_the_terminal_on_sigterm() {
    let v = Command::new("tmux").arg("-V").output();
    assert!(
        v.is_ok_and(|o| o.status.success()),
        "tmux is required for this test (CI installs it)"
    );
    let h = Home::new("monitterm");
    h.script("loop.sh", LOOP);
    h.ok(&["start", "loop.sh", "-n", "solo"]);
    online(&h, "solo");
    let t = Tmux {
        sock: h.dir.join("tmux.sock"),
    };
    let shell = "env PS1='ward-test$ ' bash --norc --noprofile";
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "w",
        "-x",
        "80",
        "-y",
        "24",
        shell,
    ]);
    assert!(out.status.success(), "{out:?}");
    wait_until(secs(10), "the shell prompt", || {
        t.screen().contains("ward-test$")
    });
    let line = format!("WARD_HOME='{}' '{}' monit", h.root.display(), BIN);
    t.keys(&[&line, "Enter"]);
    wait_until(secs(10), "monit shows solo", || {
        t.screen().contains(">solo")
    });
    // monit is the shell's only child.
    let shell_pid =
        String::from_utf8_lossy(&t.cmd(&["display", "-p", "-t", "w", "#{pane_pid}"]).stdout)
            .trim()
            .to_string();
    let children =
        std::fs::read_to_string(format!("/proc/{shell_pid}/task/{shell_pid}/children")).unwrap();
    let monit: Vec<&str> = children.split_whitespace().collect();
    assert_eq!(monit.len(), 1, "children of the shell: {children:?}");
    assert!(
        Command::new("kill")
            .args(["-TERM", monit[0]])
            .status()
            .unwrap()
            .success()
    );
    wait_until(secs(10), "the terminal is restored after SIGTERM", || {
        let alt = String::from_utf8_lossy(
            &t.cmd(&["display", "-p", "-t", "w", "#{alternate_on}"])
                .stdout,
        )
        .trim()
        .to_string();
        alt == "0" && !t.screen().contains(">solo")
    });
    t.keys(&["echo cooked-$((40+2))", "Enter"]);
    wait_until(secs(10), "the shell runs commands again", || {
        t.screen().contains("cooked-42")
    });
}
