//! Where an app's output goes: log files opened for appending, line assembly with
//! timestamps, and built-in rotation (rename + reopen, never copytruncate).
//!
//! A write that fails (full disk, unwritable file) never stops the daemon or the app: the
//! bytes are counted as dropped, the failure is reported once, and writing resumes when the
//! file accepts data again (or after `reloadLogs` re-opens it).
//!
//! Rotation happens only on a line boundary, so no line is lost or split across files.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result, os};
use crate::spec::config::log_stem;

/// A partial line longer than this is written out as a line of its own: an app that never
/// prints a newline cannot make the daemon hold unbounded memory.
pub const LINE_CAP: usize = 64 * 1024;
/// Rotated files kept when rotation is on and no retain count is given (pm2-logrotate's).
pub const DEFAULT_RETAIN: u32 = 30;

/// pm2 turns these into "no file at all".
pub fn is_discard(path: &str) -> bool {
    path == "/dev/null" || path == "NULL"
}

/// When to rotate a file and how many rotated files to keep.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rotation {
    pub max_size: u64,
    pub retain: u32,
}

/// Daemon-wide defaults from `$WARD_HOME/config.json`: `{"max_log_size": "10M",
/// "log_retain": 5}` (a size is bytes or a string with K, M or G).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Defaults {
    pub max_log_size: Option<u64>,
    pub log_retain: Option<u32>,
}

impl Defaults {
    /// Reads the file; a missing file means no defaults, a bad one is an error to log.
    pub fn load(path: &Path) -> Result<Defaults> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Size {
            Bytes(u64),
            Text(String),
        }
        #[derive(Deserialize, Default)]
        struct File {
            max_log_size: Option<Size>,
            log_retain: Option<u32>,
        }
        let text = match crate::os::trust::read(path) {
            Ok(t) => String::from_utf8_lossy(&t).into_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Defaults::default()),
            Err(e) => {
                return Err(Error::unable(
                    format_args!("read {}", path.display()),
                    os(&e),
                ));
            }
        };
        // Other keys belong to other features; only ours are read here.
        let f: File = crate::json::from_text(&text)
            .map_err(|e| Error::unable(format_args!("read {}", path.display()), e))?;
        let max_log_size = match f.max_log_size {
            None => None,
            Some(Size::Bytes(n)) => Some(n),
            Some(Size::Text(s)) => Some(
                parse_size(&s)
                    .map_err(|e| Error::unable(format_args!("read {}", path.display()), e))?,
            ),
        };
        Ok(Defaults {
            max_log_size,
            log_retain: f.log_retain,
        })
    }

    /// The rotation an app gets: its own settings, else the daemon-wide ones.
    pub fn rotation(&self, max_log_size: Option<u64>, log_retain: Option<u32>) -> Option<Rotation> {
        let max_size = max_log_size.or(self.max_log_size).filter(|&n| n > 0)?;
        Some(Rotation {
            max_size,
            retain: log_retain.or(self.log_retain).unwrap_or(DEFAULT_RETAIN),
        })
    }
}

/// `10M`, `512K`, `1G`, `1.5M`, `4096` (bytes); `KB`/`MB`/`GB` and lower case too.
pub fn parse_size(s: &str) -> Result<u64> {
    let t = s.trim();
    let lower = t.to_ascii_lowercase();
    let body = lower.strip_suffix('b').unwrap_or(&lower);
    let (num, mult) = match body.chars().last() {
        Some('k') => (&body[..body.len() - 1], 1u64 << 10),
        Some('m') => (&body[..body.len() - 1], 1 << 20),
        Some('g') => (&body[..body.len() - 1], 1 << 30),
        _ => (body, 1),
    };
    match num.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok((n * mult as f64) as u64),
        _ => Err(Error::new(format!(
            "invalid size {s:?}: expected a number of bytes or one with K, M or G (10M)"
        ))),
    }
}

/// pm2's default log paths: `logs/NAME-out.log`, `logs/NAME-error.log` (instances.rs
/// makes them `NAME-out-ID.log` for copies that do not merge their logs).
pub fn default_paths(logs: &Path, name: &str) -> (PathBuf, PathBuf) {
    let stem = log_stem(name);
    (
        logs.join(format!("{stem}-out.log")),
        logs.join(format!("{stem}-error.log")),
    )
}

/// pm2's combined log for `-l` without a path: `logs/NAME.log`.
pub fn default_combined(logs: &Path, name: &str) -> PathBuf {
    logs.join(format!("{}.log", log_stem(name)))
}

/// The files of one app.
pub struct Paths {
    pub out: PathBuf,
    pub err: PathBuf,
    pub all: Option<PathBuf>,
}

/// Where an app's output goes: its own paths, else pm2's defaults (instances.rs has made
/// them per copy already where copies do not merge their logs). `log_file` is empty,
/// `false`, `/dev/null` or `NULL` for none, `true` for the default, and relative to the
/// logs folder. `disable_logs` discards everything.
pub fn app_paths(logs: &Path, spec: &crate::spec::config::AppSpec) -> Paths {
    if spec.disable_logs {
        let none = PathBuf::from("/dev/null");
        return Paths {
            out: none.clone(),
            err: none,
            all: None,
        };
    }
    let (def_out, def_err) = default_paths(logs, &spec.name);
    let pick = |p: &str, d: PathBuf| if p.is_empty() { d } else { PathBuf::from(p) };
    let all = match spec.log_file.as_str() {
        "" | "false" => None,
        p if is_discard(p) => None,
        "true" => Some(default_combined(logs, &spec.name)),
        p => Some(logs.join(p)),
    };
    Paths {
        out: pick(&spec.out_file, def_out),
        err: pick(&spec.error_file, def_err),
        all,
    }
}

/// The first `\n` in `s`, eight bytes at a time (a byte-by-byte search is most of the cost
/// of timestamping a flood of short lines).
pub fn find_newline(s: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;
    const NL: u64 = ONES * b'\n' as u64;
    let mut at = 0;
    for chunk in s.chunks_exact(8) {
        let Ok(bytes) = <[u8; 8]>::try_from(chunk) else {
            break;
        };
        // A zero byte in `w` is a newline in `chunk` (the classic has-zero-byte test).
        let w = u64::from_le_bytes(bytes) ^ NL;
        if w.wrapping_sub(ONES) & !w & HIGHS != 0 {
            break;
        }
        at += 8;
    }
    s[at..].iter().position(|&b| b == b'\n').map(|i| at + i)
}

/// Appends to `out` every complete line of what `partial` held plus `data`, each preceded by
/// `prefix`, and keeps the incomplete tail in `partial` (with the prefix of the moment its
/// first byte came, so a line carries the time it started). A tail longer than `LINE_CAP`
/// is written as a line of its own.
pub fn assemble(partial: &mut Vec<u8>, data: &[u8], prefix: &[u8], out: &mut Vec<u8>) {
    let mut rest = data;
    while let Some(i) = find_newline(rest) {
        let (line, after) = rest.split_at(i + 1);
        if partial.is_empty() {
            out.extend_from_slice(prefix);
        } else {
            out.extend_from_slice(partial);
            partial.clear();
        }
        out.extend_from_slice(line);
        rest = after;
    }
    if !rest.is_empty() {
        if partial.is_empty() {
            partial.extend_from_slice(prefix);
        }
        partial.extend_from_slice(rest);
        if partial.len() >= LINE_CAP {
            out.extend_from_slice(partial);
            out.push(b'\n');
            partial.clear();
        }
    }
    if partial.is_empty() && partial.capacity() > 4096 {
        // Per pipe only the waiting partial line is kept, not a buffer sized by the past.
        *partial = Vec::new();
    }
}

/// The time format of pm2's key=value log lines (`pm2 logs --format`, `pm2-runtime
/// --format`).
pub const KV_TIME: &str = "YYYY-MM-DD-HH:mm:ssZZ";

/// The start of a line in pm2's key=value format, up to `message=`: an app's
/// (`app`: its id and whether the line is stderr) `timestamp=… app=NAME id=ID
/// type=out|error message=`, or the supervisor's own, without id and type
/// (formatStream's `app=pm2`).
pub fn kv_prefix(
    clock: &mut crate::os::sys::Clock,
    time: &crate::spec::datefmt::DateFormat,
    now_ms: u64,
    name: &str,
    app: Option<(u32, bool)>,
    out: &mut String,
) {
    out.push_str("timestamp=");
    clock.render(time, now_ms, out);
    match app {
        Some((id, err)) => {
            let kind = if err { "error" } else { "out" };
            out.push_str(&format!(" app={name} id={id} type={kind} message="));
        }
        None => out.push_str(&format!(" app={name} message=")),
    }
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    message: &'a str,
    timestamp: String,
    #[serde(rename = "type")]
    kind: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    process_id: Option<u32>,
    app_name: &'a str,
}

/// One output line as pm2 writes it for `logs --json` and `pm2-runtime --json`: message
/// (without its line end), timestamp (UTC, ISO 8601), type (`out`, `err`, ...), process_id
/// and app_name. No newline after.
pub fn stream_json_line(
    line: &[u8],
    now_ms: u64,
    kind: &str,
    id: Option<u32>,
    name: &str,
) -> Vec<u8> {
    let text = String::from_utf8_lossy(line);
    let message = text.trim_end_matches(['\n', '\r']);
    let v = JsonLine {
        message,
        timestamp: crate::spec::datefmt::utc_iso(now_ms),
        kind,
        process_id: id,
        app_name: name,
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

#[derive(serde::Serialize)]
struct EventLine<'a> {
    timestamp: String,
    #[serde(rename = "type")]
    kind: &'a str,
    status: &'a str,
    app_name: &'a str,
}

/// One of pm2's process events as `pm2-runtime --json` writes it (Log.js jsonStream):
/// timestamp, type `process_event`, status (`start`, `online`, `exit`, `restart
/// overlimit`, `stop`, `restart`, `reload`, `delete`) and app_name. No newline after.
pub fn process_event_line(now_ms: u64, status: &str, name: &str) -> Vec<u8> {
    let v = EventLine {
        timestamp: crate::spec::datefmt::utc_iso(now_ms),
        kind: "process_event",
        status,
        app_name: name,
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// Ends a partial line when its writer goes away.
pub fn finish(partial: &mut Vec<u8>, out: &mut Vec<u8>) {
    if !partial.is_empty() {
        out.extend_from_slice(partial);
        out.push(b'\n');
        *partial = Vec::new();
    }
}

pub struct Sink {
    pub path: PathBuf,
    file: Option<File>,
    /// `/dev/null` or `NULL`: nothing is opened and nothing written.
    discard: bool,
    /// Bytes in the file, for rotation (its size at open plus what we wrote).
    size: u64,
    /// What the app asked for, and what applies to the file open now (only a regular file
    /// rotates: not /dev/full, a FIFO or a terminal).
    wanted_rotation: Option<Rotation>,
    rotation: Option<Rotation>,
    /// The file passed its size in the middle of a line: rotate at the next newline.
    rotate_due: bool,
    rotate_failing: bool,
    /// Set by a rotation, for the daemon to re-open other sinks of the same path (copies
    /// of an app that merge their logs share the file).
    rotated: bool,
    pub dropped: u64,
    failing: bool,
    /// A file in ward's home: opened through os/trust.rs (no symlink followed, ours, 0600).
    /// A path the user gave (`-o`, `-e`, `-l`) is opened as they named it.
    private: bool,
}

impl Sink {
    pub fn open(path: &Path, rotation: Option<Rotation>) -> (Sink, Option<String>) {
        Sink::open_as(path, rotation, false)
    }

    /// `open` for a file inside the home (see `private`).
    pub fn open_private(path: &Path, rotation: Option<Rotation>) -> (Sink, Option<String>) {
        Sink::open_as(path, rotation, true)
    }

    fn open_as(path: &Path, rotation: Option<Rotation>, private: bool) -> (Sink, Option<String>) {
        let discard = is_discard(&path.to_string_lossy());
        let mut s = Sink {
            path: path.to_path_buf(),
            file: None,
            discard,
            size: 0,
            wanted_rotation: rotation,
            rotation,
            rotate_due: false,
            rotate_failing: false,
            rotated: false,
            dropped: 0,
            failing: false,
            private,
        };
        let note = if discard { None } else { s.reopen() };
        (s, note)
    }

    pub fn discards(&self) -> bool {
        self.discard
    }

    /// Did this sink rotate its file since the last call?
    pub fn take_rotated(&mut self) -> bool {
        std::mem::take(&mut self.rotated)
    }

    /// (Re)opens the file by its path (after an external rotation, or when a failing one
    /// may work again); returns a message when that failed.
    pub fn reopen(&mut self) -> Option<String> {
        if self.discard {
            return None;
        }
        let open = || {
            if self.private {
                return crate::os::trust::open(&self.path, crate::os::trust::Open::Append);
            }
            OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)
        };
        // The folder is made only when missing: a mkdir and a stat before each open cost
        // four syscalls per app on a start of 1,000 apps.
        let opened = match open() {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = self.path.parent() {
                    let _ = std::fs::create_dir_all(dir);
                }
                open()
            }
            other => other,
        };
        match opened {
            Ok(f) => {
                let meta = f.metadata().ok();
                self.rotation = self
                    .wanted_rotation
                    .filter(|_| meta.as_ref().is_some_and(|m| m.is_file()));
                self.size = meta.map(|m| m.len()).unwrap_or(0);
                self.file = Some(f);
                None
            }
            Err(e) => {
                self.file = None;
                self.failing = true;
                Some(format!(
                    "unable to open {}: {}",
                    self.path.display(),
                    os(&e)
                ))
            }
        }
    }

    /// Empties the file (`ward flush`). Appending continues at its new end.
    pub fn truncate(&mut self) -> Option<String> {
        if self.discard {
            return None;
        }
        let res = match &self.file {
            Some(f) => f.set_len(0),
            None if self.private => {
                crate::os::trust::open(&self.path, crate::os::trust::Open::Write)
                    .and_then(|f| f.set_len(0))
            }
            None => OpenOptions::new()
                .write(true)
                .open(&self.path)
                .and_then(|f| f.set_len(0)),
        };
        self.size = 0;
        self.rotate_due = false;
        match res {
            Ok(()) => None,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => Some(format!(
                "unable to flush {}: {}",
                self.path.display(),
                os(&e)
            )),
        }
    }

    /// Appends `data`, rotating on the first line boundary once the file has passed its
    /// size. Returns a message the first time something fails and when it works again.
    pub fn write(&mut self, data: &[u8]) -> Option<String> {
        if self.discard || data.is_empty() {
            return None;
        }
        let mut note = None;
        let mut rest = data;
        if self.rotate_due {
            match find_newline(rest) {
                Some(i) => {
                    note = self.append(&rest[..=i]).or(note);
                    rest = &rest[i + 1..];
                    note = self.rotate().or(note);
                }
                None => return self.append(rest),
            }
        }
        while !rest.is_empty() {
            let room = match self.rotation {
                Some(r) => r.max_size.saturating_sub(self.size) as usize,
                None => usize::MAX,
            };
            if rest.len() < room {
                note = self.append(rest).or(note);
                break;
            }
            // This write passes the size: the file ends with the line that passes it.
            let from = room.saturating_sub(1);
            match find_newline(&rest[from..]) {
                Some(i) => {
                    let cut = from + i + 1;
                    note = self.append(&rest[..cut]).or(note);
                    note = self.rotate().or(note);
                    rest = &rest[cut..];
                }
                None => {
                    note = self.append(rest).or(note);
                    self.rotate_due = true;
                    break;
                }
            }
        }
        note
    }

    fn append(&mut self, data: &[u8]) -> Option<String> {
        if self.file.is_none() && self.failing {
            // Try again: the folder may have come back.
            self.reopen();
        }
        let res = match &mut self.file {
            Some(f) => f.write_all(data),
            None => Err(std::io::Error::from_raw_os_error(libc::EBADF)),
        };
        match res {
            Ok(()) => {
                self.size += data.len() as u64;
                if self.rotation.is_some() {
                    // Other writers (merged copies) may share the file: its size says.
                    if let Some(m) = self.file.as_ref().and_then(|f| f.metadata().ok()) {
                        self.size = m.len();
                    }
                }
                if self.failing {
                    self.failing = false;
                    Some(format!(
                        "writing to {} works again; {} bytes were dropped so far",
                        self.path.display(),
                        self.dropped
                    ))
                } else {
                    None
                }
            }
            Err(e) => {
                // A short write may have put part of it in: the file's real size says.
                if let Some(m) = self.file.as_ref().and_then(|f| f.metadata().ok()) {
                    self.size = m.len();
                }
                self.dropped += data.len() as u64;
                if self.failing {
                    None
                } else {
                    self.failing = true;
                    Some(format!(
                        "unable to write to {}: {}; dropping output until it works",
                        self.path.display(),
                        os(&e)
                    ))
                }
            }
        }
    }

    /// Renames the file to `STEM__YYYY-MM-DD_HH-mm-ss.EXT` (made unique), opens a fresh
    /// one, and deletes the oldest rotated files beyond the retain count.
    fn rotate(&mut self) -> Option<String> {
        self.rotate_due = false;
        let r = self.rotation?;
        let (dir, stem, ext) = split_name(&self.path);
        // Room is made first, so that at no moment more than `retain` rotated files exist
        // (a reader, or a disk, sees at most that many even between rename and prune).
        prune(&dir, &stem, &ext, r.retain.saturating_sub(1));
        let mut stamp = String::new();
        crate::os::sys::Clock::default().render(
            &crate::spec::datefmt::DateFormat::parse("YYYY-MM-DD_HH-mm-ss"),
            crate::os::sys::wall_ms(),
            &mut stamp,
        );
        // Within one second, a counter above every kept file of that second keeps the
        // names in rotation order (pruning may have removed the lower ones).
        let base = format!("{stem}__{stamp}");
        let mut next = None;
        for f in rotated_files(&dir, &stem, &ext) {
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if let Some(rest) = name.strip_prefix(&base) {
                let rest = rest.strip_suffix(ext.as_str()).unwrap_or(rest);
                let n = rest
                    .strip_prefix('_')
                    .and_then(|d| d.parse::<u32>().ok())
                    .unwrap_or(0);
                next = Some(next.map_or(n + 1, |m: u32| m.max(n + 1)));
            }
        }
        let mut target = match next {
            None => dir.join(format!("{base}{ext}")),
            Some(n) => dir.join(format!("{base}_{n:06}{ext}")),
        };
        while target.exists() {
            // Something else took the name; go on counting.
            let n = next.unwrap_or(0) + 1;
            next = Some(n);
            target = dir.join(format!("{base}_{n:06}{ext}"));
        }
        if let Err(e) = std::fs::rename(&self.path, &target) {
            if self.rotate_failing {
                return None;
            }
            self.rotate_failing = true;
            return Some(format!(
                "unable to rotate {}: {}",
                self.path.display(),
                os(&e)
            ));
        }
        self.rotate_failing = false;
        self.rotated = true;
        let note = self.reopen();
        // Only does something when `retain` is 0 or another writer rotated meanwhile.
        prune(&dir, &stem, &ext, r.retain);
        note
    }
}

/// Is `p` a rotated copy of the log file `log` (`dir/api-out__STAMP.log` for
/// `dir/api-out.log`)? For the watcher: ward's own files are never a reason to restart.
pub fn is_rotated_of(log: &Path, p: &Path) -> bool {
    let (dir, stem, ext) = split_name(log);
    p.parent() == Some(dir.as_path())
        && p.file_name().is_some_and(|n| {
            let n = n.to_string_lossy();
            n.starts_with(&format!("{stem}__")) && n.ends_with(&ext)
        })
}

/// `/a/b/api-out.log` → (`/a/b`, `api-out`, `.log`).
fn split_name(path: &Path) -> (PathBuf, String, String) {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    match name.rfind('.') {
        Some(i) if i > 0 => (dir, name[..i].to_string(), name[i..].to_string()),
        _ => (dir, name, String::new()),
    }
}

/// The rotated files of `stem`, oldest first (their names sort by time, then counter).
pub fn rotated_files(dir: &Path, stem: &str, ext: &str) -> Vec<PathBuf> {
    let prefix = format!("{stem}__");
    let mut found: Vec<PathBuf> = match std::fs::read_dir(dir) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter(|e| {
                let n = e.file_name();
                let n = n.to_string_lossy();
                n.starts_with(&prefix)
                    && n.ends_with(ext)
                    && n.get(prefix.len()..n.len().saturating_sub(ext.len()))
                        .is_some_and(is_stamp)
            })
            .map(|e| e.path())
            .collect(),
        Err(_) => Vec::new(),
    };
    found.sort();
    found
}

/// `2026-11-25_20-01-02` or `2026-11-25_20-01-02_007`: only names rotation made.
fn is_stamp(s: &str) -> bool {
    let b = s.as_bytes();
    (b.len() == 19 || (b.len() > 20 && b[19] == b'_'))
        && b.iter().enumerate().all(|(i, &c)| match i {
            4 | 7 | 13 | 16 => c == b'-',
            10 | 19 => c == b'_',
            _ => c.is_ascii_digit(),
        })
}

fn prune(dir: &Path, stem: &str, ext: &str, retain: u32) {
    let files = rotated_files(dir, stem, ext);
    let extra = files.len().saturating_sub(retain as usize);
    for f in &files[..extra] {
        let _ = std::fs::remove_file(f);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str], prefix: &str) -> (String, String) {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        for c in chunks {
            assemble(&mut partial, c.as_bytes(), prefix.as_bytes(), &mut out);
        }
        (
            String::from_utf8(out).unwrap(),
            String::from_utf8(partial).unwrap(),
        )
    }

    #[test]
    fn process_events_are_pm2_runtimes_objects() {
        // 2026-11-29T20:29:49.108Z, as pm2-runtime --json printed one.
        let line = process_event_line(1_795_984_189_108, "restart overlimit", "a \"b\"");
        assert_eq!(
            String::from_utf8(line).unwrap(),
            r#"{"timestamp":"2026-11-29T20:29:49.108Z","type":"process_event","status":"restart overlimit","app_name":"a \"b\""}"#
        );
    }

    #[test]
    fn lines_are_whole_and_prefixed_once() {
        assert_eq!(run(&["a\nb\n"], "T "), ("T a\nT b\n".into(), "".into()));
        assert_eq!(
            run(&["abc", "def\n"], "T "),
            ("T abcdef\n".into(), "".into())
        );
        assert_eq!(
            run(&["ab", "c\nde"], "T "),
            ("T abc\n".into(), "T de".into())
        );
        assert_eq!(run(&["\n\n"], ">"), (">\n>\n".into(), "".into()));
        assert_eq!(run(&["x"], ""), ("".into(), "x".into()));
    }

    #[test]
    fn a_line_keeps_the_time_it_started() {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        assemble(&mut partial, b"abc", b"1 ", &mut out);
        assemble(&mut partial, b"def\nghi\n", b"2 ", &mut out);
        assert_eq!(out, b"1 abcdef\n2 ghi\n");
    }

    #[test]
    fn long_partial_lines_are_capped() {
        let mut partial = Vec::new();
        let mut out = Vec::new();
        let big = vec![b'x'; LINE_CAP + 10];
        assemble(&mut partial, &big, b"", &mut out);
        assert_eq!(out.len(), LINE_CAP + 11);
        assert!(partial.is_empty());
        assert_eq!(partial.capacity(), 0);
        let mut out = Vec::new();
        let mut partial = b"tail".to_vec();
        finish(&mut partial, &mut out);
        assert_eq!(out, b"tail\n");
    }

    #[test]
    fn newlines_are_found_at_every_offset() {
        for len in 0..40 {
            for at in 0..=len {
                let mut v = vec![b'x'; len];
                let want = if at < len {
                    v[at] = b'\n';
                    Some(at)
                } else {
                    None
                };
                assert_eq!(find_newline(&v), want, "len {len} at {at}");
                // Bytes that differ from \n only in a bit, and 0x8a, are not newlines.
                let mut w = vec![0x8a; len];
                if at < len {
                    w[at] = b'\n';
                }
                w.iter_mut().take(at).for_each(|b| *b = 0x0b);
                assert_eq!(find_newline(&w), want, "len {len} at {at} (near misses)");
            }
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("10M").unwrap(), 10 << 20);
        assert_eq!(parse_size("10mb").unwrap(), 10 << 20);
        assert_eq!(parse_size("512K").unwrap(), 512 << 10);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert_eq!(parse_size("1.5K").unwrap(), 1536);
        assert!(parse_size("ten").is_err());
        assert!(parse_size("-1M").is_err());
        assert!(parse_size("").is_err());
    }

    #[test]
    fn paths() {
        let (o, e) = default_paths(Path::new("/h/logs"), "my app");
        assert_eq!(o, Path::new("/h/logs/my-app-out.log"));
        assert_eq!(e, Path::new("/h/logs/my-app-error.log"));
        assert_eq!(
            default_combined(Path::new("/l"), "api"),
            Path::new("/l/api.log")
        );
        let spec = crate::spec::config::AppSpec {
            name: "api".into(),
            log_file: "api.log".into(),
            ..Default::default()
        };
        let p = app_paths(Path::new("/l"), &spec);
        assert_eq!(p.all.as_deref(), Some(Path::new("/l/api.log")));
        assert_eq!(p.out, Path::new("/l/api-out.log"));
        let off = crate::spec::config::AppSpec {
            disable_logs: true,
            ..spec
        };
        let p = app_paths(Path::new("/l"), &off);
        assert!(is_discard(&p.out.to_string_lossy()) && p.all.is_none());
        assert!(is_discard("/dev/null") && is_discard("NULL") && !is_discard("null.log"));
        assert_eq!(
            split_name(Path::new("/a/api-out.log")),
            (PathBuf::from("/a"), "api-out".into(), ".log".into())
        );
        assert!(is_rotated_of(
            Path::new("/a/api-out.log"),
            Path::new("/a/api-out__2026-11-25_20-01-02.log")
        ));
        assert!(!is_rotated_of(
            Path::new("/a/api-out.log"),
            Path::new("/b/api-out__2026-11-25_20-01-02.log")
        ));
        assert!(!is_rotated_of(
            Path::new("/a/api-out.log"),
            Path::new("/a/api.js")
        ));
        assert!(is_stamp("2026-11-25_20-01-02"));
        assert!(is_stamp("2026-11-25_20-01-02_007"));
        assert!(!is_stamp("2026-11-25"));
        assert!(!is_stamp("x026-11-25_20-01-02"));
    }

    fn temp_dir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!(
            "ward-logs-unit-{name}-{}-{}",
            std::process::id(),
            crate::os::sys::wall_ms()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    fn contents(dir: &Path) -> Vec<String> {
        let mut files = rotated_files(dir, "x", ".log");
        files.push(dir.join("x.log"));
        files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap_or_default())
            .collect()
    }

    #[test]
    fn rotation_cuts_after_the_line_that_passes_the_size() {
        let dir = temp_dir("rotate");
        let rot = Rotation {
            max_size: 10,
            retain: 10,
        };
        let (mut s, note) = Sink::open(&dir.join("x.log"), Some(rot));
        assert_eq!(note, None);
        assert_eq!(s.write(b"aaaa\nbbbb\ncccc\n"), None);
        assert_eq!(contents(&dir), ["aaaa\nbbbb\n", "cccc\n"]);
        // A write that passes the size in the middle of a line: the rest of the line stays.
        s.write(b"dd");
        s.write(b"ddddddd\nee\n");
        assert_eq!(
            contents(&dir),
            ["aaaa\nbbbb\n", "cccc\nddddddddd\n", "ee\n"]
        );
        // No newline at all: rotation waits for the next one.
        s.write(b"ffffffffffff");
        s.write(b"f\ngg\n");
        assert_eq!(contents(&dir).last().unwrap(), "gg\n");
        assert_eq!(contents(&dir)[2], "ee\nfffffffffffff\n");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn rotation_keeps_the_newest_and_truncate_empties() {
        let dir = temp_dir("retain");
        let rot = Rotation {
            max_size: 4,
            retain: 2,
        };
        let (mut s, _) = Sink::open(&dir.join("x.log"), Some(rot));
        for i in 0..6 {
            s.write(format!("{i}{i}{i}{i}\n").as_bytes());
        }
        s.write(b"77");
        assert_eq!(contents(&dir), ["4444\n", "5555\n", "77"]);
        assert_eq!(s.truncate(), None);
        assert_eq!(contents(&dir).last().unwrap(), "");
        s.write(b"8\n");
        assert_eq!(contents(&dir).last().unwrap(), "8\n");
        // A file that is not regular never rotates, and /dev/null is never opened.
        let (mut n, note) = Sink::open(Path::new("/dev/null"), Some(rot));
        assert!(n.discards() && note.is_none());
        assert_eq!(n.write(b"zzzzzzzzzz\n"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn retain_zero_keeps_no_rotated_file() {
        let dir = temp_dir("retain0");
        let rot = Rotation {
            max_size: 4,
            retain: 0,
        };
        let (mut s, _) = Sink::open(&dir.join("x.log"), Some(rot));
        for i in 0..4 {
            s.write(format!("{i}{i}{i}{i}\n").as_bytes());
        }
        s.write(b"5");
        assert_eq!(contents(&dir), ["5"]);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_failing_file_is_reported_once_and_recovers() {
        let dir = temp_dir("full");
        let link = dir.join("x.log");
        std::os::unix::fs::symlink("/dev/full", &link).unwrap();
        let (mut s, _) = Sink::open(&link, None);
        assert!(s.write(b"a\n").unwrap().contains("unable to write"));
        assert_eq!(s.write(b"b\n"), None);
        assert_eq!(s.dropped, 4);
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(dir.join("real.log"), &link).unwrap();
        assert_eq!(s.reopen(), None);
        assert!(s.write(b"c\n").unwrap().contains("works again"));
        assert_eq!(
            std::fs::read_to_string(dir.join("real.log")).unwrap(),
            "c\n"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn defaults_pick_app_then_daemon() {
        let d = Defaults {
            max_log_size: Some(100),
            log_retain: Some(2),
        };
        assert_eq!(
            d.rotation(None, None),
            Some(Rotation {
                max_size: 100,
                retain: 2
            })
        );
        assert_eq!(d.rotation(Some(5), Some(9)).unwrap().max_size, 5);
        assert_eq!(Defaults::default().rotation(None, Some(3)), None);
        assert_eq!(
            Defaults::default().rotation(Some(7), None).unwrap().retain,
            DEFAULT_RETAIN
        );
    }
}

/// pm2's `log_type: json` line (God/ForkMode.js `transformLogToJson`): one object per
/// chunk of output, as it arrived.
pub fn json_line(data: &[u8], timestamp: &str, kind: &str, id: u32, name: &str, out: &mut Vec<u8>) {
    // pm2's key order (JSON.stringify keeps insertion order).
    let s = |v: &str| serde_json::Value::from(v).to_string();
    out.extend_from_slice(
        format!(
            "{{\"message\":{},\"timestamp\":{},\"type\":{},\"process_id\":{id},\"app_name\":{}}}\n",
            s(&String::from_utf8_lossy(data)),
            s(timestamp),
            s(kind),
            s(name)
        )
        .as_bytes(),
    );
}

#[cfg(test)]
mod json_tests {
    #[test]
    fn iso_dates() {
        assert_eq!(crate::spec::datefmt::utc_iso(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            crate::spec::datefmt::utc_iso(1_796_040_672_345),
            "2026-11-30T12:11:12.345Z"
        );
        let mut v = Vec::new();
        super::json_line(b"hi\n", "T", "out", 3, "api", &mut v);
        assert_eq!(
            String::from_utf8(v).unwrap(),
            "{\"message\":\"hi\\n\",\"timestamp\":\"T\",\"type\":\"out\",\"process_id\":3,\"app_name\":\"api\"}\n"
        );
    }
}
