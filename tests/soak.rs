//! Soak (issue 20): random start / stop / restart / delete / scale / crash traffic on many
//! apps, against a model of what was asked. After every step the table matches the model
//! and every app runs exactly once per instance; at the end the daemon's descriptors are
//! back where they started and its RSS did not grow from the first half to the second.
//!
//! `make test` runs the short version (60 s, 20 apps). `make soak` runs the long one:
//! `WARD_SOAK_SECS` (default 1800) and `WARD_SOAK_APPS` (default 200); `WARD_SOAK_SEED`
//! replays a run (the seed is printed at the start).
mod util;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use util::*;

/// What the soak asked for, per app name.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Want {
    instances: usize,
    running: bool,
}

fn env_num(k: &str, default: u64) -> u64 {
    std::env::var(k)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The argument that marks app `i`'s processes: `sleep 8NNNNN`.
fn marker(i: usize) -> String {
    format!("{}", 800_000 + i)
}

/// Live `sleep` processes of this home by marker.
fn sleepers(h: &Home) -> BTreeMap<String, Vec<u32>> {
    let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
    for pid in processes_of(h) {
        let argv = cmdline(pid);
        if argv.len() == 2 && argv[0].ends_with("sleep") {
            out.entry(argv[1].clone()).or_default().push(pid);
        }
    }
    out
}

fn daemon_figures(pid: u32) -> (u64, usize) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0);
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0);
    (rss, fds)
}

/// Does the table (and the process list) say what the model says?
fn check(h: &Home, model: &BTreeMap<usize, Want>) -> Result<(), String> {
    let list = h.jlist();
    let procs = sleepers(h);
    let mut seen_pids = std::collections::HashSet::new();
    for (&i, want) in model {
        let name = format!("s{i}");
        let mine: Vec<&serde_json::Value> = list.iter().filter(|a| a["name"] == name).collect();
        if mine.len() != want.instances {
            return Err(format!(
                "{name}: {} entries, want {}",
                mine.len(),
                want.instances
            ));
        }
        let status = if want.running { "online" } else { "stopped" };
        for a in &mine {
            if a["pm2_env"]["status"] != status {
                return Err(format!(
                    "{name}: {} is {}, want {status}",
                    a["pm_id"], a["pm2_env"]["status"]
                ));
            }
            let pid = a["pid"].as_u64().unwrap_or(0) as u32;
            if want.running && (pid == 0 || !seen_pids.insert(pid)) {
                return Err(format!("{name}: pid {pid} missing or shared"));
            }
        }
        let live = procs.get(&marker(i)).map_or(0, Vec::len);
        let expected = if want.running { want.instances } else { 0 };
        if live != expected {
            return Err(format!(
                "{name}: {live} processes run, want {expected} (each app exactly once)"
            ));
        }
    }
    let extra = list.len() - model.values().map(|w| w.instances).sum::<usize>();
    if extra != 0 {
        return Err(format!(
            "{extra} apps in the table that were never asked for"
        ));
    }
    Ok(())
}

fn soak(seconds: u64, apps: usize) {
    let seed = env_num(
        "WARD_SOAK_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1,
    );
    eprintln!("soak: {seconds} s, {apps} apps, WARD_SOAK_SEED={seed}");
    let mut rng = Rng(seed);
    let h = Home::new("soak");
    // Warm up (fork server, holder, log folder), then the baseline with no apps.
    h.ok(&["start", "sleep", "-n", "warm", "--", "799999"]);
    h.ok(&["delete", "warm"]);
    let daemon = h.daemon_pid().expect("daemon pid");
    h.ok(&["ping"]);
    let (_, fds_before) = daemon_figures(daemon);
    let mut model: BTreeMap<usize, Want> = BTreeMap::new();
    let start = Instant::now();
    let half = Duration::from_secs(seconds / 2);
    let (mut rss_first, mut rss_second) = (0u64, 0u64);
    let mut steps = 0u64;
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    while start.elapsed() < Duration::from_secs(seconds) {
        let i = rng.below(apps as u64) as usize;
        let name = format!("s{i}");
        let op = match model.get(&i).copied() {
            None => {
                let n = 1 + rng.below(2) as usize;
                h.ok(&[
                    "start",
                    "sleep",
                    "-n",
                    &name,
                    "-i",
                    &n.to_string(),
                    "--min-uptime",
                    "0",
                    "--",
                    &marker(i),
                ]);
                model.insert(
                    i,
                    Want {
                        instances: n,
                        running: true,
                    },
                );
                "start"
            }
            Some(w) => match rng.below(6) {
                0 => {
                    h.ok(&["stop", &name]);
                    model.insert(
                        i,
                        Want {
                            running: false,
                            ..w
                        },
                    );
                    "stop"
                }
                1 => {
                    h.ok(&["restart", &name]);
                    model.insert(i, Want { running: true, ..w });
                    "restart"
                }
                2 => {
                    h.ok(&["delete", &name]);
                    model.remove(&i);
                    "delete"
                }
                3 if w.running => {
                    let n = 1 + rng.below(3) as usize;
                    h.ok(&["scale", &name, &n.to_string()]);
                    model.insert(i, Want { instances: n, ..w });
                    "scale"
                }
                4 if w.running => {
                    // A crash: the app dies by SIGKILL and must come back once.
                    let pids = sleepers(&h).remove(&marker(i)).unwrap_or_default();
                    if let Some(&p) = pids.get(rng.below(pids.len().max(1) as u64) as usize) {
                        let _ = std::process::Command::new("kill")
                            .args(["-9", &p.to_string()])
                            .status();
                    }
                    "crash"
                }
                _ => {
                    h.ok(&["start", &name]);
                    model.insert(i, Want { running: true, ..w });
                    "start again"
                }
            },
        };
        *counts.entry(op).or_default() += 1;
        steps += 1;
        let mut last = String::new();
        let settled = {
            let until = Instant::now() + secs(20);
            loop {
                match check(&h, &model) {
                    Ok(()) => break true,
                    Err(e) => last = e,
                }
                if Instant::now() > until {
                    break false;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        };
        assert!(
            settled,
            "step {steps} ({op} {name}): {last} (WARD_SOAK_SEED={seed})"
        );
        assert_eq!(
            h.daemon_pid(),
            Some(daemon),
            "the daemon was replaced at step {steps}"
        );
        let (rss, _) = daemon_figures(daemon);
        if start.elapsed() < half {
            rss_first = rss_first.max(rss);
        } else {
            rss_second = rss_second.max(rss);
        }
    }
    h.ok(&["delete", "all"]);
    wait_until(secs(20), "no app left", || sleepers(&h).is_empty());
    // The last exits' pipes close as the daemon reads their end.
    wait_until(
        secs(10),
        "the daemon's descriptors back to where they were",
        || {
            h.ok(&["ping"]);
            daemon_figures(daemon).1 <= fds_before
        },
    );
    let (rss_end, fds_after) = daemon_figures(daemon);
    eprintln!(
        "soak: {steps} steps in {:?} ({counts:?}); daemon RSS peak {rss_first} kB in the first \
         half, {rss_second} kB in the second, {rss_end} kB at the end; fds {fds_before} → \
         {fds_after}",
        start.elapsed()
    );
    assert!(steps > 0);
    // Flat: no growth from the first half to the second (a margin for allocator noise).
    assert!(
        rss_second <= rss_first + rss_first / 4 + 1024,
        "daemon RSS grew: {rss_first} kB → {rss_second} kB"
    );
}

#[test]
fn soak_random_traffic() {
    // `make soak` sets these; `make test` runs a minute on 20 apps.
    soak(
        env_num("WARD_SOAK_SECS", 60),
        env_num("WARD_SOAK_APPS", 20) as usize,
    );
}
