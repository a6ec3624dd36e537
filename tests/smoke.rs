mod util;
use util::*;

#[test]
fn start_ls_stop_delete_kill() {
    let h = Home::new("smoke");
    h.script(
        "loop.sh",
        "#!/bin/sh\necho started\nwhile true; do sleep 1; done\n",
    );
    let out = h.ok(&["start", "loop.sh"]);
    assert!(out.contains("loop"), "{out}");
    wait_until(secs(5), "loop online", || {
        h.status("loop").as_deref() == Some("online")
    });
    wait_until(secs(5), "output captured", || {
        h.read_log("loop-out.log").contains("started")
    });
    let pid = h.pid("loop").unwrap();
    h.ok(&["stop", "loop"]);
    assert_eq!(h.status("loop").as_deref(), Some("stopped"));
    assert!(!alive(pid));
    h.ok(&["delete", "loop"]);
    assert!(h.app("loop").is_none());
    let daemon = h.daemon_pid().unwrap();
    h.ok(&["kill"]);
    assert!(!alive(daemon));
}
