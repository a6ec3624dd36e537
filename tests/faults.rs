//! Issue 20: faults that must not make ward lose control — spawning that fails in the
//! middle of a scale, clients that never read, partial messages, a damaged state.json,
//! the home removed under a running daemon.
mod util;
use std::time::{Duration, Instant};
use util::*;

/// Open descriptors of a process.
fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| d.count())
        .unwrap_or(0)
}

#[test]
fn scale_stops_at_the_first_spawn_failure_and_rolls_back() {
    let h = Home::new("faults-scale");
    h.ok(&["start", "sleep", "-n", "s", "--", "4301"]);
    h.wait_online("s");
    let daemon = h.daemon_pid().unwrap();
    // A few descriptors to spare: the first copies start, then pipes run out.
    let limit = fd_count(daemon) + 12;
    let ok = std::process::Command::new("prlimit")
        .arg(format!("--pid={daemon}"))
        .arg(format!("--nofile={limit}:{limit}"))
        .status()
        .unwrap()
        .success();
    assert!(ok, "prlimit");
    let t = Instant::now();
    let err = h.fails(&["scale", "s", "100000"]);
    assert!(
        t.elapsed() < secs(20),
        "scale took {:?} to fail",
        t.elapsed()
    );
    assert!(err.contains("unable to start s"), "{err}");
    assert!(err.contains("taken back"), "{err}");
    wait_until(secs(20), "the copies taken back", || {
        h.jlist().len() == 1
    });
    let apps = h.jlist();
    assert_eq!(apps[0]["pm2_env"]["status"], "online");
    assert_eq!(apps[0]["pm2_env"]["instances"], 1, "{:?}", apps[0]["pm2_env"]);
    // Nothing was left open: the daemon is back to what it had.
    wait_until(secs(20), "the daemon's fds back to normal", || {
        fd_count(daemon) < limit - 6
    });
    assert!(h.ok(&["ping"]).contains("pong"));
}
