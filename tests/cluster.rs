//! Issue 15: Node's IPC channel, cluster mode (ward as the primary), readiness (Node's
//! 'ready' and sd_notify's READY=1), zero-downtime reload, shutdown_with_message.
//! Driven with the machine's node and python3 (.ci/run installs them).
mod util;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use util::*;

/// An HTTP server that answers its pid; it stops gracefully on SIGINT (as an app that
/// wants zero-downtime reloads under pm2 does): no new connections, the current ones end.
const SERVER_JS: &str = r#"
const http = require('http');
const cluster = require('cluster');
const server = http.createServer((req, res) => {
  res.setHeader('Connection', 'close');
  res.end(`${process.pid} ${cluster.isWorker} ${cluster.worker ? cluster.worker.id : 0} ${process.env.NODE_APP_INSTANCE}\n`);
});
server.listen(+process.env.PORT, '127.0.0.1');
process.on('SIGINT', () => server.close(() => process.exit(0)));
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One GET on 127.0.0.1:port; the body.
fn get(port: u16) -> Result<String, String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(secs(20))).unwrap();
    s.write_all(b"GET / HTTP/1.0\r\nHost: x\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut out = String::new();
    s.read_to_string(&mut out)
        .map_err(|e| format!("read: {e}"))?;
    match out.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.1 200") => Ok(body.to_string()),
        _ => Err(format!("bad answer: {out:?}")),
    }
}

/// Waits until the file at `path` contains `needle`.
fn wait_file(path: &std::path::Path, needle: &str) {
    wait_until(
        secs(20),
        &format!("{needle:?} in {}", path.display()),
        || std::fs::read_to_string(path).is_ok_and(|t| t.contains(needle)),
    );
}

/// pid → cluster.worker.id of the two copies answering on `port`.
fn worker_ids(port: u16) -> std::collections::BTreeMap<u32, String> {
    let mut ids = std::collections::BTreeMap::new();
    wait_until(secs(20), "both workers' ids", || {
        if let Ok(b) = get(port) {
            let f: Vec<&str> = b.split_whitespace().collect();
            ids.insert(pid_of(&b), f[2].to_string());
        }
        ids.len() == 2
    });
    ids
}

fn kill9(pid: u32) {
    std::process::Command::new("kill")
        .args(["-9", &pid.to_string()])
        .status()
        .unwrap();
}

fn pid_of(body: &str) -> u32 {
    body.split_whitespace().next().unwrap().parse().unwrap()
}

/// Asks until `n` distinct pids answered; returns them.
fn distinct_pids(port: u16, n: usize) -> BTreeSet<u32> {
    let mut seen = BTreeSet::new();
    wait_until(
        secs(20),
        &format!("{n} distinct pids on port {port}"),
        || {
            if let Ok(b) = get(port) {
                seen.insert(pid_of(&b));
            }
            seen.len() >= n
        },
    );
    seen
}

fn pids_of(h: &Home, name: &str) -> BTreeSet<u32> {
    h.jlist()
        .iter()
        .filter(|a| a["name"] == name)
        .filter_map(|a| a["pid"].as_u64().map(|p| p as u32))
        .collect()
}

fn all_online(h: &Home, name: &str, n: usize) -> bool {
    let apps: Vec<_> = h
        .jlist()
        .into_iter()
        .filter(|a| a["name"] == name)
        .collect();
    apps.len() == n
        && apps
            .iter()
            .all(|a| a["pm2_env"]["status"] == "online" && a["pid"].as_u64().unwrap_or(0) > 0)
}

fn start_cluster(h: &Home, port: u16, n: &str) {
    h.script("server.js", SERVER_JS);
    let out = h.run_env(
        &["start", "server.js", "-i", n],
        &[("PORT", &port.to_string())],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn four_copies_share_one_port_and_survive_kill_9() {
    let h = Home::new("cluster-four");
    let port = free_port();
    start_cluster(&h, port, "4");
    wait_until(secs(20), "4 online", || all_online(&h, "server", 4));
    let app = h.must("server");
    assert_eq!(app["pm2_env"]["exec_mode"], "cluster_mode");
    let ls = h.ok(&["ls"]);
    assert!(ls.contains("│ cluster │"), "{ls}");
    let seen = distinct_pids(port, 4);
    assert_eq!(
        seen,
        pids_of(&h, "server"),
        "the copies answer, no one else"
    );
    // Each copy is a Node cluster worker with its own id and instance.
    let mut instances = BTreeSet::new();
    wait_until(secs(20), "4 instances answer", || {
        if let Ok(b) = get(port) {
            let f: Vec<&str> = b.split_whitespace().collect();
            assert_eq!(f[1], "true", "cluster.isWorker: {b}");
            assert_ne!(f[2], "0", "cluster.worker.id: {b}");
            instances.insert(f[3].to_string());
        }
        instances.len() == 4
    });

    // kill -9 of one copy: the port keeps answering, the copy comes back.
    let victim = *seen.iter().next().unwrap();
    kill9(victim);
    wait_until(secs(10), "the victim is gone", || !alive(victim));
    for i in 0..200 {
        let b = get(port).unwrap_or_else(|e| panic!("request {i} after kill -9: {e}"));
        assert_ne!(pid_of(&b), victim);
    }
    wait_until(secs(20), "4 online again", || {
        all_online(&h, "server", 4) && !pids_of(&h, "server").contains(&victim)
    });
    distinct_pids(port, 4);
}

#[test]
fn reload_under_load_refuses_nothing() {
    let h = Home::new("cluster-reload");
    let port = free_port();
    start_cluster(&h, port, "4");
    wait_until(secs(20), "4 online", || all_online(&h, "server", 4));
    let before = pids_of(&h, "server");
    let ids_before: Vec<u64> = h
        .jlist()
        .iter()
        .map(|a| a["pm_id"].as_u64().unwrap())
        .collect();
    distinct_pids(port, 4);

    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    // A bounded client loop: at least 2,000 requests, and on until the reload is over.
    let client = std::thread::spawn(move || {
        let (mut ok, mut failed) = (0u32, Vec::new());
        let start = Instant::now();
        while (ok as usize + failed.len() < 2000 || !flag.load(Ordering::SeqCst))
            && ok < 100_000
            && start.elapsed() < Duration::from_secs(120)
        {
            match get(port) {
                Ok(_) => ok += 1,
                Err(e) => failed.push(e),
            }
        }
        (ok, failed)
    });
    // Let the client get going, then reload under it.
    std::thread::sleep(Duration::from_millis(200));
    let out = h.run(&["reload", "server"]);
    // As pm2's, the reply waits for the replaced copies to be gone: no old code serves
    // once `reload` has returned (an old copy once answered a request after it).
    let lingering: Vec<u32> = before.iter().copied().filter(|&p| alive(p)).collect();
    done.store(true, Ordering::SeqCst);
    let (ok, failed) = client.join().unwrap();
    assert!(
        out.status.success(),
        "reload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        failed.is_empty(),
        "{} of {} requests failed: {:?}",
        failed.len(),
        ok as usize + failed.len(),
        &failed[..failed.len().min(5)]
    );
    assert!(ok >= 2000, "only {ok} requests");
    assert!(
        lingering.is_empty(),
        "replaced copies still ran: {lingering:?}"
    );
    let after = pids_of(&h, "server");
    assert_eq!(after.len(), 4);
    assert!(
        after.is_disjoint(&before),
        "new pids {after:?} vs old {before:?}"
    );
    let ids_after: Vec<u64> = h
        .jlist()
        .iter()
        .map(|a| a["pm_id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids_after, ids_before, "a copy keeps its id across a reload");
    assert!(all_online(&h, "server", 4));
    assert_eq!(distinct_pids(port, 4), after);
    // gracefulReload is the same command.
    h.ok(&["gracefulReload", "server"]);
    assert!(
        after.iter().all(|&p| !alive(p)),
        "{after:?} outlived gracefulReload"
    );
    assert!(pids_of(&h, "server").is_disjoint(&after));
}

#[test]
fn a_new_copy_that_crashes_before_listening_stops_the_reload() {
    let h = Home::new("cluster-abort");
    let port = free_port();
    start_cluster(&h, port, "2");
    wait_until(secs(20), "2 online", || all_online(&h, "server", 2));
    let before = pids_of(&h, "server");
    // Both have read their code and listen.
    assert_eq!(distinct_pids(port, 2), before);
    // The next version of the code crashes before it listens.
    h.script("server.js", "console.error('boom'); process.exit(3);\n");
    let err = failed(&h.run(&["reload", "server"]));
    assert!(err.contains("reload of server stopped"), "{err}");
    assert!(err.contains("exited with code 3"), "{err}");
    assert!(err.contains("the old copies still serve"), "{err}");
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert_eq!(pids_of(&h, "server"), before, "{log}");
    assert!(all_online(&h, "server", 2));
    for _ in 0..20 {
        get(port).expect("the old copies serve");
    }
    // A worker that crashes before listening, started fresh: it is restarted, then errored.
    let h2 = Home::new("cluster-crash");
    h2.script("crash.js", "process.exit(1);\n");
    h2.ok(&["start", "crash.js", "-i", "2", "--max-restarts", "2"]);
    wait_until(secs(20), "both errored", || {
        let j = h2.jlist();
        j.len() == 2 && j.iter().all(|a| a["pm2_env"]["status"] == "errored")
    });
}

/// Starts `script` with --wait-ready in the background (`start` waits until it is
/// ready) and waits until the app `mute` is launching with a pid.
fn start_launching(h: &Home, script: &str, timeout: &str) -> std::process::Child {
    let start = h
        .cmd(&["start", script, "--wait-ready", "--listen-timeout", timeout])
        .spawn()
        .unwrap();
    wait_until(secs(10), "launching with a pid", || {
        h.app("mute").is_some_and(|a| {
            a["pm2_env"]["status"] == "launching" && a["pid"].as_u64().unwrap_or(0) > 0
        })
    });
    start
}

#[test]
fn wait_ready_stays_launching_until_the_listen_timeout() {
    let h = Home::new("wait-ready-timeout");
    h.script("mute.js", "setInterval(() => {}, 1000);\n");
    let mut start = start_launching(&h, "mute.js", "4000");
    // The timeout counts as ready, as in pm2; `start` waited for it.
    assert!(start.wait().unwrap().success());
    assert_eq!(h.status("mute").as_deref(), Some("online"));
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(
        log.contains("did not say ready within its listen_timeout of 4000 ms"),
        "{log}"
    );
}

#[test]
fn process_send_ready_works_with_and_without_wait_ready() {
    let h = Home::new("send-ready");
    // Fork mode, no --wait-ready: process.send exists and 'ready' changes nothing.
    h.script(
        "fork.js",
        "console.log('send is ' + typeof process.send + ', connected ' + process.connected);\n\
         process.send('ready');\nsetInterval(() => {}, 1000);\n",
    );
    h.ok(&["start", "fork.js"]);
    h.wait_log("fork-out.log", "send is function, connected true");
    let pid = h.wait_online("fork");
    // With --wait-ready, 'ready' ends `launching` long before the listen timeout.
    h.script(
        "late.js",
        "setTimeout(() => process.send('ready'), 300);\nsetInterval(() => {}, 1000);\n",
    );
    let t = Instant::now();
    h.ok(&[
        "start",
        "late.js",
        "--wait-ready",
        "--listen-timeout",
        "60000",
    ]);
    assert_eq!(h.status("late").as_deref(), Some("online"));
    assert!(t.elapsed() < secs(30), "start took {:?}", t.elapsed());
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(log.contains("late (id 1) is ready"), "{log}");
    assert_eq!(h.pid("fork"), Some(pid), "no restart of the fork app");
}

const NOTIFY_PY: &str = r#"
import os, socket, time
addr = os.environ['NOTIFY_SOCKET']
if addr.startswith('@'):
    addr = '\0' + addr[1:]
time.sleep(0.3)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(b'READY=1\nSTATUS=serving 3 clients', addr)
print('sent', flush=True)
time.sleep(1000)
"#;

#[test]
fn python_ready_on_notify_socket_and_a_forged_one_is_ignored() {
    let h = Home::new("notify");
    h.script("svc.py", NOTIFY_PY);
    let t = Instant::now();
    h.ok(&[
        "start",
        "svc.py",
        "--wait-ready",
        "--listen-timeout",
        "60000",
    ]);
    assert!(t.elapsed() < secs(30));
    assert_eq!(h.status("svc").as_deref(), Some("online"));
    let d = h.ok(&["describe", "svc"]);
    assert!(d.contains("Status text: serving 3 clients"), "{d}");

    // A READY=1 from a process ward does not supervise (this test) changes nothing.
    h.script("mute.py", "import time\ntime.sleep(1000)\n");
    let mut start = start_launching(&h, "mute.py", "60000");
    let sock = std::os::unix::net::UnixDatagram::unbound().unwrap();
    sock.send_to(b"READY=1", h.root.join("notify.sock"))
        .unwrap();
    wait_file(
        &h.root.join("ward.log"),
        &format!(
            "ignored a NOTIFY_SOCKET message from pid {}",
            std::process::id()
        ),
    );
    assert_eq!(h.status("mute").as_deref(), Some("launching"));
    h.ok(&["delete", "mute"]);
    let _ = start.wait();
}

#[test]
fn shutdown_with_message_stops_by_message() {
    let h = Home::new("shutdown-msg");
    h.script(
        "polite.js",
        "process.on('SIGINT', () => console.log('SIGINT ignored'));\n\
         process.on('message', (m) => { if (m === 'shutdown') { console.log('got shutdown'); process.exit(0); } });\n\
         setInterval(() => {}, 1000);\n",
    );
    h.ok(&[
        "start",
        "polite.js",
        "--shutdown-with-message",
        "--kill-timeout",
        "30000",
    ]);
    h.wait_online("polite");
    let t = Instant::now();
    h.ok(&["stop", "polite"]);
    assert!(t.elapsed() < secs(20), "stop took {:?}", t.elapsed());
    let out = h.wait_log("polite-out.log", "got shutdown");
    assert!(!out.contains("SIGINT ignored"), "{out}");
    let d = h.ok(&["describe", "polite"]);
    assert!(
        d.contains("exited with code 0") || d.contains("code 0"),
        "{d}"
    );
}

#[test]
fn an_app_flooding_its_channel_does_not_slow_ls() {
    let h = Home::new("ipc-flood");
    h.script(
        "flood.js",
        "const fs = require('fs');\n\
         const big = 'x'.repeat(4000);\n\
         let n = 0;\n\
         function more() {\n\
           for (let i = 0; i < 200; i++) process.send({ n: n++, big });\n\
           try { fs.writeSync(3, 'garbage that is not json\\n'); } catch (e) {}\n\
           setImmediate(more);\n\
         }\n\
         more();\n",
    );
    h.ok(&["start", "flood.js"]);
    h.wait_online("flood");
    let pid = h.pid("flood").unwrap();
    for _ in 0..10 {
        let t = Instant::now();
        h.ok(&["ls"]);
        // Generous: on a loaded 2-core machine `ls` takes milliseconds, not seconds.
        assert!(t.elapsed() < secs(5), "ls took {:?}", t.elapsed());
    }
    assert_eq!(
        h.pid("flood"),
        Some(pid),
        "the flooding app was not restarted"
    );
    wait_file(
        &h.root.join("ward.log"),
        "unreadable message(s) on its IPC channel",
    );
}

#[test]
fn cluster_copies_outlive_the_daemon_and_the_next_one_shares_the_same_socket() {
    let h = Home::new("cluster-survive");
    let port = free_port();
    start_cluster(&h, port, "2");
    wait_until(secs(20), "2 online", || all_online(&h, "server", 2));
    let before = distinct_pids(port, 2);
    let first_ids = worker_ids(port);
    let daemon = h.daemon_pid().unwrap();
    kill9(daemon);
    wait_until(secs(20), "a new daemon", || {
        h.daemon_pid().is_some_and(|p| p != daemon && alive(p))
    });
    // The workers kept their IPC channel (the fd holder had it): nobody exited.
    assert_eq!(pids_of(&h, "server"), before);
    for p in &before {
        assert!(alive(*p));
    }
    // A copy that starts now gets the socket the first daemon bound.
    let victim = *before.iter().next().unwrap();
    kill9(victim);
    wait_until(secs(20), "the copy is back", || {
        all_online(&h, "server", 2) && !pids_of(&h, "server").contains(&victim)
    });
    assert_eq!(distinct_pids(port, 2), pids_of(&h, "server"));
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(!log.contains("unable to listen"), "{log}");
    // cluster.worker.id stays unique: the new daemon counts on from the adopted workers.
    let now = worker_ids(port);
    let fresh = pids_of(&h, "server")
        .difference(&before)
        .copied()
        .collect::<Vec<_>>();
    assert_eq!(fresh.len(), 1);
    let old_ids: BTreeSet<&String> = first_ids.values().collect();
    assert!(
        !old_ids.contains(&now[&fresh[0]]),
        "the new worker reuses an id: before {first_ids:?}, now {now:?}"
    );
}

#[test]
fn send_data_to_process_id_as_pm2() {
    let h = Home::new("send-data");
    h.script(
        "listen.js",
        "process.on('message', (m) => console.log('got ' + JSON.stringify(m)));\n\
         setInterval(() => {}, 1000);\n",
    );
    h.ok(&["start", "listen.js"]);
    h.wait_online("listen");
    let out = h.ok(&["sendDataToProcessId", "listen", "greet", r#"{"a":1}"#]);
    assert!(out.contains("successfully sent data to process"), "{out}");
    h.wait_log(
        "listen-out.log",
        r#"got {"data":{"a":1},"id":0,"topic":"greet","type":"process:msg"}"#,
    );
    h.ok(&["sendDataToProcessId", "0", "t", "plain words"]);
    h.wait_log("listen-out.log", r#""data":"plain words""#);
    // A program that is not Node has no channel: refused, nothing sent.
    h.script("quiet.sh", "#!/bin/sh\nexec sleep 1000\n");
    h.ok(&["start", "quiet.sh"]);
    h.wait_online("quiet");
    let err = failed(&h.run(&["sendDataToProcessId", "all", "t", "x"]));
    assert!(err.contains("quiet (id 1)"), "{err}");
    assert!(err.contains("nothing was sent"), "{err}");
}

/// The real @pm2/io from the npm registry, installed into the test's folder.
fn install_pm2_io(h: &Home) {
    let out = std::process::Command::new("npm")
        .args(["install", "--no-audit", "--no-fund", "--prefix"])
        .arg(&h.dir)
        .arg("@pm2/io")
        .output()
        .expect("npm (the CI script installs it)");
    assert!(
        out.status.success(),
        "npm install @pm2/io failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn pm2_io_metrics_and_actions() {
    let h = Home::new("pm2io");
    install_pm2_io(&h);
    h.script(
        "probe.js",
        "const io = require('@pm2/io');\n\
         io.metric({ name: 'Realtime user', unit: 'users' }).set(42);\n\
         const c = io.counter({ name: 'jobs done' }); c.inc(); c.inc();\n\
         io.action('hello', (reply) => reply({ answer: 'hi' }));\n\
         io.action('echo', (param, reply) => reply({ got: param }));\n\
         setInterval(() => {}, 1000);\n",
    );
    h.ok(&["start", "probe.js"]);
    h.wait_online("probe");
    wait_until(secs(20), "metrics in jlist", || {
        let a = h.must("probe");
        let m = &a["pm2_env"]["axm_monitor"];
        m["Realtime user"]["value"] == 42
            && m["jobs done"]["value"] == 2
            && !m["Heap Usage"].is_null()
    });
    let d = h.ok(&["describe", "probe"]);
    assert!(d.contains("Code metrics value"), "{d}");
    assert!(d.contains("42 users"), "{d}");
    let m = h.ok(&["metrics"]);
    assert!(
        m.contains(
            r#"ward_app_metric{id="0",name="probe",namespace="default",metric="jobs done"} 2"#
        ),
        "{m}"
    );
    let out = h.ok(&["trigger", "probe", "hello"]);
    assert!(
        out.contains("1 processes have received command hello"),
        "{out}"
    );
    assert!(
        out.contains(r#"[probe:0:default]={"answer":"hi"}"#),
        "{out}"
    );
    let out = h.ok(&["trigger", "probe", "echo", "abc"]);
    assert!(out.contains(r#"[probe:0:default]={"got":"abc"}"#), "{out}");
    let err = failed(&h.run(&["trigger", "probe", "nope"]));
    assert!(err.contains("offers the action \"nope\""), "{err}");
}

/// A python service that says READY=1 on $NOTIFY_SOCKET only while the file `ok` exists.
const MAYBE_READY_PY: &str = r#"
import os, socket, time
if os.path.exists('ok'):
    addr = os.environ['NOTIFY_SOCKET']
    if addr.startswith('@'):
        addr = '\0' + addr[1:]
    socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM).sendto(b'READY=1', addr)
time.sleep(1000)
"#;

#[test]
fn fork_copies_reload_one_by_one_on_ready_and_a_silent_one_stops_it() {
    let h = Home::new("reload-ready");
    h.script("svc.py", MAYBE_READY_PY);
    std::fs::write(h.dir.join("ok"), "").unwrap();
    h.ok(&[
        "start",
        "svc.py",
        "-i",
        "2",
        "--wait-ready",
        "--listen-timeout",
        "3000",
    ]);
    assert!(all_online(&h, "svc", 2));
    let first = pids_of(&h, "svc");
    // Each new copy says READY=1 (from its own pid, not yet the app's): reloaded.
    h.ok(&["reload", "svc"]);
    let second = pids_of(&h, "svc");
    assert_eq!(second.len(), 2);
    assert!(second.is_disjoint(&first), "{first:?} → {second:?}");
    assert!(all_online(&h, "svc", 2));
    let log = std::fs::read_to_string(h.root.join("ward.log")).unwrap();
    assert!(
        !log.contains("listen_timeout"),
        "ready came before the timeout:\n{log}"
    );
    // A new copy that never says ready stops the reload; the old copies stay.
    std::fs::remove_file(h.dir.join("ok")).unwrap();
    let err = failed(&h.run(&["reload", "svc"]));
    assert!(err.contains("did not say ready within 3000 ms"), "{err}");
    assert_eq!(pids_of(&h, "svc"), second);
    assert!(all_online(&h, "svc", 2));
}

#[test]
fn an_app_that_closes_its_channel_is_stopped_by_signal() {
    let h = Home::new("ipc-closed");
    h.script(
        "alone.js",
        "process.disconnect();\nconsole.log('disconnected');\nsetInterval(() => {}, 1000);\n",
    );
    h.ok(&[
        "start",
        "alone.js",
        "--shutdown-with-message",
        "--kill-timeout",
        "30000",
    ]);
    h.wait_log("alone-out.log", "disconnected");
    let pid = h.wait_online("alone");
    // The daemon forgot the closed channel: nothing can be sent...
    wait_until(secs(20), "the channel is gone", || {
        !h.run(&["sendDataToProcessId", "alone", "t", "x"])
            .status
            .success()
    });
    assert_eq!(h.pid("alone"), Some(pid), "the app lives on");
    // ...and the stop falls back to the kill signal (SIGINT ends node at once).
    let t = Instant::now();
    h.ok(&["stop", "alone"]);
    assert!(t.elapsed() < secs(20), "stop took {:?}", t.elapsed());
    assert!(!alive(pid));
}
