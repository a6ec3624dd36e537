//! Talking to the daemon: one request out, its whole reply back, starting the daemon
//! when none answers. Every client command (and monit, logs, attach) goes through here.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::error::{Error, Result, os};
use crate::home::Home;
use crate::os::{proc, sock};
use crate::protocol::{self, Reassembly, Reply, Request};

/// How long a client waits for the daemon it started to answer.
const STARTUP: Duration = Duration::from_secs(10);

/// The table, for clients that read the apps' files themselves (`ward logs`).
pub fn list_apps(home: &Home) -> Result<Vec<protocol::AppView>> {
    fetch(home, false)
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
///
/// Decoded straight into the apps, as `table` decodes its rows: through `Reply`, serde
/// would first buffer the whole reply as a generic tree to find its tag (with
/// protocol.rs's `FlatView`, a fifth of the client's decoding of `jlist` of 100 apps). Any
/// other reply goes the usual way.
pub fn fetch(home: &Home, env: bool) -> Result<Vec<crate::protocol::AppView>> {
    #[derive(serde::Deserialize)]
    struct List {
        reply: String,
        apps: Vec<protocol::AppView>,
        #[serde(default)]
        envs: Vec<crate::spec::config::Env>,
        #[serde(default)]
        env_of: Vec<u32>,
    }
    let body = request_body(
        home,
        &Request::List { env },
        Duration::from_secs(30),
        true,
        &mut |_| {},
    )?;
    let (mut apps, envs, env_of) = match crate::json::from_bytes::<List>(&body) {
        Ok(l) if l.reply == "list" => (l.apps, l.envs, l.env_of),
        _ => match crate::json::from_bytes(&body).map(told) {
            Ok(Reply::List { apps, envs, env_of }) => (apps, envs, env_of),
            Ok(other) => return unexpected(other).map(|_| Vec::new()),
            Err(e) => return Err(Error::unable("read the daemon's reply", e)),
        },
    };
    crate::spec::config::put_shared(apps.iter_mut().map(|v| &mut v.app.spec.env), &envs, &env_of)
        .map_err(|e| Error::unable("read the daemon's reply", e))?;
    Ok(apps)
}

/// Sends one request and waits for its whole reply, starting the daemon if `autostart` and
/// none answers.
pub fn request(home: &Home, req: &Request, timeout: Duration, autostart: bool) -> Result<Reply> {
    request_ticking(home, req, timeout, autostart, &mut |_| {})
}

/// As `request`, calling `tick` with the time waited so far, a few times a second, while
/// the reply is awaited (for a progress line).
pub fn request_ticking(
    home: &Home,
    req: &Request,
    timeout: Duration,
    autostart: bool,
    tick: &mut dyn FnMut(Duration),
) -> Result<Reply> {
    let body = request_body(home, req, timeout, autostart, tick)?;
    crate::json::from_bytes(&body)
        .map(told)
        .map_err(|e| Error::unable("read the daemon's reply", e))
}

/// `ls`'s table: decoded straight into its rows. `Reply` is tagged by a field inside the
/// object, which makes serde buffer the whole reply as a generic tree before it can pick
/// the variant (a third of `ls`'s time in the client with 100 apps); a plain struct with
/// the same fields reads it in one pass. Any other reply (an error, a notice) goes the
/// usual way.
pub fn table(home: &Home, timeout: Duration) -> Result<Vec<protocol::Row>> {
    #[derive(serde::Deserialize)]
    struct Table {
        reply: String,
        rows: Vec<protocol::Row>,
    }
    let body = request_body(home, &Request::Table, timeout, true, &mut |_| {})?;
    match crate::json::from_bytes::<Table>(&body) {
        Ok(t) if t.reply == "table" => Ok(t.rows),
        _ => match crate::json::from_bytes(&body).map(told) {
            Ok(Reply::Table { rows }) => Ok(rows),
            Ok(other) => unexpected(other).map(|_| Vec::new()),
            Err(e) => Err(Error::unable("read the daemon's reply", e)),
        },
    }
}

/// The reply's JSON text, as the daemon sent it.
fn request_body(
    home: &Home,
    req: &Request,
    timeout: Duration,
    autostart: bool,
    tick: &mut dyn FnMut(Duration),
) -> Result<Vec<u8>> {
    home.check()?;
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
        start_and_send(home, &client, &sockpath, &frames)?;
    }
    let mut asked = daemon_pid(home);
    // The send went through, yet the pid file names a dead daemon: the socket we reached
    // belonged to it and is going with it (a daemon SIGKILLed an instant ago), so nobody
    // will read the request. Wait for the daemon that takes over (or start one) and send
    // again. A live daemon always wrote its pid before it bound the socket, so this never
    // sends one daemon the same request twice. (A zombie counts as dead: the client that
    // started the daemon is its parent.)
    if autostart && asked.is_some_and(|p| !proc::running(p)) {
        start_and_send(home, &client, &sockpath, &frames)?;
        asked = daemon_pid(home);
    }
    wait_reply(&client, home, id, timeout, asked, tick)
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
    if proc::running(asked) && now == Some(asked) {
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

/// Starts a daemon (or waits for the one taking over) and sends the request to it.
fn start_and_send(
    home: &Home,
    client: &sock::Client,
    sockpath: &Path,
    frames: &[Vec<u8>],
) -> Result<()> {
    start_daemon(home)?;
    send_all(client, sockpath, frames).map_err(|e| {
        Error::unable(
            format_args!("reach the daemon at {}", sockpath.display()),
            os(&e),
        )
    })
}

fn send_all(client: &sock::Client, to: &Path, frames: &[Vec<u8>]) -> std::io::Result<()> {
    for f in frames {
        client.send(to, f)?;
    }
    Ok(())
}

/// Random and never 0 (0 marks the daemon's replies to requests it could not read).
fn request_id() -> u64 {
    crate::os::sys::random_u64().max(1)
}

/// Is this datagram from our daemon? Anyone can write to a client's abstract address, so
/// a reply counts only when the kernel says it came from the daemon's socket (by path, or
/// the same inode under another spelling of the home) and from our uid, which is the
/// daemon's (it serves only its own uid and root; a client uses only a home of its own).
fn from_daemon(r: &sock::Received, home: &Home) -> bool {
    use std::os::unix::fs::MetadataExt;
    if r.uid != Some(crate::os::sys::uid()) {
        return false;
    }
    let Some(from) = &r.from else {
        return false;
    };
    // Replies come from the daemon's reply socket (bound and unlinked at once inside the
    // 0700 home, so only the daemon's uid could have bound it) or its control socket.
    let ours = home.socket();
    if *from == ours || *from == home.reply_socket() {
        return true;
    }
    match (std::fs::metadata(from), std::fs::metadata(&ours)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

fn wait_reply(
    client: &sock::Client,
    home: &Home,
    id: u64,
    timeout: Duration,
    asked: Option<u32>,
    tick: &mut dyn FnMut(Duration),
) -> Result<Vec<u8>> {
    let began = Instant::now();
    let deadline = began + timeout;
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
        tick(began.elapsed());
        let n = match client.recv(&mut buf, left.min(Duration::from_millis(250))) {
            Ok(r) if from_daemon(&r, home) => r.len,
            Ok(_) => continue, // forged, or stray: not the daemon's
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
            Ok(Some((_, body))) => return Ok(body),
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
                eprintln!("{}", crate::client::output::speak(&format!("[ward] {n}")));
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
    let log = crate::os::trust::open(&home.daemon_log(), crate::os::trust::Open::Append)
        .map_err(|e| Error::unable(format_args!("open {}", home.daemon_log().display()), os(&e)))?;
    let log2 = log
        .try_clone()
        .map_err(|e| Error::unable("open the daemon log", os(&e)))?;
    let spawn = || -> Result<std::process::Child> {
        let (out, err) = (
            log.try_clone()
                .map_err(|e| Error::unable("open the daemon log", os(&e)))?,
            log2.try_clone()
                .map_err(|e| Error::unable("open the daemon log", os(&e)))?,
        );
        std::process::Command::new(&exe)
            .arg("daemon")
            .arg("--spawned")
            .envs(home.env())
            .stdin(std::process::Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(|e| Error::unable("start the daemon", os(&e)))
    };
    let mut child = spawn()?;
    let until = Instant::now() + STARTUP;
    while Instant::now() < until {
        if home.socket().exists() && daemon_answers_quickly(home) {
            return Ok(());
        }
        match child.try_wait() {
            // A daemon that refused to start (a home it does not trust...) said why as the
            // last line of its log: say it here rather than wait for nothing.
            Ok(Some(st)) if !st.success() => {
                return Err(Error::new(last_line(home).unwrap_or_else(|| {
                    format!(
                        "the daemon exited ({st}) (see {})",
                        home.daemon_log().display()
                    )
                })));
            }
            // It gave way: the home's lock was held. Mostly by a daemon about to answer;
            // but a process a dying daemon was spawning holds its lock and socket until
            // its exec, and then nobody serves the home: try again.
            Ok(Some(_)) => {
                std::thread::sleep(Duration::from_millis(10));
                child = spawn()?;
            }
            _ => {}
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

/// The daemon's last words in its log, without its `ward: ` prefix.
fn last_line(home: &Home) -> Option<String> {
    let text = crate::os::trust::read(&home.daemon_log()).ok()?;
    let text = String::from_utf8_lossy(&text);
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let line = line.strip_prefix("ward: ").or(line.strip_prefix("pm2: "));
    line.map(str::to_string)
}

/// `logs --json`: the daemon sends this client pm2's process events (`Request::Events`).
pub struct Events {
    client: sock::Client,
    id: u64,
    buf: Vec<u8>,
    asked: Instant,
}

/// How often a follower asks again, so that a daemon started since (after a crash, or
/// `ward kill` and a new command) sends to it too.
const EVENTS_AGAIN: Duration = Duration::from_secs(5);

impl Events {
    /// Asks the running daemon (none is started for this); `None` when none answers.
    pub fn follow(home: &Home) -> Option<Events> {
        let client = sock::Client::new().ok()?;
        let id = request_id();
        let body = serde_json::to_vec(&Request::Events).ok()?;
        send_all(
            &client,
            &home.socket(),
            &protocol::frames(id, &body, protocol::FRAME),
        )
        .ok()?;
        let reply = wait_reply(&client, home, id, Duration::from_secs(5), None, &mut |_| {});
        let reply = crate::json::from_bytes::<Reply>(&reply.ok()?).ok()?;
        if !matches!(told(reply), Reply::Notes { .. }) {
            return None;
        }
        Some(Events {
            client,
            id,
            buf: vec![0u8; protocol::HEADER + protocol::FRAME + 1024],
            asked: Instant::now(),
        })
    }

    /// The events that come within `timeout`: (status, app name, ms since the epoch).
    pub fn wait(&mut self, home: &Home, timeout: Duration) -> Vec<(String, String, u64)> {
        if self.asked.elapsed() >= EVENTS_AGAIN {
            // Its answer comes among the events, and is passed over below.
            if let Ok(body) = serde_json::to_vec(&Request::Events) {
                let frames = protocol::frames(self.id, &body, protocol::FRAME);
                let _ = send_all(&self.client, &home.socket(), &frames);
            }
            self.asked = Instant::now();
        }
        let deadline = Instant::now() + timeout;
        let mut out = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            let n = match self.client.recv(&mut self.buf, left) {
                Ok(r) if from_daemon(&r, home) => r.len,
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return out, // the timeout
            };
            let d = &self.buf[..n];
            // An event is one small frame.
            match protocol::header(d) {
                Ok(h) if h.id == self.id && h.count == 1 => {}
                _ => continue,
            }
            if let Ok(Reply::Event {
                status,
                app_name,
                at,
            }) = crate::json::from_bytes::<Reply>(&d[protocol::HEADER..])
            {
                out.push((status, app_name, at));
            }
        }
    }
}
