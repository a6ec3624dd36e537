//! Issue 18: what the speed-ups must not break. The figures themselves belong to
//! `make bench`; these check that each shortcut still gives the same result.
mod util;
use util::*;

fn holders(h: &Home) -> Vec<u32> {
    processes_of(h)
        .into_iter()
        .filter(|&p| cmdline(p).get(1).is_some_and(|a| a == "holder"))
        .collect()
}

/// The daemon starts its fd holder ahead (so that the holder's exec overlaps its own
/// start-up): the first request still finds exactly one holder, connected, and a daemon
/// killed right after a cold start is replaced by that holder with the app adopted.
#[test]
fn cold_start_prestarts_one_connected_holder() {
    let h = Home::new("coldholder");
    h.ok(&["ping"]);
    wait_until(secs(20), "one fd holder", || holders(&h).len() == 1);
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap_or_default();
    assert!(
        !log.contains("will not survive"),
        "the daemon did not reach its holder:\n{log}"
    );
    h.ok(&["start", "sleep", "--name", "nap", "--", "1000"]);
    let pid = h.wait_online("nap");
    let daemon = h.daemon_pid().expect("daemon pid");
    std::process::Command::new("kill")
        .args(["-9", &daemon.to_string()])
        .status()
        .unwrap();
    // The holder notices, starts a new daemon, and that one adopts the app.
    wait_until(secs(20), "a new daemon", || {
        h.daemon_pid().is_some_and(|d| d != daemon && alive(d))
    });
    wait_until(secs(20), "the app adopted, same pid", || {
        h.pid("nap") == Some(pid)
    });
    assert_eq!(holders(&h).len(), 1, "still one holder");
}

/// `jlist` is written by ward's own JSON writer in pm2's key order: what it prints must
/// parse back to exactly what serde_json reads, strings with quotes, backslashes, control
/// characters and non-ASCII included.
#[test]
fn jlist_escapes_every_string_as_json_does() {
    let h = Home::new("jlistesc");
    let tricky = "quote\" back\\ tab\t nl\n bell\u{7} del\u{7f} é 漢 🙂";
    let out = h
        .cmd(&["start", "sleep", "--name", "esc", "--", "1000"])
        .env("WARD_TRICKY", tricky)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", failed_text(&out));
    h.wait_online("esc");
    let text = h.ok(&["jlist"]);
    let v: serde_json::Value = serde_json::from_str(&text).expect("jlist is JSON");
    assert_eq!(v[0]["pm2_env"]["env"]["WARD_TRICKY"], tricky);
    assert_eq!(v[0]["pm2_env"]["WARD_TRICKY"], tricky);
    // Escaped as JSON.stringify does: \" \\ \t \n, \u0007 for other control characters,
    // everything else (DEL, non-ASCII) as it is.
    assert!(
        text.contains(r#""quote\" back\\ tab\t nl\n bell\u0007 del"#),
        "{text}"
    );
}

fn failed_text(out: &std::process::Output) -> String {
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
