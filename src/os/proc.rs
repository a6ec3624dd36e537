//! /proc parsers (pure, tested on text) and the readers that feed them.
//!
//! CPU and memory are counted per process group: an app runs in a group of its own, so its
//! workers and their children are counted with it.

use std::collections::HashMap;

/// The fields of /proc/PID/stat that ward uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: u32,
    pub state: char,
    pub ppid: u32,
    pub pgrp: u32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// Field 22: clock ticks after boot when the process started.
    pub start: u64,
    /// Resident pages.
    pub rss_pages: u64,
    pub threads: u64,
}

/// Parses one /proc/PID/stat line. The command name may hold spaces and parentheses, so
/// the fields are read after its last `)`.
pub fn parse_stat(s: &str) -> Option<Stat> {
    let open = s.find('(')?;
    let close = s.rfind(')')?;
    let pid = s[..open].trim().parse().ok()?;
    let f: Vec<&str> = s.get(close + 1..)?.split_ascii_whitespace().collect();
    let num = |i: usize| -> Option<u64> { f.get(i)?.parse().ok() };
    Some(Stat {
        pid,
        state: f.first()?.chars().next()?,
        ppid: num(1)? as u32,
        pgrp: num(2)? as u32,
        ticks: num(11)? + num(12)?,
        start: num(19)?,
        rss_pages: num(21)?,
        threads: num(17)?,
    })
}

/// True while process `pid` runs. A zombie counts as gone: it only waits for its parent,
/// and serves nothing.
pub fn running(pid: u32) -> bool {
    read_stat(pid).is_some_and(|st| st.state != 'Z')
}

pub fn read_stat(pid: u32) -> Option<Stat> {
    // Read once after every spawn: open, read, close (`read_to_string` took a statx and
    // six growing reads).
    let mut buf = [0u8; 1024];
    parse_stat(&read_small(&format!("/proc/{pid}/stat"), &mut buf).ok()?)
}

/// CPU ticks and resident bytes summed over a process group.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub ticks: u64,
    pub rss: u64,
}

/// Usage summed per process group, for the groups in `wanted` (each led by an app's main
/// process). Walks down from each leader through /proc/PID/task/TID/children, and also
/// from the daemon's own children (orphaned descendants come back to it as subreaper), so
/// it reads only the apps' processes, never the whole machine: about two small reads per
/// process of the apps. A descendant that left the app's group (setsid) is not counted.
pub fn usage_by_group(wanted: &HashMap<u32, ()>) -> HashMap<u32, Usage> {
    let mut out: HashMap<u32, Usage> = HashMap::with_capacity(wanted.len());
    if wanted.is_empty() {
        return out;
    }
    let page = page_size();
    let mut buf = [0u8; 4096];
    let mut stack: Vec<u32> = wanted.keys().copied().collect();
    let me = std::process::id();
    stack.extend(
        children(me, 1, &mut buf)
            .into_iter()
            .filter(|p| !wanted.contains_key(p)),
    );
    let mut seen: std::collections::HashSet<u32> = std::collections::HashSet::new();
    while let Some(pid) = stack.pop() {
        if !seen.insert(pid) {
            continue;
        }
        let Ok(text) = read_small(&format!("/proc/{pid}/stat"), &mut buf) else {
            continue;
        };
        let Some(st) = parse_stat(&text) else {
            continue;
        };
        if st.state == 'Z' || !wanted.contains_key(&st.pgrp) {
            continue;
        }
        let u = out.entry(st.pgrp).or_default();
        u.ticks += st.ticks;
        u.rss += st.rss_pages * page;
        stack.extend(children(pid, st.threads, &mut buf));
    }
    out
}

/// The children of `pid`, from each of its threads' `children` file (a child belongs to
/// the thread that forked it).
fn children(pid: u32, threads: u64, buf: &mut [u8]) -> Vec<u32> {
    let parse = |t: &str| -> Vec<u32> {
        t.split_ascii_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect()
    };
    if threads <= 1 {
        return read_all(&format!("/proc/{pid}/task/{pid}/children"), buf)
            .map(|t| parse(&t))
            .unwrap_or_default();
    }
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for tid in dir.flatten() {
        let tid = tid.file_name();
        let Some(tid) = tid.to_str() else { continue };
        if let Ok(t) = read_all(&format!("/proc/{pid}/task/{tid}/children"), buf) {
            out.extend(parse(&t));
        }
    }
    out
}

/// Reads a /proc file of any length (a children list can be long) without the size probe
/// of `read_to_string`: an empty file costs one read.
fn read_all(path: &str, buf: &mut [u8]) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut out = String::new();
    loop {
        let n = f.read(buf)?;
        if n == 0 {
            return Ok(out);
        }
        out.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
}

/// Reads a small /proc file with open, read, close. `read_to_string` would add a statx
/// and an lseek per file for a size hint that /proc does not give: with every process on
/// the machine read on each `ls`, that doubled the syscalls. /proc/PID/stat is produced
/// whole by its first read, and is far shorter than `buf`.
/// A command name that is not UTF-8 must not hide the process: it is read lossily.
fn read_small<'a>(path: &str, buf: &'a mut [u8]) -> std::io::Result<std::borrow::Cow<'a, str>> {
    use std::io::Read;
    let n = std::fs::File::open(path)?.read(buf)?;
    Ok(String::from_utf8_lossy(&buf[..n]))
}

/// One variable of the environment a process was started with (/proc/PID/environ, which
/// keeps it even when the program changed its own copy).
pub fn start_env(pid: u32, key: &str) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    env_value(&raw, key)
}

/// `KEY=value` among NUL-separated entries.
pub fn env_value(raw: &[u8], key: &str) -> Option<String> {
    raw.split(|&b| b == 0).find_map(|e| {
        let e = std::str::from_utf8(e).ok()?;
        let (k, v) = e.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// Whether the process's main thread waits in epoll: a Node app has run its script's top
/// level and entered its event loop (where its signal handlers are in place). `None` when
/// the process is gone. wchan reads `0` while the thread runs, races, or is hidden;
/// /proc/PID/syscall then may still name the call it waits in.
pub fn in_event_loop(pid: u32) -> Option<bool> {
    read_stat(pid).filter(|s| s.state != 'Z')?;
    let w = std::fs::read_to_string(format!("/proc/{pid}/wchan")).unwrap_or_default();
    if w.contains("epoll") {
        return Some(true);
    }
    if !w.is_empty() && w != "0" {
        return Some(false);
    }
    let call = std::fs::read_to_string(format!("/proc/{pid}/syscall")).unwrap_or_default();
    let nr = call
        .split_ascii_whitespace()
        .next()
        .and_then(|n| n.parse::<i64>().ok());
    Some(nr.is_some_and(is_epoll_wait))
}

/// epoll_wait, epoll_pwait and epoll_pwait2 (x86_64); epoll_pwait and epoll_pwait2
/// (aarch64).
fn is_epoll_wait(nr: i64) -> bool {
    if cfg!(target_arch = "x86_64") {
        matches!(nr, 232 | 281 | 441)
    } else if cfg!(target_arch = "aarch64") {
        matches!(nr, 22 | 441)
    } else {
        false
    }
}

pub fn page_size() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
        .ok()
        .flatten()
        .map(|v| v as u64)
        .unwrap_or(4096)
}

pub fn clock_ticks() -> u64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map(|v| v as u64)
        .unwrap_or(100)
}

/// Live process-group leaders (pid = pgid: how every app starts) whose environment holds
/// `must` (a whole `KEY=VALUE`): their pid, start time and the value of `key` there. One
/// pass over /proc, for finding apps that were spawned but never recorded.
pub fn leaders_with_env(must: &str, key: &str) -> Vec<(u32, u64, String)> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let prefix = format!("{key}=");
    let mut out = Vec::new();
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Some(st) = read_stat(pid).filter(|st| st.pgrp == pid && st.state != 'Z') else {
            continue;
        };
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let mut found = false;
        let mut value = None;
        for var in env.split(|&b| b == 0) {
            if var == must.as_bytes() {
                found = true;
            } else if let Some(v) = var.strip_prefix(prefix.as_bytes()) {
                value = Some(String::from_utf8_lossy(v).into_owned());
            }
        }
        if let (true, Some(v)) = (found, value) {
            out.push((pid, st.start, v));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_names() {
        let line = "4242 (my (weird) app) S 1 4242 4242 0 -1 4194560 1000 0 0 0 \
                    150 25 0 0 20 0 1 0 987654 12345678 321 18446744073709551615 \
                    1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        let st = parse_stat(line).unwrap();
        assert_eq!(st.pid, 4242);
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.pgrp, 4242);
        assert_eq!(st.ticks, 175);
        assert_eq!(st.start, 987654);
        assert_eq!(st.rss_pages, 321);
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(parse_stat("12 (x) S 1 2"), None);
        assert_eq!(parse_stat(""), None);
        assert_eq!(parse_stat("garbage"), None);
    }

    #[test]
    fn reads_itself() {
        let me = std::process::id();
        let st = read_stat(me).unwrap();
        assert_eq!(st.pid, me);
        assert!(st.rss_pages > 0);
    }

    #[test]
    fn environ_entries() {
        let raw = b"A=1\0NODE_UNIQUE_ID=7\0B=x=y\0";
        assert_eq!(env_value(raw, "NODE_UNIQUE_ID").as_deref(), Some("7"));
        assert_eq!(env_value(raw, "B").as_deref(), Some("x=y"));
        assert_eq!(env_value(raw, "C"), None);
    }
}
