//! A daemon out of file descriptors: `start` fails with a message that names the limit,
//! not a misleading `exec PROGRAM: Too many open files`.

mod util;
use util::*;

#[test]
fn out_of_fds_names_the_limit() {
    let h = Home::new("fdlimit");
    // The first start launches the daemon, which inherits this hard limit and cannot raise
    // it; each app keeps a few fds in the daemon, so a few dozen starts reach the limit.
    let mut failure = None;
    for i in 0..80 {
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!(
                "ulimit -n 64 && ulimit -Hn 64 && exec \"$0\" start sleep --name s{i} -- 1000"
            ))
            .arg(BIN)
            .env("WARD_HOME", &h.root)
            .current_dir(&h.dir)
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run sh");
        if !out.status.success() {
            failure = Some(String::from_utf8_lossy(&out.stderr).into_owned());
            break;
        }
    }
    let msg = failure.expect("64 fds should not hold 80 apps");
    assert!(msg.contains("out of file descriptors"), "{msg}");
    assert!(msg.contains("RLIMIT_NOFILE"), "{msg}");
    // The daemon is still there and answers.
    h.ok(&["ping"]);
}
