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

use crate::client::cli::LogsOpts;
use crate::client::{output, talk};
use crate::error::Result;
use crate::home::Home;
use crate::os::sys::Clock;
use crate::spec::datefmt::DateFormat;
use crate::table::Table;

const POLL: Duration = Duration::from_millis(150);
const CHUNK: usize = 64 * 1024;

struct Source {
    /// `ID|NAME`, pm2's prefix.
    label: String,
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
    width: usize,
    raw: bool,
    color: bool,
    stamp: Option<DateFormat>,
    clock: Clock,
    out: String,
    errout: String,
}

impl Printer {
    fn line(&mut self, src_label: &str, err: bool, line: &[u8]) {
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
            .push_str(&format!("{src_label:<width$} |", width = self.width));
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
        let label = format!("{id}|{}", app.spec.name);
        let mut add = |path: &str, err: bool| {
            if path.is_empty() || crate::logs::is_discard(path) {
                return;
            }
            sources.push(Source {
                label: label.clone(),
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
    let mut p = Printer {
        width: sources
            .iter()
            .map(|s| s.label.chars().count())
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
    if !opts.raw {
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
        if opts.lines > 0 {
            s.tail(opts.lines, &mut p);
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
    fn tail(&mut self, n: usize, p: &mut Printer) {
        let Some(f) = &mut self.file else { return };
        let end = self.pos;
        let mut start = end;
        let mut buf: Vec<u8> = Vec::new();
        let mut complete = 0;
        loop {
            let from = start.saturating_sub(CHUNK as u64);
            let mut chunk = vec![0; (start - from) as usize];
            if f.seek(SeekFrom::Start(from)).is_err() || f.read_exact(&mut chunk).is_err() {
                break;
            }
            chunk.extend_from_slice(&buf);
            buf = chunk;
            start = from;
            complete = buf.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
            let newlines = buf[..complete].iter().filter(|&&b| b == b'\n').count();
            if newlines > n || start == 0 {
                break;
            }
        }
        let body = &buf[..complete];
        let lines: Vec<&[u8]> = body
            .strip_suffix(b"\n")
            .map(|b| b.split(|&c| c == b'\n').collect())
            .unwrap_or_default();
        let shown = &lines[lines.len().saturating_sub(n)..];
        if !p.raw {
            p.out
                .push_str(&format!("{} last {n} lines:\n", self.path.display()));
        }
        for l in shown {
            p.line(&self.label, self.err, l);
        }
        if !p.raw && !shown.is_empty() {
            p.out.push('\n');
        }
        self.pos = start + complete as u64;
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
                    p.line(&self.label, self.err, &rest[..i]);
                } else {
                    self.partial.extend_from_slice(&rest[..i]);
                    let line = std::mem::take(&mut self.partial);
                    p.line(&self.label, self.err, &line);
                }
                rest = &rest[i + 1..];
            }
            self.partial.extend_from_slice(rest);
            if self.partial.len() >= crate::logs::LINE_CAP {
                let line = std::mem::take(&mut self.partial);
                p.line(&self.label, self.err, &line);
            }
        }
    }

    fn end_partial(&mut self, p: &mut Printer) {
        if !self.partial.is_empty() {
            let line = std::mem::take(&mut self.partial);
            p.line(&self.label, self.err, &line);
        }
    }
}
