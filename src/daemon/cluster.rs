//! Cluster mode: ward as the Node cluster primary of an app's copies.
//!
//! Each copy runs as a cluster worker (`NODE_UNIQUE_ID`); its `listen()` asks the primary
//! for a server handle (`{cmd: 'NODE_CLUSTER', act: 'queryServer', seq, address, port,
//! addressType, fd, index, data}`, Node's lib/internal/cluster/child.js). ward binds that
//! address once per app name, keeps the listening socket, and hands the same socket to
//! every copy (Node's "shared handle" policy: the kernel spreads the connections). The
//! socket outlives any one copy, so a restart or a reload refuses no connection; it is
//! closed when no copy of the app runs any more.
//!
//! This file owns the sockets and the messages' shapes; the loop sends them.

use std::collections::HashMap;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use serde_json::{Value, json};

use crate::os::ipc::{self, ListenAddr};

/// A listening socket shared by the copies of one app.
struct Shared {
    fd: OwnedFd,
    /// Its name at the fd holder: `ID.L.HEX` (the asking copy's id, the handle key in hex).
    hold_key: String,
    /// The first worker's server data (TLS ticket keys), given to every later one as
    /// Node's primary does.
    data: Value,
}

#[derive(Default)]
pub struct Cluster {
    /// (app name, Node's handle key) → socket.
    sockets: HashMap<(String, String), Shared>,
    /// Node's `seq` of the primary's own messages.
    seq: u64,
    /// The last `NODE_UNIQUE_ID` given (Node's primary counts its forks from 1).
    worker_id: u64,
    /// Holder keys of sockets bound since the last `take_fresh`.
    fresh: Vec<String>,
}

fn hex(s: &str) -> String {
    s.bytes().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<String> {
    let bytes: Option<Vec<u8>> = (0..s.len())
        .step_by(2)
        .map(|i| s.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
        .collect();
    String::from_utf8(bytes?).ok()
}

/// The handle key inside a holder key `ID.L.HEX`, if it is one.
pub fn held_socket(key: &str) -> Option<(u32, String)> {
    let mut parts = key.splitn(3, '.');
    let id = parts.next()?.parse().ok()?;
    if parts.next()? != "L" {
        return None;
    }
    Some((id, unhex(parts.next()?)?))
}

/// Node's handle key: `address:port:addressType:fd:index` (lib/internal/cluster/primary.js).
pub fn handle_key(q: &Value) -> String {
    let part = |k: &str| match q.get(k) {
        None | Some(Value::Null) => {
            if k == "fd" {
                "undefined".to_string()
            } else {
                "null".to_string()
            }
        }
        Some(Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
    };
    format!(
        "{}:{}:{}:{}:{}",
        part("address"),
        part("port"),
        part("addressType"),
        part("fd"),
        part("index")
    )
}

/// Where a queryServer asks to listen, or the errno that refuses it.
pub fn listen_addr(q: &Value) -> Result<ListenAddr, i32> {
    if q.get("fd")
        .and_then(Value::as_i64)
        .is_some_and(|fd| fd >= 0)
    {
        // listen({fd}) in a worker: the primary would need that fd; ward has none.
        return Err(libc::EBADF);
    }
    let port = q.get("port").and_then(Value::as_i64).unwrap_or(0);
    let address = q.get("address").and_then(Value::as_str);
    let kind = q.get("addressType");
    if kind.and_then(Value::as_str).is_some() {
        // 'udp4' / 'udp6': dgram sockets in cluster mode are not shared by ward.
        return Err(libc::ENOTSUP);
    }
    let port16 = || u16::try_from(port).map_err(|_| libc::EINVAL);
    match (kind.and_then(Value::as_i64), address) {
        (Some(-1), Some(path)) => Ok(ListenAddr::Unix(path.to_string())),
        (_, None) => Ok(ListenAddr::Any(port16()?)),
        (Some(6), Some(a)) => a
            .parse()
            .map(|ip| ListenAddr::V6(ip, port16().unwrap_or(0)))
            .map_err(|_| libc::EINVAL)
            .and_then(|l| port16().map(|_| l)),
        (_, Some(a)) => a
            .parse()
            .map(|ip| ListenAddr::V4(ip, port16().unwrap_or(0)))
            .map_err(|_| libc::EINVAL)
            .and_then(|l| port16().map(|_| l)),
    }
}

/// What one cluster message asks of the primary.
pub enum Answer {
    /// Send this message, with this socket attached when there is one.
    Reply(Value, Option<u64>),
    /// The worker listens: a reload may go on.
    Listening,
    Nothing,
}

impl Cluster {
    /// A worker an earlier daemon started has this id: later ones get higher ids, so that
    /// `cluster.worker.id` stays unique, as under one Node primary.
    pub fn seen_worker_id(&mut self, id: u64) {
        self.worker_id = self.worker_id.max(id);
    }

    /// The `NODE_UNIQUE_ID` of the next worker.
    pub fn next_worker_id(&mut self) -> u64 {
        self.worker_id += 1;
        self.worker_id
    }

    fn wrap(&mut self, mut body: Value) -> Value {
        body["cmd"] = json!("NODE_CLUSTER");
        body["seq"] = json!(self.seq);
        self.seq += 1;
        body
    }

    /// Answers one cluster message of a worker of the app `name`. A reply that carries a
    /// socket is a `NODE_HANDLE` envelope (lib/internal/child_process.js) with the socket
    /// sent in the same write; `handle` tells the caller which one (`socket`).
    pub fn answer(&mut self, id: u32, name: &str, m: &Value) -> (Answer, Option<String>) {
        let seq = m.get("seq").cloned().unwrap_or(Value::Null);
        match m.get("act").and_then(Value::as_str) {
            Some("queryServer") => {
                let key = handle_key(m);
                let slot = (name.to_string(), key.clone());
                let mut note = None;
                if !self.sockets.contains_key(&slot) {
                    match listen_addr(m)
                        .and_then(|a| ipc::listen(&a).map_err(|e| e as i32).map(|fd| (a, fd)))
                    {
                        Ok((a, fd)) => {
                            let port = ipc::local_port(fd.as_fd()).unwrap_or(0);
                            let at = match a {
                                ListenAddr::Unix(_) => a.to_string(),
                                ListenAddr::Any(_) => format!("port {port}"),
                                ListenAddr::V4(ip, _) => format!("{ip}:{port}"),
                                ListenAddr::V6(ip, _) => format!("[{ip}]:{port}"),
                            };
                            note = Some(format!("{name}: listening on {at} for its copies"));
                            let data = m.get("data").cloned().unwrap_or(Value::Null);
                            let hold_key = format!("{id}.L.{}", hex(&key));
                            self.fresh.push(hold_key.clone());
                            self.sockets
                                .insert(slot.clone(), Shared { fd, hold_key, data });
                        }
                        Err(errno) => {
                            let reply = self.wrap(json!({
                                "errno": -errno, "key": key, "ack": seq, "data": null,
                            }));
                            let why = nix::errno::Errno::from_raw(errno).desc();
                            let note = format!(
                                "{name}: unable to listen at {}:{}: {why}",
                                m.get("address").cloned().unwrap_or(Value::Null),
                                m.get("port").cloned().unwrap_or(Value::Null),
                            );
                            return (Answer::Reply(reply, None), Some(note));
                        }
                    }
                }
                let data = self.sockets[&slot].data.clone();
                let inner = self.wrap(json!({
                    "errno": 0, "key": key, "ack": seq, "data": data,
                }));
                let env = json!({"cmd": "NODE_HANDLE", "type": "net.Native", "msg": inner});
                (Answer::Reply(env, Some(0)), note)
            }
            Some("listening") => (Answer::Listening, None),
            // The worker waits for this ack before it disconnects (Worker#destroy, and
            // disconnect() started by the worker).
            Some("exitedAfterDisconnect") => {
                let reply = self.wrap(json!({ "ack": seq }));
                (Answer::Reply(reply, None), None)
            }
            // 'online', 'close' (the socket stays for the other copies and the next one).
            _ => (Answer::Nothing, None),
        }
    }

    /// The socket last answered for `name` and the queryServer `m` (what `Answer::Reply`
    /// with a handle attaches).
    pub fn socket(&self, name: &str, m: &Value) -> Option<BorrowedFd<'_>> {
        self.sockets
            .get(&(name.to_string(), handle_key(m)))
            .map(|s| s.fd.as_fd())
    }

    /// No copy of `name` runs any more: its sockets close (the port is free again).
    /// Returns their holder keys.
    pub fn release(&mut self, name: &str) -> Vec<String> {
        let mut keys = Vec::new();
        self.sockets.retain(|(n, _), s| {
            if n == name {
                keys.push(std::mem::take(&mut s.hold_key));
            }
            n != name
        });
        keys
    }

    /// The sockets bound since the last call, for the fd holder: (key, fd).
    pub fn take_fresh(&mut self) -> Vec<(String, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        let keys = std::mem::take(&mut self.fresh);
        self.sockets
            .values()
            .filter(|s| keys.contains(&s.hold_key))
            .map(|s| (s.hold_key.clone(), s.fd.as_raw_fd()))
            .collect()
    }

    /// (holder key, fd) of every socket, for a new fd holder.
    pub fn held(&self) -> Vec<(String, std::os::fd::RawFd)> {
        use std::os::fd::AsRawFd;
        self.sockets
            .values()
            .map(|s| (s.hold_key.clone(), s.fd.as_raw_fd()))
            .collect()
    }

    /// A socket an earlier daemon bound for `name`, back from the fd holder.
    pub fn restore(&mut self, name: &str, hold_key: String, handle_key: String, fd: OwnedFd) {
        self.sockets.insert(
            (name.to_string(), handle_key),
            Shared {
                fd,
                hold_key,
                data: Value::Null,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_addresses_as_node_says_them() {
        let q = json!({"act": "queryServer", "address": null, "port": 3000,
                       "addressType": 4, "fd": null, "index": 0, "seq": 2});
        assert_eq!(handle_key(&q), "null:3000:4:undefined:0");
        assert_eq!(listen_addr(&q), Ok(ListenAddr::Any(3000)));
        let q = json!({"address": "127.0.0.1", "port": 80, "addressType": 4});
        assert_eq!(
            listen_addr(&q),
            Ok(ListenAddr::V4(std::net::Ipv4Addr::LOCALHOST, 80))
        );
        let q = json!({"address": "::1", "port": 80, "addressType": 6});
        assert_eq!(
            listen_addr(&q),
            Ok(ListenAddr::V6(std::net::Ipv6Addr::LOCALHOST, 80))
        );
        let q = json!({"address": "/tmp/s", "port": -1, "addressType": -1});
        assert_eq!(listen_addr(&q), Ok(ListenAddr::Unix("/tmp/s".into())));
        assert_eq!(
            listen_addr(&json!({"port": 1, "addressType": "udp4"})),
            Err(libc::ENOTSUP)
        );
        assert_eq!(
            listen_addr(&json!({"port": 99999, "addressType": 4})),
            Err(libc::EINVAL)
        );
    }

    #[test]
    fn one_socket_for_every_copy() {
        let mut c = Cluster::default();
        let q = json!({"cmd": "NODE_CLUSTER", "act": "queryServer", "address": "127.0.0.1",
                       "port": 0, "addressType": 4, "fd": null, "index": 0, "seq": 7});
        let (a, _) = c.answer(3, "api", &q);
        let fresh = c.take_fresh();
        assert_eq!(fresh.len(), 1);
        assert_eq!(
            held_socket(&fresh[0].0),
            Some((3, "127.0.0.1:0:4:undefined:0".to_string()))
        );
        let Answer::Reply(r, Some(_)) = a else {
            panic!("no handle")
        };
        assert_eq!(r["cmd"], "NODE_HANDLE");
        assert_eq!(r["msg"]["ack"], 7);
        assert_eq!(r["msg"]["errno"], 0);
        let first = c.socket("api", &q).unwrap().try_clone_to_owned().unwrap();
        let port = ipc::local_port(first.as_fd()).unwrap();
        c.answer(3, "api", &q);
        assert!(c.take_fresh().is_empty(), "bound once");
        assert_eq!(ipc::local_port(c.socket("api", &q).unwrap()), Some(port));
        assert_eq!(c.release("api").len(), 1);
        assert!(c.socket("api", &q).is_none());
    }
}
