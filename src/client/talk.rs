//! Talking to the daemon: one request out, its whole reply back, starting the daemon
//! when none answers. Every client command (and monit, logs, attach) goes through here.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, os};
use crate::home::Home;
use crate::os::sock;
use crate::protocol::{self, Reassembly, Reply, Request};

/// How long a client waits for the daemon it started to answer.
const STARTUP: Duration = Duration::from_secs(10);

/// The table, for clients that read the apps' files themselves (`ward logs`).
pub fn list_apps(home: &Home) -> Result<Vec<protocol::AppView>> {
    match request(
        home,
        &Request::List { env: false },
        Duration::from_secs(30),
        true,
    )? {
        Reply::List { apps } => Ok(apps),
        other => unexpected(other).map(|_| Vec::new()),
    }
}

pub fn unexpected(r: Reply) -> Result<i32> {
    match r {
        Reply::Error { message } => Err(Error::new(message)),
        other => Err(Error::new(format!(
            "the daemon answered something unexpected: {other:?}"
        ))),
    }
}

/// The table, with live figures; `env` adds each app's environment (for jlist).
pub fn fetch(home: &Home, env: bool) -> Result<Vec<crate::protocol::AppView>> {
    let reply = request(home, &Request::List { env }, Duration::from_secs(30), true)?;
    match reply {
        Reply::List { apps } => Ok(apps),
        other => unexpected(other).map(|_| Vec::new()),
    }
}

/// Sends one request and waits for its whole reply, starting the daemon if `autostart` and
/// none answers.
pub fn request(home: &Home, req: &Request, timeout: Duration, autostart: bool) -> Result<Reply> {
    let body = serde_json::to_vec(req).map_err(|e| Error::unable("encode the request", e))?;
    let client = sock::Client::new()?;
    let id = request_id();
    let frames = protocol::frames(id, &body, protocol::FRAME);
    let sockpath = home.socket();
    if let Err(e) = send_all(&client, &sockpath, &frames) {
        let absent = matches!(
            e.kind(),
            std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused
        );
        if !absent || !autostart {
            return Err(Error::unable(
                format_args!("reach the daemon at {}", sockpath.display()),
                os(&e),
            ));
        }
        start_daemon(home)?;
        send_all(&client, &sockpath, &frames).map_err(|e| {
            Error::unable(
                format_args!("reach the daemon at {}", sockpath.display()),
                os(&e),
            )
        })?;
    }
    let asked = daemon_pid(home);
    wait_reply(&client, home, id, timeout, asked)
}

/// The pid in the daemon's pid file.
fn daemon_pid(home: &Home) -> Option<u32> {
    std::fs::read_to_string(home.pid_file())
        .ok()
        .and_then(|s| s.trim().parse().ok())
}

/// The daemon that got the request died (a new one may already serve the home: the
/// socket alone cannot tell): what to tell the user, at once rather than at the timeout.
fn daemon_died(home: &Home, asked: u32) -> Option<Error> {
    let now = daemon_pid(home);
    // A zombie counts as dead: the client that started the daemon is its parent.
    let alive = crate::os::proc::read_stat(asked).is_some_and(|st| st.state != 'Z');
    if alive && now == Some(asked) {
        return None;
    }
    let new = match now.filter(|&p| p != asked) {
        Some(p) => format!("; a new daemon (pid {p}) has taken over"),
        None => String::new(),
    };
    Some(Error::new(format!(
        "the daemon (pid {asked}) died before answering{new}; part of the request may \
         have been done: check with `ward ls` (see {})",
        home.daemon_log().display()
    )))
}

fn send_all(client: &sock::Client, to: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    for f in frames {
        client.send(to, f)?;
    }
    Ok(())
}

fn request_id() -> u64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ ((std::process::id() as u64) << 32)
}

fn wait_reply(
    client: &sock::Client,
    home: &Home,
    id: u64,
    timeout: Duration,
    asked: Option<u32>,
) -> Result<Reply> {
    let deadline = Instant::now() + timeout;
    let mut buf = vec![0u8; protocol::HEADER + protocol::FRAME + 1024];
    let mut reasm: Reassembly<()> = Reassembly::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Error::new(format!(
                "the daemon did not answer within {} s (see {})",
                timeout.as_secs(),
                home.daemon_log().display()
            )));
        }
        let n = match client.recv(&mut buf, left.min(Duration::from_secs(1))) {
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if let Some(e) = asked.and_then(|p| daemon_died(home, p)) {
                    return Err(e);
                }
                if !home.socket().exists() {
                    return Err(Error::new(format!(
                        "the daemon went away before answering (see {})",
                        home.daemon_log().display()
                    )));
                }
                continue;
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(Error::unable("read the daemon's reply", os(&e))),
        };
        let d = &buf[..n];
        let Ok(h) = protocol::header(d) else { continue };
        if h.id != id && h.id != 0 {
            continue; // a late reply to an earlier request
        }
        match reasm.feed(&(), d, 0) {
            Ok(Some((_, body))) => {
                return serde_json::from_slice(&body)
                    .map(told)
                    .map_err(|e| Error::unable("read the daemon's reply", e));
            }
            Ok(None) => {}
            Err(e) => return Err(Error::unable("read the daemon's reply", e)),
        }
    }
}

/// Prints what the daemon wants the user to know about itself (on stderr, so that `jlist`
/// stays JSON), and returns the reply proper.
fn told(r: Reply) -> Reply {
    match r {
        Reply::Noted { notices, then } => {
            for n in notices {
                eprintln!("[ward] {n}");
            }
            told(*then)
        }
        other => other,
    }
}

/// Starts a daemon detached from this terminal and waits until it answers.
fn start_daemon(home: &Home) -> Result<()> {
    home.create()?;
    let exe = std::env::current_exe().map_err(|e| Error::unable("find the ward binary", os(&e)))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(home.daemon_log())
        .map_err(|e| Error::unable(format_args!("open {}", home.daemon_log().display()), os(&e)))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::unable("open the daemon log", os(&e)))?;
    std::process::Command::new(exe)
        .arg("daemon")
        .arg("--spawned")
        .envs(home.env())
        .stdin(std::process::Stdio::null())
        .stdout(log)
        .stderr(log2)
        .spawn()
        .map_err(|e| Error::unable("start the daemon", os(&e)))?;
    let until = Instant::now() + STARTUP;
    while Instant::now() < until {
        if home.socket().exists() && daemon_answers_quickly(home) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    Err(Error::new(format!(
        "the daemon did not start within {} s (see {})",
        STARTUP.as_secs(),
        home.daemon_log().display()
    )))
}

fn daemon_answers_quickly(home: &Home) -> bool {
    matches!(
        request(home, &Request::Ping, Duration::from_millis(500), false),
        Ok(Reply::Pong { .. })
    )
}
