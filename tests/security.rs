//! Issue 21: a root daemon that another local user cannot steer. Each attack is made as a
//! throw-away unprivileged user (`useradd`, then `setpriv`), so these tests need root; CI
//! runs as root. Without root they say so and skip.
mod util;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};
use util::*;

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// A local user that exists for one test. Its processes are killed (by pid) and the user
/// removed on drop, even when the test panics.
struct User {
    name: String,
    uid: u32,
    gid: u32,
}

static USERS: AtomicU32 = AtomicU32::new(0);

impl User {
    /// `None` (after saying why) when not root: only root can create a user.
    fn new() -> Option<User> {
        if !is_root() {
            eprintln!(
                "SKIPPED: this test creates a throw-away user with useradd and needs root \
                 (CI runs as root)"
            );
            return None;
        }
        let name = format!(
            "wardt{}x{}",
            std::process::id(),
            USERS.fetch_add(1, Ordering::SeqCst)
        );
        // Other tests may be adding users at the same moment: /etc/passwd is locked then.
        let start = Instant::now();
        loop {
            let out = Command::new("useradd")
                .args(["--no-create-home", "--user-group", "--shell", "/bin/sh"])
                .arg(&name)
                .output()
                .expect("run useradd");
            if out.status.success() {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "useradd {name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let id = |flag: &str| -> u32 {
            let out = Command::new("id").arg(flag).arg(&name).output().unwrap();
            String::from_utf8_lossy(&out.stdout).trim().parse().unwrap()
        };
        Some(User {
            uid: id("-u"),
            gid: id("-g"),
            name,
        })
    }

    /// `program` run as this user, with no supplementary groups.
    fn cmd(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = Command::new("setpriv");
        c.arg(format!("--reuid={}", self.uid))
            .arg(format!("--regid={}", self.gid))
            .arg("--clear-groups")
            .arg("--")
            .arg(program)
            .stdin(Stdio::null());
        c
    }

    /// `ward ARGS` as this user, for home `h`.
    fn ward(&self, h: &Home, args: &[&str]) -> Output {
        self.cmd(BIN)
            .args(args)
            .env("WARD_HOME", &h.root)
            .current_dir(&h.dir)
            .output()
            .expect("run ward as the test user")
    }

    fn ward_ok(&self, h: &Home, args: &[&str]) -> String {
        let out = self.ward(h, args);
        assert!(
            out.status.success(),
            "ward {args:?} as {} failed:\nstdout:\n{}\nstderr:\n{}",
            self.name,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn chown(&self, p: &Path) {
        std::os::unix::fs::chown(p, Some(self.uid), Some(self.gid)).unwrap();
    }

    fn pids(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for e in std::fs::read_dir("/proc").unwrap().flatten() {
            let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if std::fs::metadata(format!("/proc/{pid}")).is_ok_and(|m| m.uid() == self.uid) {
                out.push(pid);
            }
        }
        out
    }
}

impl Drop for User {
    fn drop(&mut self) {
        // Everything this user runs was started by this test: end it, pid by pid.
        for _ in 0..50 {
            let pids = self.pids();
            if pids.is_empty() {
                break;
            }
            for pid in pids {
                let _ = Command::new("kill")
                    .args(["-9", &pid.to_string()])
                    .stderr(Stdio::null())
                    .status();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        for _ in 0..100 {
            let ok = Command::new("userdel")
                .arg(&self.name)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .mode()
        & 0o7777
}

/// A file no ward may write: the victim of the symlink attacks.
fn victim(h: &Home) -> PathBuf {
    let v = h.root.parent().unwrap().join("victim");
    std::fs::write(&v, "precious\n").unwrap();
    v
}

// ---- 1. a home owned by someone else is refused -----------------------------------------

#[test]
fn issue21_home_of_another_user_is_refused_with_its_owner() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-owner");
    let v = victim(&h);
    // The user made the home and planted a symlink where root would write an app's log.
    std::fs::create_dir_all(h.root.join("logs")).unwrap();
    std::os::unix::fs::symlink(&v, h.root.join("logs/app-out.log")).unwrap();
    for p in [&h.root, &h.root.join("logs")] {
        u.chown(p);
    }
    std::os::unix::fs::lchown(h.root.join("logs/app-out.log"), Some(u.uid), Some(u.gid)).unwrap();
    h.script("app.sh", "#!/bin/sh\necho pwned\nexec sleep 1000\n");
    for args in [
        &["start", "app.sh"][..],
        &["ls"],
        &["flush"],
        &["resurrect"],
        &["kill"],
    ] {
        let e = h.fails(args);
        assert!(
            e.contains(&h.root.display().to_string()) && e.contains(&u.name),
            "ward {args:?} must name the home and its owner {}:\n{e}",
            u.name
        );
    }
    assert!(h.daemon_pid().is_none(), "no daemon may start in that home");
    assert_eq!(std::fs::read_to_string(&v).unwrap(), "precious\n");
}

#[test]
fn issue21_home_inside_another_users_folder_is_refused() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-parent");
    // root's home inside a folder the user owns: they could swap it for their own.
    let theirs = h.root.parent().unwrap().join("app-user");
    std::fs::create_dir_all(&theirs).unwrap();
    u.chown(&theirs);
    let home = theirs.join(".ward");
    let out = h.run_env(&["ls"], &[("WARD_HOME", home.to_str().unwrap())]);
    let e = failed(&out);
    assert!(
        e.contains(&theirs.display().to_string()) && e.contains(&u.name),
        "must name {} and its owner:\n{e}",
        theirs.display()
    );
    assert!(!home.join("ward.pid").exists());
}

#[test]
fn issue21_planted_dump_and_state_are_refused() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-files");
    h.ok(&["ls"]);
    h.ok(&["kill"]);
    let marker = h.root.parent().unwrap().join("ran-as-root");
    // A dump whose owner is the user: root's resurrect must not run its command.
    let dump = format!(
        r#"[{{"name":"evil","script":"/bin/sh","args":["-c","touch {}; sleep 1000"],"cwd":"/","status":"online"}}]"#,
        marker.display()
    );
    for file in ["dump.json", "state.json"] {
        let p = h.root.join(file);
        std::fs::write(&p, &dump).unwrap();
        u.chown(&p);
        let e = h.fails(&["resurrect"]);
        assert!(
            e.contains(&p.display().to_string()) && e.contains(&u.name),
            "must name {} and its owner:\n{e}",
            p.display()
        );
        assert!(
            h.daemon_pid().is_none(),
            "no daemon may start with {file} planted"
        );
        std::fs::remove_file(&p).unwrap();
    }
    assert!(!marker.exists(), "the planted command ran");
    // pm2's home found through the environment (sudo keeping HOME) is held to the same rule.
    let pm2_home = h.root.parent().unwrap().join("their-pm2");
    std::fs::create_dir_all(&pm2_home).unwrap();
    let pm2_dump = pm2_home.join("dump.pm2");
    std::fs::write(&pm2_dump, "[]").unwrap();
    for p in [&pm2_home, &pm2_dump] {
        u.chown(p);
    }
    let out = h.run_env(
        &["import-pm2", "--start"],
        &[("PM2_HOME", pm2_home.to_str().unwrap())],
    );
    let e = failed(&out);
    assert!(e.contains(&u.name), "must name the owner {}:\n{e}", u.name);
    // Named on the command line, the same file is the user's choice.
    h.ok(&["import-pm2", pm2_dump.to_str().unwrap()]);
}

#[test]
fn issue21_symlinks_in_the_home_are_not_followed() {
    // root's own home, a symlink in it (made by root: the user's choice is -o, not this).
    let h = Home::new("sec-nofollow");
    let v = victim(&h);
    h.ok(&["ls"]);
    h.ok(&["kill"]);
    std::os::unix::fs::symlink(&v, h.root.join("logs/app-out.log")).unwrap();
    std::os::unix::fs::symlink(&v, h.root.join("dump.json")).unwrap();
    h.script("app.sh", "#!/bin/sh\necho pwned\nexec sleep 1000\n");
    h.ok(&["start", "app.sh"]);
    wait_until(secs(10), "a note about the link in ward.log", || {
        h.read_log("../ward.log").contains("symbolic link")
    });
    h.ok(&["flush"]);
    let e = h.fails(&["resurrect"]);
    assert!(e.contains("symbolic link"), "{e}");
    assert_eq!(std::fs::read_to_string(&v).unwrap(), "precious\n");
    // The user's own -o path is theirs to choose, link or not.
    let mine = h.dir.join("mine.log");
    std::os::unix::fs::symlink(h.dir.join("real.log"), &mine).unwrap();
    h.script("b.sh", "#!/bin/sh\necho hello\nexec sleep 1000\n");
    h.ok(&["start", "b.sh", "-o", mine.to_str().unwrap()]);
    wait_until(secs(10), "output through the user's link", || {
        std::fs::read_to_string(h.dir.join("real.log")).is_ok_and(|s| s.contains("hello"))
    });
}

#[test]
fn issue21_a_user_runs_ward_in_their_own_home() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-user");
    std::fs::create_dir_all(&h.root).unwrap();
    u.chown(&h.root);
    h.script(
        "app.sh",
        "#!/bin/sh\necho hi from $(id -un)\nexec sleep 1000\n",
    );
    u.ward_ok(&h, &["start", "app.sh"]);
    let ls = u.ward_ok(&h, &["jlist"]);
    assert!(
        ls.contains("\"online\"") || ls.contains("\"launching\""),
        "{ls}"
    );
    wait_until(secs(10), "the app's output", || {
        h.read_log("app-out.log")
            .contains(&format!("hi from {}", u.name))
    });
    u.ward_ok(&h, &["save"]);
    assert_eq!(mode(&h.root.join("dump.json")), 0o600);
    assert_eq!(h.root.join("dump.json").metadata().unwrap().uid(), u.uid);
    // root does not use the user's home (sudo keeping HOME).
    let e = h.fails(&["ls"]);
    assert!(e.contains(&u.name), "{e}");
    u.ward_ok(&h, &["kill"]);
}

// ---- 2. never signal what is not an app --------------------------------------------------

/// Field 22 of /proc/PID/stat: when the process started.
fn start_time(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after = stat.rsplit_once(')').unwrap().1;
    after.split_whitespace().nth(19).unwrap().parse().unwrap()
}

/// A home of `u` whose state.json (left as a crash would leave it, no daemon running) names
/// `pid` with start time `start` for its one app, `app`.
fn plant_state(u: &User, h: &Home, pid: u32, start: u64) {
    std::fs::create_dir_all(&h.root).unwrap();
    u.chown(&h.root);
    h.script("app.sh", "#!/bin/sh\nexec sleep 1000\n");
    u.ward_ok(h, &["start", "app.sh"]);
    h.wait_online_as(u, "app");
    let state_path = h.root.join("state.json");
    let mut state: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state_path).unwrap()).unwrap();
    u.ward_ok(h, &["kill"]);
    state["apps"][0]["run"]["pid"] = pid.into();
    state["apps"][0]["run"]["pid_start"] = start.into();
    std::fs::write(&state_path, serde_json::to_vec(&state).unwrap()).unwrap();
    u.chown(&state_path);
    std::fs::set_permissions(&state_path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn issue21_state_naming_pid_1_is_never_adopted() {
    // As the user: were the guard broken, their signals could not reach pid 1 anyway.
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-pid1");
    plant_state(&u, &h, 1, start_time(1));
    u.ward_ok(&h, &["ls"]);
    let log = h.read_log("../ward.log");
    assert!(log.contains("names pid 1, which is never an app"), "{log}");
    assert!(!log.contains("pid 1\n"), "adopted pid 1:\n{log}");
    let apps: serde_json::Value = serde_json::from_str(&u.ward_ok(&h, &["jlist"])).unwrap();
    assert_ne!(apps[0]["pid"], 1, "{apps}");
    u.ward_ok(&h, &["delete", "app"]);
    u.ward_ok(&h, &["kill"]);
}

#[test]
fn issue21_an_adopted_process_that_leads_no_group_is_signalled_alone() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-group");
    // A group led by a shell, with two sleeps in it; state.json names the first sleep.
    let mut group = u
        .cmd("setsid")
        .args([
            "sh",
            "-c",
            "sleep 1001 & echo $!; sleep 1002 & echo $!; wait",
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pids = String::new();
    {
        use std::io::BufRead;
        let mut r = std::io::BufReader::new(group.stdout.take().unwrap());
        for _ in 0..2 {
            r.read_line(&mut pids).unwrap();
        }
    }
    let pids: Vec<u32> = pids.lines().map(|l| l.trim().parse().unwrap()).collect();
    let (named, sibling) = (pids[0], pids[1]);
    plant_state(&u, &h, named, start_time(named));
    u.ward_ok(&h, &["ls"]);
    let log = h.read_log("../ward.log");
    assert!(log.contains(&format!("pid {named}")), "adopted:\n{log}");
    // Not waited for: were the signals lost on a group that does not exist, the stop would
    // hang; the deadline below fails the test instead.
    let mut stop = u
        .cmd(BIN)
        .args(["stop", "app"])
        .env("WARD_HOME", &h.root)
        .current_dir(&h.dir)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let gone = Instant::now() + secs(20);
    while alive(named) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = stop.kill();
    let _ = stop.wait();
    assert!(!alive(named), "the adopted process was never signalled");
    assert!(alive(sibling), "its group was signalled:\n{log}");
    u.ward_ok(&h, &["kill"]);
    let _ = group.kill();
    let _ = group.wait();
}

// ---- 3. replies cannot be forged ---------------------------------------------------------

/// Sends a forged `{"reply":"error","message":"FORGED"}` (request id 0, which the client
/// used to accept from anyone) to the ward client sockets of the children of process
/// `argv[2]` (this test: other ward clients on the machine are left alone), until `argv[1]`
/// exists. Prints how many it sent.
const FORGER: &str = r#"
import os, socket, struct, sys
stop, parent = sys.argv[1], sys.argv[2]
frame = struct.pack('<QII', 0, 0, 1) + b'{"reply":"error","message":"FORGED"}'
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
def ours(name):
    try:
        pid = name.split('-')[2]
        with open('/proc/%s/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[1] == parent
    except (OSError, IndexError):
        return False
n = 0
while not os.path.exists(stop):
    with open('/proc/net/unix') as f:
        names = [l.split()[-1] for l in f if '@ward-client-' in l]
    for name in names:
        if not ours(name[1:]):
            continue
        try:
            s.sendto(frame, b'\0' + name[1:].encode())
            n += 1
        except OSError:
            pass
print(n)
"#;

#[test]
fn issue21_replies_from_another_user_are_ignored() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-forge");
    h.script("web.sh", "#!/bin/sh\nexec sleep 1000\n");
    h.ok(&["start", "web.sh", "--name", "web"]);
    let pid = h.wait_online("web");
    let script = h.dir.join("forger.py");
    std::fs::write(&script, FORGER).unwrap();
    std::fs::set_permissions(&h.dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let stop = h.root.parent().unwrap().join("stop-forging");
    // The system's python: the user may not reach a python under root's home.
    let python = ["/usr/bin/python3", "/usr/local/bin/python3"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("python3 in /usr/bin (installed by .ci/run)");
    let forger = u
        .cmd(python)
        .arg(&script)
        .arg(&stop)
        .arg(std::process::id().to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 (installed by .ci/run)");
    let mut bad = Vec::new();
    for _ in 0..200 {
        let out = h.run(&["pid", "web"]);
        let got = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if !out.status.success() || got != pid.to_string() {
            bad.push(format!("{got:?} {}", stderr(&out).trim()));
        }
    }
    std::fs::write(&stop, "").unwrap();
    let sent = forger.wait_with_output().unwrap();
    let sent = String::from_utf8_lossy(&sent.stdout).trim().to_string();
    assert!(
        bad.is_empty(),
        "forged replies were believed ({sent} sent): {bad:?}"
    );
    eprintln!("{sent} forged datagrams sent, none believed");
}

// ---- 4. secrets stay private -------------------------------------------------------------

#[test]
fn issue21_modes_are_made_private_at_start() {
    let h = Home::new("sec-modes");
    // A home as pm2 (or an older ward) left it: 0755 folders, 0644 files.
    std::fs::create_dir_all(h.root.join("logs")).unwrap();
    let old_log = h.root.join("logs/old-out.log");
    let dump = h.root.join("dump.json");
    std::fs::write(&old_log, "x\n").unwrap();
    std::fs::write(&dump, "[]").unwrap();
    for (p, m) in [
        (&h.root, 0o755),
        (&h.root.join("logs"), 0o755),
        (&old_log, 0o644),
        (&dump, 0o644),
    ] {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }
    h.ok(&["ls"]);
    assert_eq!(mode(&h.root), 0o700);
    assert_eq!(mode(&h.root.join("logs")), 0o700);
    assert_eq!(mode(&old_log), 0o600);
    assert_eq!(mode(&dump), 0o600);
    let log = h.read_log("../ward.log");
    assert!(
        log.contains("private") && log.contains("was 0644"),
        "said so:\n{log}"
    );
    h.script("app.sh", "#!/bin/sh\necho secret\nexec sleep 1000\n");
    h.ok(&["start", "app.sh"]);
    h.wait_online("app");
    h.ok(&["save"]);
    for f in [
        "state.json",
        "dump.json",
        "dump.json.bak",
        "ward.log",
        "ward.pid",
        "logs/app-out.log",
        "logs/app-error.log",
    ] {
        assert_eq!(mode(&h.root.join(f)), 0o600, "{f}");
    }
    let pids: Vec<_> = std::fs::read_dir(h.root.join("pids"))
        .unwrap()
        .flatten()
        .collect();
    assert!(!pids.is_empty());
    for p in pids {
        assert_eq!(mode(&p.path()), 0o600, "{}", p.path().display());
    }
    assert_eq!(mode(&h.root.join("pids")), 0o700);
}

// ---- 5. names are safe -------------------------------------------------------------------

#[test]
fn issue21_names_with_control_characters_are_refused() {
    let h = Home::new("sec-names");
    h.script("app.sh", "#!/bin/sh\nexec sleep 1000\n");
    for name in ["a\nb", "red\x1b[31m", "tab\tbed", "del\x7f"] {
        let e = h.fails(&["start", "app.sh", "--name", name]);
        assert!(e.contains("control character"), "{name:?}: {e}");
    }
    assert!(h.jlist().is_empty());
    let log = h.read_log("../ward.log");
    assert!(!log.contains('\x1b'), "{log}");
}

#[test]
fn issue21_names_sharing_a_log_file_are_refused() {
    let h = Home::new("sec-stems");
    h.script("app.sh", "#!/bin/sh\necho $1\nexec sleep 1000\n");
    for (first, second) in [("api v2", "api-v2"), ("服务", "应用")] {
        h.ok(&["start", "app.sh", "--name", first, "--", first]);
        let e = h.fails(&["start", "app.sh", "--name", second, "--", second]);
        assert!(e.contains(first) && e.contains("log files"), "{e}");
        assert!(h.app(second).is_none(), "{second} was registered");
        // The same name again is another copy, not a clash.
        h.ok(&["start", "app.sh", "--name", first, "-f", "--", first]);
    }
    // Within one ecosystem file too, and nothing of it is applied.
    let eco = h.dir.join("ecosystem.config.json");
    std::fs::write(
        &eco,
        r#"{"apps":[{"name":"a-b","script":"app.sh"},{"name":"a b","script":"app.sh"}]}"#,
    )
    .unwrap();
    let e = h.fails(&["start", eco.to_str().unwrap()]);
    assert!(e.contains("log files"), "{e}");
    assert!(h.app("a-b").is_none() && h.app("a b").is_none());
}

// ---- 6. update executes only ward --------------------------------------------------------

#[test]
fn issue21_update_refuses_a_binary_others_may_write() {
    let Some(u) = User::new() else { return };
    let h = Home::new("sec-update");
    h.ok(&["ls"]);
    let daemon = h.daemon_pid().unwrap();
    let copy = h.root.parent().unwrap().join("ward-copy");
    std::fs::copy(BIN, &copy).unwrap();
    let run_copy = || {
        output_when_not_busy(
            Command::new(&copy)
                .arg("update")
                .env("WARD_HOME", &h.root)
                .stdin(Stdio::null()),
        )
    };
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o777)).unwrap();
    let e = failed(&run_copy());
    assert!(e.contains("other users may write it"), "{e}");
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
    u.chown(&copy);
    let e = failed(&run_copy());
    assert!(e.contains(&u.name) && e.contains("belongs to"), "{e}");
    assert_eq!(h.daemon_pid(), Some(daemon));
    h.ok(&["ls"]);
    // root's own, private copy is fine.
    std::os::unix::fs::chown(&copy, Some(0), Some(0)).unwrap();
    let out = run_copy();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(h.daemon_pid(), Some(daemon));
}

impl HomeAs for Home {
    fn wait_online_as(&self, u: &User, name: &str) -> u32 {
        let mut pid = 0;
        wait_until(secs(15), &format!("{name} online"), || {
            let out = u.ward(self, &["jlist"]);
            let v: serde_json::Value =
                serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
            let app = v
                .as_array()
                .and_then(|a| a.iter().find(|x| x["name"] == name).cloned());
            match app {
                Some(a) if a["pm2_env"]["status"] == "online" => {
                    pid = a["pid"].as_u64().unwrap_or(0) as u32;
                    pid != 0
                }
                _ => false,
            }
        });
        pid
    }
}

trait HomeAs {
    fn wait_online_as(&self, u: &User, name: &str) -> u32;
}
