//! `ward logs`: the last lines of apps' log files, then the new ones as they are written.
//!
//! The client reads the files itself, with the paths from the daemon's table; the daemon
//! only answers the one `List`. Following polls each file every `POLL` (a client that
//! sleeps between looks costs nothing while idle) and opens a file again when its path
//! names a new file (rotation, `reloadLogs` after an external mv) or when it shrank (flush).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use crate::client::cli::{LogStyle, LogsOpts};
use crate::client::{output, talk};
use crate::error::Result;
use crate::home::Home;
use crate::os::sys::Clock;
use crate::spec::datefmt::DateFormat;
use crate::table::Table;

const POLL: Duration = Duration::from_millis(150);
const CHUNK: usize = 64 * 1024;

/// The app a log file is of.
#[derive(Clone)]
struct Who {
    /// `ID|NAME`, pm2's prefix.
    label: String,
    id: u32,
    name: String,
}

struct Source {
    who: Who,
    err: bool,
    path: PathBuf,
    file: Option<File>,
    /// (device, inode) of `file`, to notice that the path names another file now.
    id: (u64, u64),
    /// Where the next unread byte of `file` is.
    pos: u64,
    partial: Vec<u8>,
}

struct Printer {
    style: LogStyle,
    kv_time: DateFormat,
    width: usize,
    raw: bool,
    color: bool,
    stamp: Option<DateFormat>,
    clock: Clock,
    out: String,
    errout: String,
}

impl Printer {
    fn line(&mut self, who: &Who, err: bool, line: &[u8]) {
        match self.style {
            LogStyle::Prefixed => {}
            // pm2's `logs --json` (Log.js jsonStream) and `--format` (formatStream).
            LogStyle::Json => {
                let kind = if err { "err" } else { "out" };
                let now = crate::os::sys::wall_ms();
                let v = crate::logs::stream_json_line(line, now, kind, Some(who.id), &who.name);
                self.out.push_str(&String::from_utf8_lossy(&v));
                self.out.push('\n');
                return;
            }
            LogStyle::KeyValue => {
                if line.is_empty() {
                    return; // pm2 skips empty lines here
                }
                let now = crate::os::sys::wall_ms();
                crate::logs::kv_prefix(
                    &mut self.clock,
                    &self.kv_time,
                    now,
                    &who.name,
                    who.id,
                    err,
                    &mut self.out,
                );
                self.out.push_str(&String::from_utf8_lossy(line));
                self.out.push('\n');
                return;
            }
        }
        let text = String::from_utf8_lossy(line);
        if self.raw {
            let to = if err { &mut self.errout } else { &mut self.out };
            to.push_str(&text);
            to.push('\n');
            return;
        }
        if let Some(f) = &self.stamp {
            if self.color {
                self.out.push_str("\x1b[2m");
            }
            self.clock
                .render(f, crate::os::sys::wall_ms(), &mut self.out);
            self.out.push(' ');
            if self.color {
                self.out.push_str("\x1b[0m");
            }
        }
        if self.color {
            self.out.push_str(if err { "\x1b[31m" } else { "\x1b[32m" });
        }
        self.out
            .push_str(&format!("{:<width$} |", who.label, width = self.width));
        if self.color {
            self.out.push_str("\x1b[0m");
        }
        self.out.push(' ');
        self.out.push_str(&text);
        self.out.push('\n');
    }

    fn flush(&mut self) {
        if !self.errout.is_empty() {
            use std::io::Write;
            let _ = std::io::stderr().write_all(self.errout.as_bytes());
            self.errout.clear();
        }
        if !self.out.is_empty() {
            output::out(&self.out);
            self.out.clear();
        }
    }
}

pub fn run(home: &Home, opts: &LogsOpts) -> Result<i32> {
    let apps = talk::list_apps(home)?;
    let table = Table::from_apps(apps.into_iter().map(|v| v.app).collect(), 0);
    let ids = match &opts.target {
        None => table.ids(),
        Some(t) => table.resolve(t)?,
    };
    let mut sources = Vec::new();
    for id in ids {
        let Some(app) = table.get(id) else { continue };
        let who = Who {
            label: format!("{id}|{}", app.spec.name),
            id,
            name: app.spec.name.clone(),
        };
        let mut add = |path: &str, err: bool| {
            if path.is_empty() || crate::logs::is_discard(path) {
                return;
            }
            sources.push(Source {
                who: who.clone(),
                err,
                path: PathBuf::from(path),
                file: None,
                id: (0, 0),
                pos: 0,
                partial: Vec::new(),
            });
        };
        if !opts.err {
            add(&app.spec.out_file, false);
        }
        if !opts.out {
            add(&app.spec.error_file, true);
        }
    }
    if sources.is_empty() && !table.is_empty() {
        // A container runtime writes no app file unless asked: say where the lines are.
        eprintln!(
            "ward: no log file to show: these apps write none (under `ward runtime` their \
             output goes to its stdout: `docker logs`, `kubectl logs`; --output/--error \
             write files too)"
        );
    }
    // pm2 streams only new lines as JSON or key=value (with --nostream it prints the last
    // lines as usual, CLI.js:920-926).
    let style = if opts.nostream {
        LogStyle::Prefixed
    } else {
        opts.style
    };
    let lines = if style == LogStyle::Prefixed {
        opts.lines
    } else {
        0
    };
    let mut p = Printer {
        style,
        kv_time: DateFormat::parse(crate::logs::KV_TIME),
        width: sources
            .iter()
            .map(|s| s.who.label.chars().count())
            .max()
            .unwrap_or(0)
            .max(10),
        raw: opts.raw,
        color: color(),
        stamp: opts.timestamp.as_deref().map(DateFormat::parse),
        clock: Clock::default(),
        out: String::new(),
        errout: String::new(),
    };
    if !opts.raw && style == LogStyle::Prefixed {
        let what = opts.target.as_deref().unwrap_or("all");
        if opts.lines > 0 {
            p.out.push_str(&format!(
                "[TAILING] Tailing last {} lines for [{what}] process (change the value with \
                 --lines option)\n",
                opts.lines
            ));
        } else if !opts.nostream {
            p.out
                .push_str(&format!("[TAILING] Following [{what}] process\n"));
        }
    }
    // pm2 shows the file written to last at the bottom.
    sources.sort_by_key(|s| std::fs::metadata(&s.path).and_then(|m| m.modified()).ok());
    for s in &mut sources {
        s.open_at_end();
        if lines > 0 {
            s.tail(lines, &mut p);
        }
    }
    p.flush();
    if opts.nostream {
        return Ok(0);
    }
    loop {
        std::thread::sleep(POLL);
        for s in &mut sources {
            s.poll(&mut p);
        }
        p.flush();
    }
}

fn color() -> bool {
    use std::io::IsTerminal;
    std::io::stdout().is_terminal() && crate::client::output::colour_allowed()
}

fn file_id(m: &std::fs::Metadata) -> (u64, u64) {
    (m.dev(), m.ino())
}

impl Source {
    /// Opens the file and places `pos` at its end (the tail reads what is before).
    fn open_at_end(&mut self) {
        if let Ok(f) = File::open(&self.path) {
            if let Ok(m) = f.metadata() {
                self.id = file_id(&m);
                self.pos = m.len();
            }
            self.file = Some(f);
        }
    }

    /// Prints the last `n` complete lines before `pos`. An unfinished last line is left
    /// for following, which prints it once it is whole.
    ///
    /// Reads backwards in fixed blocks to find where those lines start, then forwards to
    /// print them: time linear in the bytes shown, memory one block whatever the line
    /// lengths (a line longer than `LINE_CAP` is shown in `LINE_CAP` pieces, as following
    /// does).
    fn tail(&mut self, n: usize, p: &mut Printer) {
        let Some(f) = &mut self.file else { return };
        let mut buf = vec![0u8; CHUNK];
        let (first, stop) = find_tail(f, self.pos, n, &mut buf);
        if !p.raw {
            p.out
                .push_str(&format!("{} last {n} lines:\n", self.path.display()));
        }
        let mut shown = 0;
        if stop > first && f.seek(SeekFrom::Start(first)).is_ok() {
            let mut line: Vec<u8> = Vec::new();
            let mut left = stop - first;
            while left > 0 {
                let want = (left as usize).min(CHUNK);
                if f.read_exact(&mut buf[..want]).is_err() {
                    break;
                }
                left -= want as u64;
                let mut rest = &buf[..want];
                loop {
                    let nl = crate::logs::find_newline(rest);
                    let seg = &rest[..nl.unwrap_or(rest.len())];
                    // Whole pieces of an overlong line go out as they fill.
                    let mut seg = seg;
                    while line.len() + seg.len() > crate::logs::LINE_CAP {
                        let take = crate::logs::LINE_CAP - line.len();
                        line.extend_from_slice(&seg[..take]);
                        p.line(&self.who, self.err, &line);
                        line.clear();
                        seg = &seg[take..];
                    }
                    line.extend_from_slice(seg);
                    let Some(i) = nl else { break };
                    p.line(&self.who, self.err, &line);
                    shown += 1;
                    line.clear();
                    rest = &rest[i + 1..];
                }
                if p.out.len() + p.errout.len() > 1 << 20 {
                    p.flush();
                }
            }
        }
        if !p.raw && shown > 0 {
            p.out.push('\n');
        }
        self.pos = stop;
    }

    /// Prints what was added since the last look, following the path to a new file.
    fn poll(&mut self, p: &mut Printer) {
        let now = std::fs::metadata(&self.path).ok();
        if self.file.is_none() {
            if now.is_some() {
                // Appeared since: everything in it is new.
                if let Ok(f) = File::open(&self.path) {
                    self.id = f.metadata().map(|m| file_id(&m)).unwrap_or((0, 0));
                    self.file = Some(f);
                    self.pos = 0;
                }
            }
        } else {
            let replaced = now.as_ref().is_some_and(|m| file_id(m) != self.id);
            if replaced {
                // Rotated or moved away: finish the old file, then start the new one.
                self.read_new(p);
                self.end_partial(p);
                self.file = None;
                self.poll(p);
                return;
            }
            let len = self
                .file
                .as_ref()
                .and_then(|f| f.metadata().ok())
                .map_or(0, |m| m.len());
            if len < self.pos {
                // Truncated (flush): what is there now is new.
                self.pos = 0;
                self.partial.clear();
            }
        }
        self.read_new(p);
    }

    fn read_new(&mut self, p: &mut Printer) {
        let Some(f) = &mut self.file else { return };
        let len = f.metadata().map_or(0, |m| m.len());
        if len <= self.pos || f.seek(SeekFrom::Start(self.pos)).is_err() {
            return;
        }
        let mut buf = vec![0u8; CHUNK];
        loop {
            let n = match f.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            self.pos += n as u64;
            let mut rest = &buf[..n];
            while let Some(i) = crate::logs::find_newline(rest) {
                if self.partial.is_empty() {
                    p.line(&self.who, self.err, &rest[..i]);
                } else {
                    self.partial.extend_from_slice(&rest[..i]);
                    let line = std::mem::take(&mut self.partial);
                    p.line(&self.who, self.err, &line);
                }
                rest = &rest[i + 1..];
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() >= crate::logs::LINE_CAP {
                let line = std::mem::take(&mut self.partial);
                p.line(&self.who, self.err, &line);
            }
        }
    }

    fn end_partial(&mut self, p: &mut Printer) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            p.line(&self.who, self.err, &line);
        }
    }
}

/// Where the last `n` complete lines before `end` start, and where they end (after their
/// last newline), scanning `f` backwards one `buf` at a time. No complete line: `(0, 0)`,
/// so that following prints the unfinished one from the start once it ends.
fn find_tail(f: &mut File, end: u64, n: usize, buf: &mut [u8]) -> (u64, u64) {
    let mut at = end;
    let mut stop = None;
    let mut seen = 0;
    while at > 0 {
        let from = at.saturating_sub(buf.len() as u64);
        let len = (at - from) as usize;
        if f.seek(SeekFrom::Start(from)).is_err() || f.read_exact(&mut buf[..len]).is_err() {
            // Unreadable before here: show what lies after.
            return stop.map_or((0, 0), |s| (at, s));
        }
        for i in (0..len).rev() {
            if buf[i] != b'\n' {
                continue;
            }
            let after = from + i as u64 + 1;
            if stop.is_none() {
                stop = Some(after);
            } else {
                seen += 1;
                if seen == n {
                    return (after, stop.unwrap_or(after));
                }
            }
        }
        at = from;
    }
    stop.map_or((0, 0), |s| (0, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_finds_the_last_lines_across_blocks() {
        let dir = std::env::temp_dir().join(format!("ward-tail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.log");
        let cases: [(&[u8], usize, (u64, u64)); 6] = [
            (b"a\nb\nc\n", 2, (2, 6)),
            (b"a\nb\nc\n", 5, (0, 6)),
            (b"a\nb\nc\npart", 1, (4, 6)),
            (b"no newline", 3, (0, 0)),
            (b"", 3, (0, 0)),
            (b"\n\n\n", 2, (1, 3)),
        ];
        for (body, n, want) in cases {
            std::fs::write(&path, body).unwrap();
            let mut f = File::open(&path).unwrap();
            // A tiny block: every line crosses block boundaries.
            for size in [1, 2, 3, 64] {
                let mut buf = vec![0u8; size];
                assert_eq!(
                    find_tail(&mut f, body.len() as u64, n, &mut buf),
                    want,
                    "{body:?} n={n} block={size}"
                );
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
