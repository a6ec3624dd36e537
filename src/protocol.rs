//! Requests, replies, and the framing that carries them in datagrams of any total size.
//!
//! Every datagram starts with a 16-byte header: request id (u64), sequence number (u32) and
//! count (u32), little-endian; the payloads of one id, in order, make one JSON document.
//! No sockets here.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::spec::config::AppSpec;
use crate::table::App;

pub const HEADER: usize = 16;
/// Payload per datagram. The kernel queues at most `net.unix.max_dgram_qlen` datagrams
/// (often 10) per receiver; larger frames mean fewer of them.
pub const FRAME: usize = 128 * 1024;
/// A request may not exceed this once reassembled (a start of 10,000 apps fits).
pub const MAX_MESSAGE: usize = 512 * 1024 * 1024;

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Verb {
    Stop,
    Restart,
    Reload,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Stop => "stop",
            Verb::Restart => "restart",
            Verb::Reload => "reload",
            Verb::Delete => "delete",
        }
    }
}

/// One argument of `start`: an app to (re)start by name or id, or a new script.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StartItem {
    /// The word as typed: a name, an id, or a script.
    pub target: String,
    /// The app to register when `target` names no app; `None` when it could not be built.
    pub spec: Option<AppSpec>,
    /// Why `spec` could not be built (script not found, …), reported when nothing matches.
    pub spec_error: Option<String>,
    pub force: bool,
    /// From an ecosystem file: `target` is the app's name; apps of that name are restarted
    /// (stopped ones started) with `spec.env` merged over theirs, and `spec` is registered
    /// (`spec.instances` times) when there are none — pm2's `_startJson`.
    #[serde(default)]
    pub ecosystem: bool,
    /// `start ... --watch` was given: a registered app's watching is toggled.
    #[serde(default)]
    pub watch_toggle: bool,
    /// Settings given on the command line, merged over a registered app's (spec/patch.rs).
    #[serde(default)]
    pub patch: Option<crate::spec::patch::Patch>,
}

/// `ward scale NAME N|+N|-N`.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum ScaleTo {
    Exactly(u32),
    More(u32),
    Fewer(u32),
}

impl ScaleTo {
    /// How many copies there should be, given how many there are.
    pub fn target(self, now: u32) -> u32 {
        match self {
            ScaleTo::Exactly(n) => n,
            ScaleTo::More(n) => now.saturating_add(n),
            ScaleTo::Fewer(n) => now.saturating_sub(n),
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
// Tagged by its field "req", written first (tagfirst.rs).
#[serde(remote = "Self", rename_all = "snake_case")]
pub enum Request {
    Ping,
    /// Only what `ls` shows, one small row per app: with 1,000 apps the full list is
    /// ten times the bytes to encode, send and decode.
    Table,
    /// The table; `env` includes each app's environment (for `jlist`).
    List {
        env: bool,
    },
    Start {
        items: Vec<StartItem>,
    },
    Act {
        verb: Verb,
        targets: Vec<String>,
        /// Restart/reload: merge these variables over each app's environment first
        /// (`--update-env`, or an ecosystem file's `env`).
        #[serde(default)]
        update_env: Option<BTreeMap<String, String>>,
        /// The client's folder: a target that is a script path is resolved against it.
        #[serde(default)]
        cwd: Option<String>,
        /// Restart/reload: settings to merge over each app's first (spec/patch.rs).
        #[serde(default)]
        patch: Option<crate::spec::patch::Patch>,
        /// `restart --watch`: toggle each app's watching.
        #[serde(default)]
        toggle_watch: bool,
    },
    Scale {
        name: String,
        to: ScaleTo,
    },
    /// Stop every app, answer, and exit.
    Kill,
    /// Empty the log files of `targets`; of every app and the daemon's own log when empty.
    Flush {
        targets: Vec<String>,
    },
    /// Re-open every log file (after an external logrotate).
    ReloadLogs,
    /// Write the table to the dump (`force`: even when it is empty).
    Save {
        force: bool,
    },
    /// Register and start what the dump holds, skipping names already registered.
    Resurrect,
    /// Empty the dump.
    ClearDump,
    /// Write a line to one app's stdin.
    Send {
        target: String,
        line: String,
    },
    /// `sendDataToProcessId` / `trigger`: a message over each app's Node IPC channel.
    AppMessage {
        targets: Vec<String>,
        msg: AppMsg,
    },
    /// Re-execute the daemon from this binary, in place.
    Update {
        exe: String,
    },
    /// `logs --json`: send this client pm2's process events (start, online, exit, …) as
    /// `Reply::Event` datagrams from now on, with this request's id, until it goes away.
    Events,
    /// Policy operations on apps that are not a plain verb (issue 4).
    Control {
        op: ControlOp,
        targets: Vec<String>,
        #[serde(default)]
        cwd: Option<String>,
    },
}
crate::tagfirst::tag_first!(Request, "req");

/// What goes to apps over their IPC channel, as pm2 sends it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
// Tagged by its field "kind", written first (tagfirst.rs).
#[serde(remote = "Self", rename_all = "snake_case")]
pub enum AppMsg {
    /// `{type: 'process:msg', data, topic, id}` (pm2's `sendDataToProcessId` packet).
    Data {
        topic: String,
        data: serde_json::Value,
    },
    /// An `@pm2/io` action: its name, or `{msg: name, opts: params}`; the replies
    /// (`axm:reply`) come back as notes.
    Trigger {
        action: String,
        params: Option<String>,
    },
}
crate::tagfirst::tag_first!(AppMsg, "kind");

#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq)]
// Tagged by its field "op", written first (tagfirst.rs).
#[serde(remote = "Self", rename_all = "snake_case")]
pub enum ControlOp {
    /// `reset`: zero the restart counters.
    Reset,
    /// `sendSignal`: deliver a signal to each app's main pid.
    Signal { signal: i32 },
    /// `stop --watch`: stop watching, then stop.
    StopWatch,
    /// `restart --watch`: toggle watching, then restart.
    RestartWatch,
}
crate::tagfirst::tag_first!(ControlOp, "op");

/// An app as the client shows it: the table entry plus live figures from /proc.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(from = "FlatView")]
pub struct AppView {
    #[serde(flatten)]
    pub app: App,
    /// CPU % over the interval since the previous sample.
    pub cpu: f64,
    /// RSS in bytes of the app's whole process group.
    pub memory: u64,
    /// CPU seconds (user + system) used by the live processes of the group.
    #[serde(default)]
    pub cpu_time: f64,
}

/// `AppView` as it is sent, `app`'s fields beside the figures, read without `flatten`:
/// serde reads a flattened struct by buffering each app as a generic tree first (see
/// client/talk.rs `fetch`). Its fields must stay `App`'s and
/// `AppView`'s, with their attributes; `from` lists every one, so a new field of `App`
/// does not build until it is here too.
#[derive(Deserialize)]
struct FlatView {
    id: u32,
    spec: AppSpec,
    run: crate::lifecycle::Run,
    cpu: f64,
    memory: u64,
    #[serde(default)]
    cpu_time: f64,
}

impl From<FlatView> for AppView {
    fn from(f: FlatView) -> AppView {
        AppView {
            app: App {
                id: f.id,
                spec: f.spec,
                run: f.run,
            },
            cpu: f.cpu,
            memory: f.memory,
            cpu_time: f.cpu_time,
        }
    }
}

/// One line of `ls`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Row {
    pub id: u32,
    pub name: String,
    pub namespace: String,
    pub pid: Option<u32>,
    pub status: crate::lifecycle::Status,
    pub restarts: u32,
    pub pm_uptime: u64,
    pub cpu: f64,
    pub memory: u64,
    pub watch: bool,
    /// Cluster mode (the `mode` column).
    #[serde(default)]
    pub cluster: bool,
}

impl Row {
    /// The row of `a`, with its live figures.
    pub fn new(a: &App, cpu: f64, memory: u64) -> Row {
        Row {
            id: a.id,
            name: a.spec.name.clone(),
            namespace: a.spec.namespace.clone(),
            pid: a.run.pid,
            status: a.run.status,
            restarts: a.run.restarts,
            pm_uptime: a.run.pm_uptime,
            cpu,
            memory,
            watch: !a.spec.watch.is_empty(),
            cluster: a.spec.cluster,
        }
    }

    /// Back into the shape the renderers take; what `ls` does not show is left default.
    pub fn view(self) -> AppView {
        let spec = AppSpec {
            name: self.name,
            namespace: self.namespace,
            watch: if self.watch {
                vec![".".into()]
            } else {
                Vec::new()
            },
            cluster: self.cluster,
            ..AppSpec::default()
        };
        let run = crate::lifecycle::Run {
            status: self.status,
            pid: self.pid,
            restarts: self.restarts,
            pm_uptime: self.pm_uptime,
            ..crate::lifecycle::Run::default()
        };
        AppView {
            app: App {
                id: self.id,
                spec,
                run,
            },
            cpu: self.cpu,
            memory: self.memory,
            cpu_time: 0.0,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
// Tagged by its field "reply", written first (tagfirst.rs).
#[serde(remote = "Self", rename_all = "snake_case")]
pub enum Reply {
    Pong {
        pid: u32,
        version: String,
    },
    Error {
        message: String,
    },
    /// With environments (`List { env: true }`), each distinct one is in `envs` once and
    /// `env_of[i]` names app i's (its own `env` is left empty): apps started from one shell
    /// share one, and 100 of them were 600 kB of the same text to encode, send and read.
    List {
        apps: Vec<AppView>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        envs: Vec<crate::spec::config::Env>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        env_of: Vec<u32>,
    },
    Table {
        rows: Vec<Row>,
    },
    /// A request that acted on apps: what happened to each, then the table.
    Done {
        notes: Vec<String>,
        apps: Vec<AppView>,
    },
    Killed,
    /// One process event, to a client that asked for them (`Request::Events`); `at` in ms
    /// since the epoch.
    Event {
        status: String,
        app_name: String,
        at: u64,
    },
    /// A request that changed no app: what was done.
    Notes {
        notes: Vec<String>,
    },
    /// Nothing was done, for a reason worth a warning but not a failure.
    Warning {
        message: String,
    },
    /// The dump was written with this many apps.
    Saved {
        count: usize,
        path: String,
    },
    /// A reply with something the user must hear about the daemon itself (its state file
    /// was damaged, apps may run unmanaged): the client prints `notices` on stderr, then
    /// handles `then` as usual.
    Noted {
        notices: Vec<String>,
        then: Box<Reply>,
    },
}
crate::tagfirst::tag_first!(Reply, "reply");

/// Splits a message into datagrams of at most `HEADER + frame` bytes.
pub fn frames(id: u64, payload: &[u8], frame: usize) -> Vec<Vec<u8>> {
    frames_from(id, payload, frame, &mut Vec::new())
}

/// `frames`, writing the datagrams into buffers taken from `pool` while it has some: the
/// daemon reuses the buffers of the replies it sent (a datagram is 128 kB, which musl's
/// allocator maps and unmaps for each one, and each new page costs a fault).
pub fn frames_from(id: u64, payload: &[u8], frame: usize, pool: &mut Vec<Vec<u8>>) -> Vec<Vec<u8>> {
    let count = payload.len().div_ceil(frame).max(1);
    let chunks = payload
        .chunks(frame)
        .chain(payload.is_empty().then_some(payload));
    chunks
        .enumerate()
        .map(|(seq, chunk)| {
            let mut d = pool.pop().unwrap_or_default();
            d.clear();
            d.reserve(HEADER + chunk.len());
            d.extend_from_slice(&id.to_le_bytes());
            d.extend_from_slice(&(seq as u32).to_le_bytes());
            d.extend_from_slice(&(count as u32).to_le_bytes());
            d.extend_from_slice(chunk);
            d
        })
        .collect()
}

pub struct Header {
    pub id: u64,
    pub seq: u32,
    pub count: u32,
}

pub fn header(d: &[u8]) -> Result<Header> {
    if d.len() < HEADER {
        return Err(Error::new("datagram shorter than its header"));
    }
    let id = u64::from_le_bytes(d[0..8].try_into().unwrap_or_default());
    let seq = u32::from_le_bytes(d[8..12].try_into().unwrap_or_default());
    let count = u32::from_le_bytes(d[12..16].try_into().unwrap_or_default());
    if count == 0 || seq >= count {
        return Err(Error::new("datagram header out of range"));
    }
    if (count as usize).saturating_mul(FRAME) > MAX_MESSAGE.saturating_add(FRAME) {
        return Err(Error::new("message too large"));
    }
    Ok(Header { id, seq, count })
}

/// Puts messages back together, per sender. Frames of one sender arrive in order (UNIX
/// datagram sockets neither lose nor reorder) and a client has one request in flight, so a
/// sender has at most one partial message: a new first frame replaces an abandoned one, and
/// a frame out of sequence drops it. Memory held is bounded per sender, and in total over
/// all senders (`with_total`): many senders each sending part of a large message cannot
/// add up to more than that, whatever they send.
pub struct Reassembly<K> {
    /// sender → (id, next sequence number, payload so far, ms of the last frame)
    partial: HashMap<K, (u64, u32, Vec<u8>, u64)>,
    /// Bytes reserved by all partial messages (their buffers' capacity).
    held: usize,
    /// The most `held` may reach.
    total: usize,
}

impl<K> Default for Reassembly<K> {
    fn default() -> Self {
        Reassembly {
            partial: HashMap::new(),
            held: 0,
            total: MAX_MESSAGE,
        }
    }
}

impl<K: std::hash::Hash + Eq + Clone> Reassembly<K> {
    /// A reassembly whose partial messages together hold at most `total` bytes.
    pub fn with_total(total: usize) -> Self {
        Reassembly {
            total,
            ..Reassembly::default()
        }
    }

    /// Feeds one datagram; returns the whole message when this was its last frame.
    /// `now` (ms) stamps partial messages so that `expire` can drop abandoned ones.
    pub fn feed(&mut self, from: &K, d: &[u8], now: u64) -> Result<Option<(u64, Vec<u8>)>> {
        let h = header(d)?;
        let body = &d[HEADER..];
        if h.count == 1 {
            self.drop_partial(from);
            return Ok(Some((h.id, body.to_vec())));
        }
        if h.seq == 0 {
            self.drop_partial(from);
            let cap = body.len() * 2;
            if self.held + cap > self.total {
                return Err(Error::new(TOO_MUCH));
            }
            let mut buf = Vec::with_capacity(cap);
            buf.extend_from_slice(body);
            self.held += buf.capacity();
            self.partial.insert(from.clone(), (h.id, 1, buf, now));
            return Ok(None);
        }
        let Some((id, next, buf, stamp)) = self.partial.get_mut(from) else {
            return Err(Error::new("frame of an unknown message"));
        };
        if *id != h.id {
            self.drop_partial(from);
            return Err(Error::new("frame of an unknown message"));
        }
        if *next != h.seq {
            self.drop_partial(from);
            return Err(Error::new("frame out of sequence"));
        }
        if buf.len() + body.len() > MAX_MESSAGE {
            self.drop_partial(from);
            return Err(Error::new("message too large"));
        }
        // What the buffer will reserve once this frame is in (Vec doubles when full).
        let need = buf.len() + body.len();
        let grown = if need > buf.capacity() {
            need.max(buf.capacity() * 2)
        } else {
            buf.capacity()
        };
        if self.held - buf.capacity() + grown > self.total {
            self.drop_partial(from);
            return Err(Error::new(TOO_MUCH));
        }
        let before = buf.capacity();
        buf.reserve_exact(grown - buf.len());
        buf.extend_from_slice(body);
        self.held = self.held - before + buf.capacity();
        *next += 1;
        *stamp = now;
        if *next == h.count {
            let (id, _, buf, _) = self.partial.remove(from).unwrap_or_default();
            self.held -= buf.capacity();
            return Ok(Some((id, buf)));
        }
        Ok(None)
    }

    fn drop_partial(&mut self, from: &K) {
        if let Some((_, _, buf, _)) = self.partial.remove(from) {
            self.held -= buf.capacity();
        }
    }

    pub fn is_empty(&self) -> bool {
        self.partial.is_empty()
    }

    /// Bytes held by partial messages.
    pub fn held(&self) -> usize {
        self.held
    }

    /// Drops partial messages untouched since `before`.
    pub fn expire(&mut self, before: u64) {
        let mut freed = 0;
        self.partial.retain(|_, (_, _, buf, stamp)| {
            let keep = *stamp >= before;
            if !keep {
                freed += buf.capacity();
            }
            keep
        });
        self.held -= freed;
    }
}

/// The error when partial messages would hold more than their total.
pub const TOO_MUCH: &str = "too many partial requests in flight; try again";

#[cfg(test)]
mod tests {
    use super::*;

    /// An app read back is the app sent, whichever way its fields come (`FlatView`).
    #[test]
    fn app_views_read_back_as_sent() {
        let mut spec = AppSpec {
            name: "api".into(),
            uid: Some(7),
            ..AppSpec::default()
        };
        std::sync::Arc::make_mut(&mut spec.env).insert("K".into(), "v".into());
        let mut run = crate::lifecycle::Run::new(5);
        run.pid = Some(42);
        let v = AppView {
            app: App { id: 3, spec, run },
            cpu: 1.5,
            memory: 9,
            cpu_time: 0.25,
        };
        let text = serde_json::to_string(&v).unwrap();
        let back: AppView = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
        assert_eq!(
            (back.app.id, back.app.run.pid, back.cpu_time),
            (3, Some(42), 0.25)
        );
        // Older daemons sent no cpu_time; unknown keys are skipped, as before.
        let old = r#"{"cpu":0,"memory":1,"spec":{},"run":{},"id":1,"new_key":[1]}"#;
        let back: AppView = serde_json::from_str(old).unwrap();
        assert_eq!((back.app.id, back.memory, back.cpu_time), (1, 1, 0.0));
        let missing = r#"{"cpu":0,"memory":1,"spec":{},"run":{}}"#;
        assert!(serde_json::from_str::<AppView>(missing).is_err());
    }

    #[test]
    fn round_trip_in_many_frames() {
        let payload: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        let ds = frames(7, &payload, 1000);
        assert_eq!(ds.len(), 10);
        let mut r = Reassembly::default();
        let mut got = None;
        for d in &ds {
            got = r.feed(&1u8, d, 0).unwrap();
        }
        assert_eq!(got, Some((7, payload)));
        assert!(r.is_empty());
    }

    #[test]
    fn empty_and_single() {
        let mut r = Reassembly::default();
        let ds = frames(1, b"", 10);
        assert_eq!(r.feed(&0u8, &ds[0], 0).unwrap(), Some((1, vec![])));
        let ds = frames(2, b"{}", 10);
        assert_eq!(r.feed(&0u8, &ds[0], 0).unwrap(), Some((2, b"{}".to_vec())));
    }

    #[test]
    fn garbage_is_an_error() {
        let mut r: Reassembly<u8> = Reassembly::default();
        assert!(r.feed(&0, b"short", 0).is_err());
        let mut d = frames(1, b"abc", 10).remove(0);
        d[12] = 0; // count 0
        assert!(r.feed(&0, &d, 0).is_err());
        let ds = frames(3, &[0u8; 100], 10);
        assert!(r.feed(&0, &ds[5], 0).is_err()); // middle frame of an unknown message
        r.feed(&0, &ds[0], 0).unwrap();
        assert!(r.feed(&0, &ds[2], 0).is_err()); // skipped frame
        assert!(r.is_empty());
    }

    #[test]
    fn one_partial_message_per_sender() {
        let mut r = Reassembly::default();
        for id in 0..1000 {
            r.feed(&7u8, &frames(id, &[1u8; 100], 10)[0], 0).unwrap();
        }
        assert_eq!(r.partial.len(), 1);
        // An older one can no longer go on; the latest one completes.
        assert!(r.feed(&7u8, &frames(998, &[1u8; 100], 10)[1], 0).is_err());
        assert!(r.is_empty());
        let ds = frames(999, &[1u8; 100], 10);
        let mut got = None;
        for d in &ds {
            got = r.feed(&7u8, d, 0).unwrap();
        }
        assert_eq!(got, Some((999, vec![1u8; 100])));
    }

    #[test]
    fn expire_drops_abandoned() {
        let mut r = Reassembly::default();
        let ds = frames(3, &[0u8; 100], 10);
        r.feed(&0u8, &ds[0], 5).unwrap();
        r.expire(3);
        assert!(!r.is_empty());
        r.expire(10);
        assert!(r.is_empty());
        assert_eq!(r.held(), 0);
    }

    #[test]
    fn partial_messages_are_capped_in_total() {
        let mut r = Reassembly::with_total(10_000);
        // Three senders, each halfway through a 4,000-byte message: the third no longer fits.
        for from in 0..3u8 {
            let ds = frames(from as u64, &[1u8; 4000], 1000);
            let mut res = Ok(None);
            for d in &ds[..3] {
                res = r.feed(&from, d, 0);
            }
            if from < 2 {
                assert!(res.is_ok(), "sender {from}");
            } else {
                assert!(res.is_err(), "sender {from} went past the total");
            }
            assert!(r.held() <= 10_000, "{}", r.held());
        }
        // Once the others are done, the third one fits again, and nothing stays held.
        for from in 0..2u8 {
            let ds = frames(from as u64, &[1u8; 4000], 1000);
            for d in &ds[3..] {
                r.feed(&from, d, 0).unwrap();
            }
        }
        assert_eq!(r.held(), 0);
        let ds = frames(9, &[1u8; 4000], 1000);
        let mut got = None;
        for d in &ds {
            got = r.feed(&2u8, d, 0).unwrap();
        }
        assert_eq!(got.map(|(_, b)| b.len()), Some(4000));
        assert_eq!(r.held(), 0);
    }
}
