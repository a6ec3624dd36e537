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

/// The app a log file is of, or the daemon (its own log, `ward.log`/`pm2.log`).
#[derive(Clone)]
struct Who {
    /// `ID|NAME`, pm2's prefix; `PM2` (`ward`) for the daemon's log.
    label: String,
    id: u32,
    name: String,
    daemon: bool,
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
    /// `--highlight`: shown on a bright background (on a terminal, as pm2 does).
    highlight: Option<String>,
    out: String,
    errout: String,
}

impl Printer {
    /// A line's text, with `--highlight`'s value marked wherever it occurs (pm2 marks the
    /// first only; every one is what a reader looks for).
    fn push_text(&mut self, text: &str) {
        match self.highlight.as_deref().filter(|_| self.color) {
            Some(h) if text.contains(h) => self
                .out
                .push_str(&text.replace(h, &format!("\x1b[100m{h}\x1b[49m"))),
            _ => self.out.push_str(text),
        }
    }

    fn line(&mut self, who: &Who, err: bool, line: &[u8]) {
        match self.style {
            LogStyle::Prefixed => {}
            // pm2's `logs --json` (Log.js jsonStream) and `--format` (formatStream).
            LogStyle::Json => {
                if who.daemon {
                    return; // pm2's jsonStream leaves its own lines out
                }
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
                // pm2's formatStream: its own lines `app=pm2`, without id or type.
                crate::logs::kv_prefix(
                    &mut self.clock,
                    &self.kv_time,
                    now,
                    &who.name,
                    (!who.daemon).then_some((who.id, err)),
                    &mut self.out,
                );
                self.push_text(&String::from_utf8_lossy(line));
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
            self.out.push_str(match (who.daemon, err) {
                (true, _) => "\x1b[34m",
                (false, true) => "\x1b[31m",
                (false, false) => "\x1b[32m",
            });
        }
        self.out
            .push_str(&format!("{:<width$} |", who.label, width = self.width));
        if self.color {
            self.out.push_str("\x1b[0m");
        }
        self.out.push(' ');
        self.push_text(&text);
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
    // pm2 shows its own log beside the apps' when it shows them all, and alone for the
    // target `PM2` (LogManagement.js); never raw, nor with --out or --err.
    let target = opts.target.as_deref();
    let everything = matches!(target, None | Some("all"));
    let daemon_only = target == Some("PM2") && table.resolve("PM2").is_err();
    let ids = match target {
        None => table.ids(),
        Some(_) if daemon_only => Vec::new(),
        Some(t) => table.resolve(t)?,
    };
    let mut sources = Vec::new();
    // A file several apps share (merged logs of -i N, one log_file for many) is read once,
    // under the first app's prefix, as pm2 does (pushIfUnique): following it once per app
    // printed each line once per app.
    let mut seen = std::collections::HashSet::new();
    for &id in &ids {
        let Some(app) = table.get(id) else { continue };
        let who = Who {
            label: format!("{id}|{}", app.spec.name),
            id,
            name: app.spec.name.clone(),
            daemon: false,
        };
        let mut add = |path: &str, err: bool| {
            if path.is_empty() || crate::logs::is_discard(path) {
                return;
            }
            if !seen.insert(path.to_string()) {
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
    if sources.is_empty() && !table.is_empty() && !daemon_only {
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
    // pm2 shows the file written to last at the bottom; its own log comes first.
    sources.sort_by_key(|s| std::fs::metadata(&s.path).and_then(|m| m.modified()).ok());
    let daemon_shown = style != LogStyle::Json && !opts.raw && !opts.out && !opts.err;
    if (everything || daemon_only) && daemon_shown {
        // `PM2 |` and pm2's `app=pm2`, or `ward` for both.
        let (label, name) = if crate::client::output::pm2() {
            ("PM2", "pm2")
        } else {
            ("ward", "ward")
        };
        sources.insert(
            0,
            Source {
                who: Who {
                    label: label.to_string(),
                    id: 0,
                    name: name.to_string(),
                    daemon: true,
                },
                err: false,
                path: home.daemon_log(),
                file: None,
                id: (0, 0),
                pos: 0,
                partial: Vec::new(),
            },
        );
    }
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
        highlight: opts.highlight.clone(),
        out: String::new(),
        errout: String::new(),
    };
    if !opts.raw && style == LogStyle::Prefixed {
        let what = opts.target.as_deref().unwrap_or("all");
        let es = if what == "all" { "es" } else { "" };
        if opts.lines > 0 {
            p.out.push_str(&format!(
                "[TAILING] Tailing last {} lines for [{what}] process{es} (change the value \
                 with --lines option)\n",
                opts.lines,
            ));
        } else if !opts.nostream {
            p.out
                .push_str(&format!("[TAILING] Following [{what}] process{es}\n"));
        }
    }
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
    // pm2's jsonStream also prints process events (start, online, exit, …); the daemon
    // sends them to a client that asks. pm2 prints every app's whatever the target; ward
    // keeps to the apps shown.
    let mut events = (style == LogStyle::Json)
        .then(|| talk::Events::follow(home))
        .flatten();
    // Only needed to filter events of a selection.
    let shown: std::collections::HashSet<String> = match events.is_some() && !everything {
        true => ids
            .iter()
            .filter_map(|&i| table.get(i))
            .map(|a| a.spec.name.clone())
            .collect(),
        false => Default::default(),
    };
    loop {
        match events.as_mut() {
            Some(ev) => {
                for (status, name, at) in ev.wait(home, POLL) {
                    if everything || shown.contains(&name) {
                        p.out
                            .push_str(&String::from_utf8_lossy(&crate::logs::process_event_line(
                                at, &status, &name,
                            )));
                        p.out.push('\n');
                    }
                }
            }
            None => std::thread::sleep(POLL),
        }
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

    fn who(label: &str, id: u32, name: &str, daemon: bool) -> Who {
        Who {
            label: label.into(),
            id,
            name: name.into(),
            daemon,
        }
    }

    fn printer(style: LogStyle) -> Printer {
        Printer {
            style,
            kv_time: DateFormat::parse(crate::logs::KV_TIME),
            width: 10,
            raw: false,
            color: false,
            stamp: None,
            clock: Clock::default(),
            highlight: None,
            out: String::new(),
            errout: String::new(),
        }
    }

    #[test]
    fn the_daemon_log_is_labelled_pm2_and_left_out_of_json() {
        let daemon = who("PM2", 0, "pm2", true);
        let app = who("3|api", 3, "api", false);
        let mut p = printer(LogStyle::Prefixed);
        p.line(&daemon, false, b"started api (id 3), pid 9");
        p.line(&app, true, b"boom");
        assert_eq!(
            p.out,
            "PM2        | started api (id 3), pid 9\n3|api      | boom\n"
        );
        // pm2's jsonStream drops its own lines (type PM2); apps' go out.
        let mut p = printer(LogStyle::Json);
        p.line(&daemon, false, b"started api");
        assert_eq!(p.out, "");
        p.line(&app, false, b"hello");
        assert!(p.out.contains("\"app_name\":\"api\""), "{}", p.out);
        // pm2's formatStream: `app=pm2`, no id, no type.
        let mut p = printer(LogStyle::KeyValue);
        p.line(&daemon, false, b"started api");
        assert!(p.out.starts_with("timestamp="), "{}", p.out);
        assert!(
            p.out.ends_with(" app=pm2 message=started api\n"),
            "{}",
            p.out
        );
    }

    #[test]
    fn highlight_marks_every_occurrence_on_a_terminal_only() {
        let app = who("0|api", 0, "api", false);
        let mut p = printer(LogStyle::Prefixed);
        p.highlight = Some("GET".into());
        p.line(&app, false, b"GET / then GET /x");
        assert_eq!(
            p.out, "0|api      | GET / then GET /x\n",
            "no colour: as is"
        );
        p.out.clear();
        p.color = true;
        p.line(&app, false, b"GET / then GET /x");
        assert_eq!(
            p.out,
            "\x1b[32m0|api      |\x1b[0m \x1b[100mGET\x1b[49m / then \x1b[100mGET\x1b[49m /x\n"
        );
    }
}
