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
    let body = request_body(home, req, timeout, autostart)?;
    serde_json::from_slice(&body).map_err(|e| Error::unable("read the daemon's reply", e))
}

/// `ls`'s table: decoded straight into its rows. `Reply` is tagged by a field inside the
/// object, which makes serde buffer the whole reply as a generic tree before it can pick
/// the variant (a third of `ls`'s time in the client with 100 apps); a plain struct with
/// the same fields reads it in one pass. Any other reply (an error) goes the usual way.
pub fn table(home: &Home, timeout: Duration) -> Result<Vec<protocol::Row>> {
    #[derive(serde::Deserialize)]
    struct Table {
        reply: String,
        rows: Vec<protocol::Row>,
    }
    let body = request_body(home, &Request::Table, timeout, true)?;
    match serde_json::from_slice::<Table>(&body) {
        Ok(t) if t.reply == "table" => Ok(t.rows),
        _ => match serde_json::from_slice(&body) {
            Ok(Reply::Table { rows }) => Ok(rows),
            Ok(other) => unexpected(other).map(|_| Vec::new()),
            Err(e) => Err(Error::unable("read the daemon's reply", e)),
        },
    }
}

/// The reply's JSON text, as the daemon sent it.
fn request_body(home: &Home, req: &Request, timeout: Duration, autostart: bool) -> Result<Vec<u8>> {
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
    wait_reply(&client, home, id, timeout)
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

fn wait_reply(client: &sock::Client, home: &Home, id: u64, timeout: Duration) -> Result<Vec<u8>> {
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
            Ok(Some((_, body))) => return Ok(body),
            Ok(None) => {}
            Err(e) => return Err(Error::unable("read the daemon's reply", e)),
        }
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
        // The daemon binds its socket about a millisecond after its exec; a stat costs a
        // microsecond, so look often rather than sleep past the moment.
        std::thread::sleep(Duration::from_micros(250));
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
