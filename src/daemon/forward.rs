//! The container runtime's output: every app's stdout and stderr copied to the runtime's
//! own stdout and stderr as whole lines in the chosen format (so `docker logs` and
//! `kubectl logs` show them), and the runtime's own log lines beside them.
//!
//! It never waits. Both streams are non-blocking descriptors of our own (os/stdio.rs): when
//! the container's stdout takes nothing, the lines of that turn are dropped and counted,
//! and a line saying how many goes out as soon as it takes data again. Neither an app nor
//! the supervisor's loop is ever held by a slow log reader. A line cut by a short write is
//! finished first, so what reaches the reader is always whole lines.
//!
//! Formats are pm2-runtime's (lib/API/Log.js): raw, `ID|NAME | ` prefixes, key=value and
//! JSON. The pure parts (line assembly, formats, UTC time) have unit tests below.

use std::cell::RefCell;
use std::collections::HashMap;
use std::os::fd::OwnedFd;

use nix::errno::Errno;

use crate::logs;
use crate::os::sys;
use crate::spec::datefmt::DateFormat;
use crate::spec::runtime::Format;

/// The most of a cut line kept to finish once the stream takes data again.
const PENDING_CAP: usize = 256 * 1024;

/// One of the runtime's two output streams.
struct Stream {
    fd: Option<OwnedFd>,
    /// The rest of a line a short write cut, written before anything else.
    pending: Vec<u8>,
    /// Lines dropped since the stream last took data.
    dropped: u64,
    /// Lines dropped in all, for the last line of the runtime.
    total_dropped: u64,
}

impl Stream {
    fn new(fd: Option<OwnedFd>) -> Stream {
        Stream {
            fd,
            pending: Vec::new(),
            dropped: 0,
            total_dropped: 0,
        }
    }

    /// Writes what it can of `data` at once. `Ok(n)` bytes taken; `Err(())` when the stream
    /// takes nothing now (full) or never again (closed).
    fn try_write(&self, data: &[u8]) -> Result<usize, ()> {
        let Some(fd) = &self.fd else {
            return Err(());
        };
        let mut at = 0;
        while at < data.len() {
            match nix::unistd::write(fd, &data[at..]) {
                Ok(0) => break,
                Ok(n) => at += n,
                Err(Errno::EINTR) => continue,
                Err(_) if at > 0 => break,
                Err(_) => return Err(()),
            }
        }
        Ok(at)
    }

    /// Finishes a cut line. True when nothing is pending any more.
    fn flush_pending(&mut self) -> bool {
        if self.pending.is_empty() {
            return true;
        }
        if let Ok(n) = self.try_write(&self.pending) {
            self.pending.drain(..n);
        }
        self.pending.is_empty()
    }

    /// Writes `batch` (whole lines) or drops it; `notice` is the line that tells of earlier
    /// drops, in the stream's format.
    fn write(&mut self, batch: &[u8], notice: impl FnOnce(u64) -> Vec<u8>) {
        if batch.is_empty() {
            return;
        }
        let lines = count_lines(batch);
        if !self.flush_pending() {
            self.drop_lines(lines);
            return;
        }
        if self.dropped > 0 {
            let text = notice(self.dropped);
            match self.try_write(&text) {
                Ok(n) if n == text.len() => self.dropped = 0,
                Ok(n) => {
                    self.dropped = 0;
                    self.keep_cut(&text[n..]);
                    self.drop_lines(lines);
                    return;
                }
                Err(()) => {
                    self.drop_lines(lines);
                    return;
                }
            }
        }
        match self.try_write(batch) {
            Ok(n) if n == batch.len() => {}
            Ok(n) => {
                let rest = &batch[n..];
                let cut_end = logs::find_newline(rest).map_or(rest.len(), |i| i + 1);
                self.keep_cut(&rest[..cut_end]);
                self.drop_lines(count_lines(&rest[cut_end..]));
            }
            Err(()) => self.drop_lines(lines),
        }
    }

    fn keep_cut(&mut self, rest: &[u8]) {
        let keep = rest.len().min(PENDING_CAP);
        self.pending.extend_from_slice(&rest[..keep]);
        if keep < rest.len() {
            // A giant line is ended rather than kept whole.
            self.pending.push(b'\n');
        }
    }

    fn drop_lines(&mut self, n: u64) {
        self.dropped += n;
        self.total_dropped += n;
    }
}

fn count_lines(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}

/// The runtime's stdout and stderr, shared by the line forwarder and the daemon's `log`.
struct Stdio {
    format: Format,
    out: Stream,
    err: Stream,
}

thread_local! {
    // The daemon is one thread; `log` is a free function, so the streams live here.
    static STDIO: RefCell<Option<Stdio>> = const { RefCell::new(None) };
}

/// From now on this process is a runtime: its log lines and its apps' output go to its own
/// stdout and stderr, non-blocking, in `format`.
pub fn install(format: Format) {
    let stdio = Stdio {
        format,
        out: Stream::new(crate::os::stdio::nonblocking(1)),
        err: Stream::new(crate::os::stdio::nonblocking(2)),
    };
    STDIO.with(|s| *s.borrow_mut() = Some(stdio));
}

/// Writes one of the runtime's own lines (the daemon's log: started, exited, restarting…).
/// False when this process is not a runtime; the caller writes it to stderr then.
pub fn log_line(text: &str) -> bool {
    STDIO.with(|s| {
        let mut s = s.borrow_mut();
        let Some(s) = s.as_mut() else {
            return false;
        };
        let format = s.format;
        let line = own_line(format, sys::wall_ms(), text);
        // pm2-runtime writes its own lines to stdout except in raw mode, where ward keeps
        // them on stderr with the daemon's timestamp (stdout stays the apps' own output).
        let stream = if format == Format::Raw {
            &mut s.err
        } else {
            &mut s.out
        };
        stream.write(&line, |n| drop_notice(format, n));
        true
    })
}

/// A process event (logs.rs `process_event_line`), written by a runtime whose format is
/// JSON, as pm2-runtime --json does; in the other formats the runtime's own lines say it.
pub fn process_event(status: &str, app_name: &str) {
    STDIO.with(|s| {
        let mut s = s.borrow_mut();
        let Some(s) = s.as_mut().filter(|s| s.format == Format::Json) else {
            return;
        };
        let mut line = logs::process_event_line(sys::wall_ms(), status, app_name);
        line.push(b'\n');
        s.out.write(&line, |n| drop_notice(Format::Json, n));
    })
}

fn write_batches(out: &[u8], err: &[u8]) {
    STDIO.with(|s| {
        if let Some(s) = s.borrow_mut().as_mut() {
            let format = s.format;
            s.out.write(out, |n| drop_notice(format, n));
            s.err.write(err, |n| drop_notice(format, n));
        }
    })
}

/// True while a cut line waits for a stream to take data (the loop then looks again soon).
pub fn pending() -> bool {
    STDIO.with(|s| {
        s.borrow()
            .as_ref()
            .is_some_and(|s| !s.out.pending.is_empty() || !s.err.pending.is_empty())
    })
}

/// Another try at cut lines, from the loop's timer.
pub fn retry() {
    STDIO.with(|s| {
        if let Some(s) = s.borrow_mut().as_mut() {
            s.out.flush_pending();
            s.err.flush_pending();
        }
    })
}

/// Lines dropped in all because a stream was full.
pub fn dropped() -> u64 {
    STDIO.with(|s| {
        s.borrow()
            .as_ref()
            .map_or(0, |s| s.out.total_dropped + s.err.total_dropped)
    })
}

/// Before exit: cut lines get up to `ms` to go out.
pub fn finish(ms: u64) {
    let until = sys::mono_ms() + ms;
    while pending() && sys::mono_ms() < until {
        retry();
        std::thread::sleep(std::time::Duration::from_millis(2));
    }
}

fn own_line(format: Format, now: u64, text: &str) -> Vec<u8> {
    match format {
        Format::Json => {
            let mut v = logs::stream_json_line(text.as_bytes(), now, "ward", None, "ward");
            v.push(b'\n');
            v
        }
        Format::KeyValue => {
            let mut s = String::new();
            let time = DateFormat::parse(logs::KV_TIME);
            logs::kv_prefix(&mut sys::Clock::default(), &time, now, "ward", None, &mut s);
            s.push_str(text);
            s.push('\n');
            s.into_bytes()
        }
        Format::Formatted => format!("{:<4}| {text}\n", "ward").into_bytes(),
        Format::Raw => format!("{} {text}\n", sys::local_timestamp()).into_bytes(),
    }
}

fn drop_notice(format: Format, n: u64) -> Vec<u8> {
    own_line(
        format,
        sys::wall_ms(),
        &format!("{n} lines of output dropped: the runtime's output did not take them"),
    )
}

/// The lines one pipe still owes: what came after its last newline.
struct Partial {
    buf: Vec<u8>,
    app: u32,
    name: String,
    err: bool,
}

/// Turns the bytes read from apps' pipes into whole lines on the runtime's streams.
pub struct Forward {
    format: Format,
    partials: HashMap<u64, Partial>,
    /// pm2's `min_padding`: the `ID|NAME` column only widens.
    width: usize,
    kv_time: DateFormat,
    clock: sys::Clock,
    lines: Vec<u8>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Forward {
    pub fn new(format: Format) -> Forward {
        Forward {
            format,
            partials: HashMap::new(),
            width: 3,
            kv_time: DateFormat::parse(logs::KV_TIME),
            clock: sys::Clock::default(),
            lines: Vec::new(),
            out: Vec::new(),
            err: Vec::new(),
        }
    }

    /// Bytes read from pipe `tok` of app `app` (`err`: its stderr); complete lines go out
    /// now, the rest waits for its newline.
    pub fn feed(&mut self, tok: u64, app: u32, name: &str, err: bool, data: &[u8]) {
        let p = self.partials.entry(tok).or_insert_with(|| Partial {
            buf: Vec::new(),
            app,
            name: name.to_string(),
            err,
        });
        self.lines.clear();
        logs::assemble(&mut p.buf, data, b"", &mut self.lines);
        if p.buf.is_empty() {
            // Nothing waits: no need to remember the pipe (keeps the map to live partials).
            self.partials.remove(&tok);
        }
        self.emit(app, name, err);
    }

    /// Pipe `tok` is closed: its last unfinished line goes out as a line.
    pub fn close(&mut self, tok: u64) {
        let Some(mut p) = self.partials.remove(&tok) else {
            return;
        };
        self.lines.clear();
        logs::finish(&mut p.buf, &mut self.lines);
        self.emit(p.app, &p.name, p.err);
    }

    /// The runtime ends: every unfinished line goes out as a line.
    pub fn close_all(&mut self) {
        let toks: Vec<u64> = self.partials.keys().copied().collect();
        for tok in toks {
            self.close(tok);
        }
    }

    fn emit(&mut self, app: u32, name: &str, err: bool) {
        if self.lines.is_empty() {
            return;
        }
        self.out.clear();
        self.err.clear();
        let now = sys::wall_ms();
        let mut prefix = String::new();
        match self.format {
            Format::Raw => {}
            Format::Formatted => {
                let label = format!("{app}|{name}");
                if label.len() > self.width {
                    self.width = label.len() + 1;
                }
                prefix = format!("{label:<w$} | ", w = self.width);
            }
            Format::KeyValue => logs::kv_prefix(
                &mut self.clock,
                &self.kv_time,
                now,
                name,
                Some((app, err)),
                &mut prefix,
            ),
            Format::Json => {}
        }
        let to = if err && self.format == Format::Raw {
            &mut self.err
        } else {
            &mut self.out
        };
        let mut rest = &self.lines[..];
        while let Some(i) = logs::find_newline(rest) {
            let (line, after) = rest.split_at(i + 1);
            rest = after;
            if self.format == Format::Json {
                let kind = if err { "err" } else { "out" };
                to.extend(logs::stream_json_line(line, now, kind, Some(app), name));
                to.push(b'\n');
            } else {
                to.extend_from_slice(prefix.as_bytes());
                to.extend_from_slice(line);
            }
        }
        write_batches(&self.out, &self.err);
    }

    #[cfg(test)]
    fn take(&mut self) -> (String, String) {
        (
            String::from_utf8_lossy(&std::mem::take(&mut self.out)).into_owned(),
            String::from_utf8_lossy(&std::mem::take(&mut self.err)).into_owned(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raw_keeps_streams_apart_and_lines_whole() {
        let mut f = Forward::new(Format::Raw);
        f.feed(20, 0, "api", false, b"hello\nwor");
        assert_eq!(f.take(), ("hello\n".into(), String::new()));
        f.feed(20, 0, "api", false, b"ld\n");
        assert_eq!(f.take(), ("world\n".into(), String::new()));
        f.feed(21, 0, "api", true, b"oops\n");
        assert_eq!(f.take(), (String::new(), "oops\n".into()));
        f.feed(21, 0, "api", true, b"tail");
        f.close(21);
        assert_eq!(f.take(), (String::new(), "tail\n".into()));
    }

    #[test]
    fn formatted_prefix_widens_as_pm2() {
        let mut f = Forward::new(Format::Formatted);
        f.feed(20, 0, "api", false, b"a\n");
        assert_eq!(f.take().0, "0|api  | a\n");
        f.feed(22, 1, "w", true, b"b\n");
        assert_eq!(f.take().0, "1|w    | b\n");
        // pm2 widens only past the width: `0|t` fits the first 3 columns.
        let mut f = Forward::new(Format::Formatted);
        f.feed(20, 0, "t", false, b"out line\n");
        assert_eq!(f.take().0, "0|t | out line\n");
    }

    #[test]
    fn key_value_and_json_lines() {
        let mut f = Forward::new(Format::KeyValue);
        f.feed(20, 3, "api", true, b"x y\n");
        let (out, _) = f.take();
        assert!(out.starts_with("timestamp="), "{out}");
        assert!(
            out.ends_with(" app=api id=3 type=error message=x y\n"),
            "{out}"
        );
        let mut f = Forward::new(Format::Json);
        f.feed(20, 3, "api", false, b"say \"hi\"\r\nnext\n");
        let (out, _) = f.take();
        let lines: Vec<serde_json::Value> = out
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert_eq!(lines[0]["message"], "say \"hi\"");
        assert_eq!(lines[0]["type"], "out");
        assert_eq!(lines[0]["process_id"], 3);
        assert_eq!(lines[0]["app_name"], "api");
        assert!(lines[1]["timestamp"].as_str().unwrap().ends_with('Z'));
    }

    #[test]
    fn a_full_stream_drops_whole_lines_and_counts_them() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let flags = nix::fcntl::OFlag::O_NONBLOCK;
        nix::fcntl::fcntl(
            std::os::fd::AsRawFd::as_raw_fd(&w),
            nix::fcntl::FcntlArg::F_SETFL(flags),
        )
        .unwrap();
        let mut s = Stream::new(Some(w));
        let line = vec![b'x'; 1000];
        let mut batch = Vec::new();
        for _ in 0..200 {
            batch.extend_from_slice(&line);
            batch.push(b'\n');
        }
        // 200 KB into a 64 KiB pipe: a line is cut and kept, the rest dropped.
        s.write(&batch, |_| Vec::new());
        assert!(s.dropped > 100, "dropped {}", s.dropped);
        assert!(!s.pending.is_empty());
        assert!(s.pending.ends_with(b"\n"));
        // Still full: the next batch is dropped whole.
        let before = s.dropped;
        s.write(b"more\n", |_| Vec::new());
        assert_eq!(s.dropped, before + 1);
        // The reader drains: the cut line is finished, then the notice, then new lines.
        let mut drained = Vec::new();
        let mut buf = vec![0u8; 1 << 16];
        loop {
            match nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut buf) {
                Ok(n) if n > 0 => drained.extend_from_slice(&buf[..n]),
                _ => break,
            }
            if drained.len() >= 65536 {
                break;
            }
        }
        s.write(b"after\n", |n| format!("dropped {n}\n").into_bytes());
        let mut tail = Vec::new();
        if let Ok(n) = nix::unistd::read(std::os::fd::AsRawFd::as_raw_fd(&r), &mut buf) {
            tail.extend_from_slice(&buf[..n]);
        }
        drained.extend_from_slice(&tail);
        let text = String::from_utf8(drained).unwrap();
        for l in text.lines() {
            assert!(
                l.len() == 1000 || l.starts_with("dropped ") || l == "after",
                "a line was cut: {} bytes",
                l.len()
            );
        }
        assert!(
            text.ends_with(&format!("dropped {}\nafter\n", before + 1)),
            "{}",
            &text[text.len().saturating_sub(100)..]
        );
    }
}
