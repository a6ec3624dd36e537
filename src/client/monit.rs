//! `ward monit`: the full-screen terminal dashboard. A client like any other: it polls the
//! daemon with `List` once a second and reads the selected app's log files directly.
//!
//! Raw ANSI, no terminal library: raw mode through termios, the alternate screen, the size
//! from TIOCGWINSZ, a redraw on SIGWINCH. One thread: a poll over stdin and a signal pipe
//! with the next refresh as its timeout. The terminal is restored on every way out (q,
//! Ctrl-C, SIGTERM/SIGINT/SIGHUP, an error, a panic). Drawing (`frame`) is pure and tested.

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::net::UnixStream;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::termios::{self, SetArg, Termios};

use crate::client::render::{bytes, fit, uptime};
use crate::client::{output, talk};
use crate::error::{Error, Result};
use crate::home::Home;
use crate::lifecycle::{Exit, Status};
use crate::protocol::{AppView, Reply, Request, StartItem, Verb};

/// Memory samples kept per app for its sparkline.
const HISTORY: usize = 60;
const REFRESH: Duration = Duration::from_secs(1);
/// How long the outcome of a key stays on the status line.
const MESSAGE_FOR: Duration = Duration::from_secs(5);
const SPARKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// What the dashboard remembers between frames.
#[derive(Default)]
pub struct Ui {
    /// Index of the selected app in the list (ordered by id).
    pub sel: usize,
    /// The selected app's id, so the selection follows the app when the list changes.
    pub sel_id: Option<u32>,
    /// First list row shown.
    pub top: usize,
    pub history: HashMap<u32, VecDeque<u64>>,
    /// The status line: the outcome of the last key, or an error.
    pub message: String,
}

/// The last lines of the selected app's logs.
#[derive(Default)]
pub struct Tail {
    pub out: Vec<String>,
    pub err: Vec<String>,
}

impl Ui {
    /// Takes a new sample of the table: keeps the selection on the same app and records
    /// memory history.
    pub fn update(&mut self, apps: &[AppView]) {
        for v in apps {
            let h = self.history.entry(v.app.id).or_default();
            if h.len() == HISTORY {
                h.pop_front();
            }
            h.push_back(v.memory);
        }
        if self.history.len() > apps.len() {
            let live: std::collections::HashSet<u32> = apps.iter().map(|v| v.app.id).collect();
            self.history.retain(|id, _| live.contains(id));
        }
        if let Some(id) = self.sel_id {
            if let Some(i) = apps.iter().position(|v| v.app.id == id) {
                self.sel = i;
            }
        }
        self.select(apps, self.sel as isize);
    }

    /// Moves the selection to `to` (clamped).
    pub fn select(&mut self, apps: &[AppView], to: isize) {
        let last = apps.len().saturating_sub(1) as isize;
        self.sel = to.clamp(0, last.max(0)) as usize;
        self.sel_id = apps.get(self.sel).map(|v| v.app.id);
    }

    /// Keeps the selection inside the `rows` visible list rows.
    fn scroll(&mut self, rows: usize) {
        let rows = rows.max(1);
        if self.sel < self.top {
            self.top = self.sel;
        } else if self.sel >= self.top + rows {
            self.top = self.sel + 1 - rows;
        }
    }
}

// ---- drawing -------------------------------------------------------------------------

/// One screen line being built: visible text and escape codes, tracking visible width.
struct Line {
    s: String,
    cols: usize,
}

impl Line {
    fn new() -> Line {
        Line {
            s: String::new(),
            cols: 0,
        }
    }
    /// Appends `text` cut or padded to exactly `w` columns, in the SGR style `sgr`.
    fn cell(&mut self, text: &str, w: usize, sgr: &str, right: bool) {
        let t = fit(text, w);
        let n = t.chars().count();
        let pad = " ".repeat(w - n);
        if !sgr.is_empty() {
            self.s.push_str(&format!("\x1b[{sgr}m"));
        }
        if right {
            self.s.push_str(&pad);
            self.s.push_str(&t);
        } else {
            self.s.push_str(&t);
            self.s.push_str(&pad);
        }
        if !sgr.is_empty() {
            self.s.push_str("\x1b[0m");
        }
        self.cols += w;
    }
    /// Pads with spaces (in `sgr`) to `w` columns.
    fn fill(&mut self, w: usize, sgr: &str) {
        if self.cols < w {
            let n = w - self.cols;
            self.cell("", n, sgr, false);
        }
    }
}

fn status_sgr(s: Status) -> &'static str {
    match s {
        Status::Online => "32",
        Status::Stopping | Status::Launching | Status::WaitingRestart => "33",
        Status::Stopped | Status::Errored => "31",
        Status::OneLaunch => "36",
    }
}

fn cpu_text(c: f64) -> String {
    if c.fract() == 0.0 {
        format!("{}%", c as u64)
    } else {
        format!("{c:.1}%")
    }
}

/// The last `w` memory samples as a sparkline, scaled to the app's own peak.
pub fn sparkline(h: Option<&VecDeque<u64>>, w: usize) -> String {
    let Some(h) = h else {
        return " ".repeat(w);
    };
    let max = h.iter().copied().max().unwrap_or(0);
    let mut s: String = h
        .iter()
        .skip(h.len().saturating_sub(w))
        .map(|&m| {
            if m == 0 || max == 0 {
                ' '
            } else {
                SPARKS[((m as f64 / max as f64) * 7.0).round() as usize]
            }
        })
        .collect();
    let n = s.chars().count();
    if n < w {
        s = format!("{}{s}", " ".repeat(w - n));
    }
    s
}

/// A path cut from the left, so that its file name stays visible.
fn fit_left(s: &str, w: usize) -> String {
    let n = s.chars().count();
    if n <= w {
        return s.to_string();
    }
    if w == 0 {
        return String::new();
    }
    let tail: String = s.chars().skip(n - (w - 1)).collect();
    format!("…{tail}")
}

fn up_text(v: &AppView, now_wall: u64) -> String {
    if v.app.run.status == Status::Online && v.app.run.pid.is_some() {
        uptime(now_wall.saturating_sub(v.app.run.pm_uptime))
    } else {
        "0".into()
    }
}

/// The list columns that fit in `w`: (show uptime, spark width, show restarts, name width).
fn columns(w: usize) -> (bool, usize, bool, usize) {
    // marker + name + status 8 + cpu 6 + mem 8, each after a space.
    let base = 1 + 9 + 7 + 9;
    for (up, spark, rs) in [
        (true, 12, true),
        (true, 8, true),
        (false, 8, true),
        (false, 5, true),
        (false, 5, false),
        (false, 0, false),
    ] {
        let used = base
            + if up { 5 } else { 0 }
            + if spark > 0 { spark + 1 } else { 0 }
            + if rs { 4 } else { 0 };
        if w >= used + 10 || (spark == 0 && !rs) {
            return (up, spark, rs, w.saturating_sub(used).max(1));
        }
    }
    (false, 0, false, 1)
}

/// One whole screen: exactly `h` lines, each exactly `w` columns wide once escape codes are
/// left out.
pub fn frame(
    ui: &mut Ui,
    apps: &[AppView],
    tail: &Tail,
    now_wall: u64,
    w: usize,
    h: usize,
) -> Vec<String> {
    let mut lines: Vec<String> = Vec::with_capacity(h);
    if w < 40 || h < 8 {
        for i in 0..h {
            let mut l = Line::new();
            if i == 0 {
                l.cell(
                    "ward monit: enlarge the terminal (40x8 at least)",
                    w,
                    "",
                    false,
                );
            } else {
                l.fill(w, "");
            }
            lines.push(l.s);
        }
        return lines;
    }
    let body = h - 2;
    // Below 60 columns the details would be unreadable: the list takes the whole width.
    let left_w = if w >= 120 {
        w * 45 / 100
    } else if w >= 60 {
        (w * 55 / 100).max(40).min(w - 20)
    } else {
        w
    };
    let right_w = w.saturating_sub(left_w + 1);

    // Title.
    let mut t = Line::new();
    let online = apps
        .iter()
        .filter(|v| v.app.run.status == Status::Online)
        .count();
    t.cell(
        &format!(
            " ward monit · {} apps, {online} online · ↑↓/jk move  r restart  s stop/start  q quit",
            apps.len()
        ),
        w,
        "7",
        false,
    );
    lines.push(t.s);

    // Left: header row, then apps.
    let (show_up, spark_w, show_rs, name_w) = columns(left_w);
    let list_rows = body - 1;
    ui.scroll(list_rows);
    let mut left: Vec<String> = Vec::with_capacity(body);
    let mut hd = Line::new();
    hd.cell("", 1, "1", false);
    hd.cell("name", name_w, "1", false);
    hd.cell(" status", 9, "1", false);
    hd.cell("cpu", 7, "1", true);
    hd.cell("mem", 9, "1", true);
    if spark_w > 0 {
        let label = if spark_w >= 7 { " history" } else { " hist" };
        hd.cell(label, spark_w + 1, "1", false);
    }
    if show_rs {
        hd.cell("↺", 4, "1", true);
    }
    if show_up {
        hd.cell("up", 5, "1", true);
    }
    hd.fill(left_w, "");
    left.push(hd.s);
    for row in 0..list_rows {
        let i = ui.top + row;
        let mut l = Line::new();
        if let Some(v) = apps.get(i) {
            let selected = i == ui.sel;
            let base = if selected { "7" } else { "" };
            let with = |c: &str| {
                if selected {
                    format!("7;{c}")
                } else {
                    c.to_string()
                }
            };
            l.cell(if selected { ">" } else { " " }, 1, base, false);
            l.cell(&v.app.spec.name, name_w, &with("1"), false);
            l.cell(" ", 1, base, false);
            l.cell(
                v.app.run.status.as_str(),
                8,
                &with(status_sgr(v.app.run.status)),
                false,
            );
            l.cell(&cpu_text(v.cpu), 7, base, true);
            l.cell(&bytes(v.memory), 9, base, true);
            if spark_w > 0 {
                l.cell(" ", 1, base, false);
                l.cell(
                    &sparkline(ui.history.get(&v.app.id), spark_w),
                    spark_w,
                    &with("36"),
                    false,
                );
            }
            if show_rs {
                l.cell(&v.app.run.restarts.to_string(), 4, base, true);
            }
            if show_up {
                l.cell(&up_text(v, now_wall), 5, base, true);
            }
            l.fill(left_w, base);
        } else if i == 0 && apps.is_empty() {
            l.cell(
                " no apps: `ward start <script>` adds one",
                left_w,
                "2",
                false,
            );
        } else {
            l.fill(left_w, "");
        }
        left.push(l.s);
    }

    // Right: details of the selected app, then its log tails.
    let mut right: Vec<Line> = Vec::with_capacity(body);
    if let Some(v) = apps.get(ui.sel).filter(|_| right_w > 0) {
        let a = &v.app;
        let mut title = Line::new();
        title.cell(
            &format!(" {} (id {})", a.spec.name, a.id),
            right_w,
            "1",
            false,
        );
        right.push(title);
        let last_exit = a.run.exits.back().map(|e| {
            let what = match e.exit {
                Exit::Code(c) => format!("code {c}"),
                Exit::Signal(s) => crate::spec::config::signal_name(s),
                Exit::Unknown => "unknown".into(),
            };
            format!("{what} ({}, after {})", e.reason.as_str(), uptime(e.uptime))
        });
        // @pm2/io's code metrics, after the figures and before the paths.
        let code_metrics = crate::client::axm::rows(&a.run.axm_monitor);
        let mut details: Vec<(&str, String)> = vec![
            ("status", a.run.status.as_str().into()),
            ("pid", a.run.pid.map_or("-".into(), |p| p.to_string())),
            (
                "cpu / mem",
                format!("{} / {}", cpu_text(v.cpu), bytes(v.memory)),
            ),
            ("uptime", up_text(v, now_wall)),
            ("restarts", a.run.restarts.to_string()),
            ("unstable", a.run.unstable_restarts.to_string()),
            ("last exit", last_exit.unwrap_or_else(|| "-".into())),
            ("interpreter", a.spec.interpreter_name().into()),
            ("script", a.spec.script.clone()),
            ("args", a.spec.args.join(" ")),
            ("cwd", a.spec.cwd.clone()),
            ("out log", a.spec.out_file.clone()),
            ("error log", a.spec.error_file.clone()),
        ];
        if let Some(e) = &a.run.last_error {
            details.push(("last error", e.clone()));
        }
        let at = details
            .iter()
            .position(|(k, _)| *k == "interpreter")
            .unwrap_or(details.len());
        for (i, (k, val)) in code_metrics.iter().enumerate() {
            details.insert(at + i, (k.as_str(), val.clone()));
        }
        // Keep room for the logs on a short terminal: the paths go first, the figures stay.
        let room = body.saturating_sub(1 + 4).max(6);
        details.truncate(room.min(details.len()));
        for (k, val) in details {
            let mut l = Line::new();
            l.cell(&format!(" {k}"), 13, "2", false);
            let vw = right_w.saturating_sub(13);
            let text = if matches!(k, "script" | "cwd" | "out log" | "error log") {
                fit_left(&val, vw)
            } else {
                val
            };
            let sgr = if k == "status" {
                status_sgr(a.run.status)
            } else {
                ""
            };
            l.cell(&text, vw, sgr, false);
            right.push(l);
        }
        let left_rows = body.saturating_sub(right.len());
        if left_rows >= 2 {
            let err_rows = if tail.err.is_empty() {
                1
            } else {
                (left_rows / 3).max(2)
            };
            let err_rows = err_rows.min(left_rows / 2).max(1);
            let out_rows = left_rows - err_rows;
            for (label, lines_of, rows, sgr) in [
                ("out", &tail.out, out_rows, ""),
                ("error", &tail.err, err_rows, "31"),
            ] {
                if rows == 0 {
                    continue;
                }
                let mut l = Line::new();
                let rule: String = format!("─ {label} {}", "─".repeat(right_w))
                    .chars()
                    .take(right_w)
                    .collect();
                l.cell(&rule, right_w, "2", false);
                right.push(l);
                let show = rows - 1;
                for s in lines_of.iter().skip(lines_of.len().saturating_sub(show)) {
                    let mut l = Line::new();
                    l.cell(&format!(" {s}"), right_w, sgr, false);
                    right.push(l);
                }
                let shown = lines_of.len().min(show);
                for _ in shown..show {
                    right.push(Line::new());
                }
            }
        }
    }

    for (i, row) in left.into_iter().enumerate() {
        let mut l = Line {
            s: row,
            cols: left_w,
        };
        if right_w > 0 {
            l.cell("│", 1, "2", false);
            if let Some(r) = right.get(i) {
                l.s.push_str(&r.s);
                l.cols += r.cols;
            }
        }
        l.fill(w, "");
        lines.push(l.s);
    }

    let mut st = Line::new();
    let msg = if ui.message.is_empty() {
        let sel = if apps.is_empty() { 0 } else { ui.sel + 1 };
        format!(" {sel}/{} · refreshed every second", apps.len())
    } else {
        format!(" {}", ui.message)
    };
    st.cell(&msg, w, "2", false);
    lines.push(st.s);
    lines
}

// ---- logs ----------------------------------------------------------------------------

/// The last `n` lines of a file, reading at most its last 64 KiB; control characters
/// (colours, carriage returns) are dropped so they cannot move the cursor.
pub fn tail_file(path: &str, n: usize) -> Vec<String> {
    if path.is_empty() || n == 0 {
        return Vec::new();
    }
    let Ok(mut f) = std::fs::File::open(path) else {
        return Vec::new();
    };
    let len = f.metadata().map(|m| m.len()).unwrap_or(0);
    let from = len.saturating_sub(64 * 1024);
    if f.seek(SeekFrom::Start(from)).is_err() {
        return Vec::new();
    }
    let mut buf = Vec::new();
    if f.take(64 * 1024).read_to_end(&mut buf).is_err() {
        return Vec::new();
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines: Vec<&str> = text.lines().collect();
    if from > 0 && !lines.is_empty() {
        lines.remove(0); // probably cut in the middle
    }
    lines
        .iter()
        .skip(lines.len().saturating_sub(n))
        .map(|l| clean(l))
        .collect()
}

fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut esc = false;
    for c in s.chars() {
        if esc {
            // Skip an escape sequence up to its final letter.
            if c.is_ascii_alphabetic() || c == '~' {
                esc = false;
            }
            continue;
        }
        match c {
            '\x1b' => esc = true,
            '\t' => out.push_str("    "),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

// ---- the terminal --------------------------------------------------------------------

/// The terminal's state before monit, for the panic hook.
static SAVED: OnceLock<libc::termios> = OnceLock::new();

const ENTER: &str = "\x1b[?1049h\x1b[?25l\x1b[?7l\x1b[2J";
const LEAVE: &str = "\x1b[0m\x1b[?7h\x1b[?25h\x1b[?1049l";

/// Raw mode and the alternate screen while it lives.
struct Term {
    saved: Termios,
}

impl Term {
    fn enter() -> Result<Term> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())
            .map_err(|e| Error::unable("read the terminal settings", e))?;
        let _ = SAVED.set(saved.clone().into());
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|e| Error::unable("set the terminal to raw mode", e))?;
        let prev = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore_saved();
            prev(info);
        }));
        write_out(ENTER);
        Ok(Term { saved })
    }
}

fn restore_saved() {
    if let Some(t) = SAVED.get() {
        let t: Termios = (*t).into();
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &t);
    }
    write_out(LEAVE);
}

impl Drop for Term {
    fn drop(&mut self) {
        write_out(LEAVE);
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn write_out(s: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(s.as_bytes());
    let _ = o.flush();
}

fn drain(mut s: &UnixStream) -> bool {
    let mut buf = [0u8; 64];
    let mut any = false;
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        any = true;
    }
    any
}

#[derive(Debug, PartialEq, Eq, Clone, Copy)]
pub enum Key {
    Up,
    Down,
    PageUp,
    PageDown,
    Home,
    End,
    Quit,
    Restart,
    StopStart,
}

/// Turns bytes read from the terminal into keys; unknown bytes and sequences are skipped.
pub fn keys(b: &[u8]) -> Vec<Key> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        i += 1;
        let k = match c {
            b'q' | b'Q' | 0x03 | 0x04 => Some(Key::Quit),
            b'j' => Some(Key::Down),
            b'k' => Some(Key::Up),
            b'g' => Some(Key::Home),
            b'G' => Some(Key::End),
            b'r' => Some(Key::Restart),
            b's' => Some(Key::StopStart),
            0x1b if i < b.len() && (b[i] == b'[' || b[i] == b'O') => {
                let start = i + 1;
                let mut end = start;
                while end < b.len() && !(0x40..=0x7e).contains(&b[end]) {
                    end += 1;
                }
                if end >= b.len() {
                    i = b.len();
                    continue;
                }
                let seq = &b[start..=end];
                i = end + 1;
                match seq {
                    b"A" => Some(Key::Up),
                    b"B" => Some(Key::Down),
                    b"5~" => Some(Key::PageUp),
                    b"6~" => Some(Key::PageDown),
                    b"H" | b"1~" | b"7~" => Some(Key::Home),
                    b"F" | b"4~" | b"8~" => Some(Key::End),
                    _ => None,
                }
            }
            _ => None,
        };
        out.extend(k);
    }
    out
}

fn size() -> (usize, usize) {
    output::terminal_size(1)
        .or_else(|| output::terminal_size(0))
        .map_or((80, 24), |(c, r)| (c as usize, r as usize))
}

pub fn run(home: &Home) -> Result<i32> {
    use std::io::IsTerminal;
    if !std::io::stdin().is_terminal() || !std::io::stdout().is_terminal() {
        return Err(Error::new(
            "monit needs a terminal; `ward ls`, `ward jlist` or `ward metrics` print the same figures",
        ));
    }
    // Before raw mode, so that a daemon that cannot start is reported normally.
    let mut apps = talk::fetch(home, false)?;
    let winch = crate::os::sys::signal_pipe(&[libc::SIGWINCH])?;
    let stop = crate::os::sys::signal_pipe(&[libc::SIGTERM, libc::SIGINT, libc::SIGHUP])?;
    let term = Term::enter()?;
    let mut ui = Ui::default();
    ui.update(&apps);
    let mut tail = Tail::default();
    let mut next = Instant::now() + REFRESH;
    let mut code = 0;
    // When the status line last changed.
    let mut said = Instant::now();
    let stdin = std::io::stdin();
    'main: loop {
        let (w, h) = size();
        tail.out = Vec::new();
        tail.err = Vec::new();
        if let Some(v) = apps.get(ui.sel) {
            tail.out = tail_file(&v.app.spec.out_file, h);
            tail.err = tail_file(&v.app.spec.error_file, h);
        }
        let lines = frame(&mut ui, &apps, &tail, crate::os::sys::wall_ms(), w, h);
        write_out(&format!("\x1b[H{}", lines.join("\r\n")));

        let left = next.saturating_duration_since(Instant::now());
        let ms = left.as_millis().min(u16::MAX as u128) as u16;
        let mut fds = [
            PollFd::new(stdin.as_fd(), PollFlags::POLLIN),
            PollFd::new(winch.as_fd(), PollFlags::POLLIN),
            PollFd::new(stop.as_fd(), PollFlags::POLLIN),
        ];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(_) | Err(nix::errno::Errno::EINTR) => {}
            Err(e) => {
                drop(term);
                return Err(Error::unable("wait for input", e));
            }
        }
        let ready = |f: &PollFd| {
            f.revents()
                .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP))
        };
        let (key_ready, winch_ready, stop_ready) = (ready(&fds[0]), ready(&fds[1]), ready(&fds[2]));
        if stop_ready && drain(&stop) {
            code = 130;
            break;
        }
        if winch_ready && drain(&winch) {
            write_out("\x1b[2J");
        }
        if key_ready {
            let mut buf = [0u8; 256];
            let n = match nix::unistd::read(stdin.as_raw_fd(), &mut buf) {
                Ok(0) => break, // the terminal is gone
                Ok(n) => n,
                Err(nix::errno::Errno::EINTR | nix::errno::Errno::EAGAIN) => 0,
                Err(_) => break,
            };
            let page = h.saturating_sub(3).max(1) as isize;
            for k in keys(&buf[..n]) {
                let sel = ui.sel as isize;
                match k {
                    Key::Quit => break 'main,
                    Key::Up => ui.select(&apps, sel - 1),
                    Key::Down => ui.select(&apps, sel + 1),
                    Key::PageUp => ui.select(&apps, sel - page),
                    Key::PageDown => ui.select(&apps, sel + page),
                    Key::Home => ui.select(&apps, 0),
                    Key::End => ui.select(&apps, apps.len() as isize),
                    Key::Restart | Key::StopStart => {
                        if let Some(v) = apps.get(ui.sel) {
                            act(home, &mut ui, v, k, w, h, &apps, &tail);
                            said = Instant::now();
                            next = Instant::now(); // show the outcome at once
                        }
                    }
                }
            }
        }
        if Instant::now() >= next {
            if !ui.message.is_empty() && said.elapsed() > MESSAGE_FOR {
                ui.message.clear();
            }
            if ui.message.is_empty() {
                said = Instant::now();
            }
            match poll_list(home) {
                Ok(a) => {
                    apps = a;
                    ui.update(&apps);
                }
                Err(e) => ui.message = format!("cannot reach the daemon: {e}"),
            }
            next = Instant::now() + REFRESH;
        }
    }
    drop(term);
    Ok(code)
}

/// The table, without starting a daemon that the user has just killed, and without
/// freezing the screen for long on a stuck one.
fn poll_list(home: &Home) -> Result<Vec<AppView>> {
    match talk::request(
        home,
        &Request::List { env: false },
        Duration::from_secs(5),
        false,
    )? {
        Reply::List { apps, .. } => Ok(apps),
        Reply::Error { message } => Err(Error::new(message)),
        other => Err(Error::new(format!("unexpected answer {other:?}"))),
    }
}

/// Restarts, stops or starts the selected app, saying so on the status line first: the
/// request returns once the app has settled.
#[allow(clippy::too_many_arguments)]
fn act(
    home: &Home,
    ui: &mut Ui,
    v: &AppView,
    k: Key,
    w: usize,
    h: usize,
    apps: &[AppView],
    tail: &Tail,
) {
    let name = v.app.spec.name.clone();
    let id = v.app.id.to_string();
    let running = matches!(
        v.app.run.status,
        Status::Online | Status::Launching | Status::WaitingRestart
    );
    let (doing, did, req) = match (k, running) {
        (Key::Restart, _) => (
            "restarting",
            "restarted",
            Request::Act {
                verb: Verb::Restart,
                targets: vec![id],
                update_env: None,
                cwd: None,
                patch: None,
                toggle_watch: false,
            },
        ),
        (_, true) => (
            "stopping",
            "stopped",
            Request::Act {
                verb: Verb::Stop,
                targets: vec![id],
                update_env: None,
                cwd: None,
                patch: None,
                toggle_watch: false,
            },
        ),
        (_, false) => (
            "starting",
            "started",
            Request::Start {
                items: vec![StartItem {
                    target: id,
                    spec: None,
                    spec_error: None,
                    force: false,
                    ecosystem: false,
                    watch_toggle: false,
                    patch: None,
                }],
            },
        ),
    };
    ui.message = format!("{doing} {name}…");
    let lines = frame(ui, apps, tail, crate::os::sys::wall_ms(), w, h);
    write_out(&format!("\x1b[H{}", lines.join("\r\n")));
    ui.message = match talk::request(home, &req, Duration::from_secs(120), false) {
        Ok(Reply::Done { notes, .. }) => format!(
            "{did}: {}",
            notes
                .last()
                .cloned()
                .unwrap_or_else(|| format!("{name} done"))
        ),
        Ok(Reply::Error { message }) => format!("{name}: {message}"),
        Ok(other) => format!("{name}: unexpected answer {other:?}"),
        Err(e) => format!("{name}: {e}"),
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lifecycle::Run;
    use crate::spec::config::AppSpec;
    use crate::table::App;

    fn app(id: u32, name: &str) -> AppView {
        AppView {
            app: App {
                id,
                spec: AppSpec {
                    name: name.into(),
                    script: "/srv/very/long/path/to/the/app/server.js".into(),
                    cwd: "/srv".into(),
                    out_file: "/home/u/.ward/logs/app-out.log".into(),
                    error_file: "/home/u/.ward/logs/app-error.log".into(),
                    ..AppSpec::default()
                },
                run: Run {
                    status: Status::Online,
                    pid: Some(1000 + id),
                    pm_uptime: 1_000,
                    restarts: id % 4,
                    ..Run::new(0)
                },
            },
            cpu: 12.5,
            memory: 40 * 1024 * 1024 + id as u64,
            cpu_time: 0.0,
        }
    }

    fn visible(s: &str) -> String {
        let mut out = String::new();
        let mut esc = false;
        for c in s.chars() {
            match (esc, c) {
                (false, '\x1b') => esc = true,
                (true, 'm') => esc = false,
                (true, _) => {}
                (false, c) => out.push(c),
            }
        }
        out
    }

    fn check_size(lines: &[String], w: usize, h: usize) {
        assert_eq!(lines.len(), h);
        for l in lines {
            assert_eq!(visible(l).chars().count(), w, "{:?}", visible(l));
        }
    }

    #[test]
    fn fits_80x24_and_other_sizes() {
        let apps: Vec<AppView> = (0..5).map(|i| app(i, &format!("app-{i}"))).collect();
        let tail = Tail {
            out: vec!["hello".into(); 30],
            err: vec!["oops".into()],
        };
        for (w, h) in [(80, 24), (120, 30), (40, 8), (200, 60), (39, 5), (81, 9)] {
            let mut ui = Ui::default();
            ui.update(&apps);
            let lines = frame(&mut ui, &apps, &tail, 61_000, w, h);
            check_size(&lines, w, h);
        }
        let mut ui = Ui::default();
        ui.update(&apps);
        let lines = frame(&mut ui, &apps, &tail, 61_000, 80, 24);
        let text: Vec<String> = lines.iter().map(|l| visible(l)).collect();
        assert!(text[2].starts_with(">app-0"), "{}", text[2]);
        assert!(text[2].contains("online") && text[2].contains("12.5%"));
        assert!(text[2].contains("40.0mb"), "{}", text[2]);
        assert!(text.iter().any(|l| l.contains("─ out ")));
        assert!(text.iter().any(|l| l.contains(" hello")));
        assert!(text.iter().any(|l| l.contains(" oops")));
        assert!(
            text.iter().any(|l| l.contains("/logs/app-out.log")),
            "{}",
            text.join("\n")
        );
    }

    #[test]
    fn code_metrics_show_in_the_details() {
        let mut a = app(0, "api");
        a.app.run.axm_monitor = serde_json::json!({
            "Heap Usage": {"value": 65.89, "unit": "%"},
            "req/min": {"value": 12},
        })
        .as_object()
        .unwrap()
        .clone();
        let apps = vec![a];
        let mut ui = Ui::default();
        ui.update(&apps);
        let lines = frame(&mut ui, &apps, &Tail::default(), 61_000, 100, 30);
        check_size(&lines, 100, 30);
        let text = lines
            .iter()
            .map(|l| visible(l))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(text.contains(" Heap Usage  65.89 %"), "{text}");
        assert!(text.contains(" req/min     12 "), "{text}");
    }

    #[test]
    fn thousand_apps_scroll() {
        let apps: Vec<AppView> = (0..1000).map(|i| app(i, &format!("app-{i}"))).collect();
        let mut ui = Ui::default();
        ui.update(&apps);
        ui.select(&apps, 500);
        let lines = frame(&mut ui, &apps, &Tail::default(), 0, 80, 24);
        check_size(&lines, 80, 24);
        let text: Vec<String> = lines.iter().map(|l| visible(l)).collect();
        assert!(text.iter().any(|l| l.starts_with(">app-500 ")));
        assert!(!text.iter().any(|l| l.starts_with(" app-0 ")));
        // The selection stays on its app when the list changes under it.
        let fewer: Vec<AppView> = apps[100..].to_vec();
        ui.update(&fewer);
        assert_eq!(fewer[ui.sel].app.id, 500);
        ui.select(&fewer, 10_000);
        assert_eq!(ui.sel, 899);
        let lines = frame(&mut ui, &fewer, &Tail::default(), 0, 80, 24);
        assert!(visible(&lines[22]).starts_with(">app-999 "));
    }

    #[test]
    fn long_names_are_cut() {
        let apps = vec![app(0, &"n".repeat(300))];
        let mut ui = Ui::default();
        ui.update(&apps);
        let lines = frame(&mut ui, &apps, &Tail::default(), 0, 80, 24);
        check_size(&lines, 80, 24);
        assert!(visible(&lines[2]).contains('…'));
    }

    #[test]
    fn sparkline_scales_to_peak() {
        let h: VecDeque<u64> = [0, 50, 100].into_iter().collect();
        assert_eq!(sparkline(Some(&h), 5), "   ▅█");
        assert_eq!(sparkline(None, 3), "   ");
        let long: VecDeque<u64> = (1..=100).collect();
        assert_eq!(sparkline(Some(&long), 4).chars().count(), 4);
    }

    #[test]
    fn key_sequences() {
        assert_eq!(
            keys(b"jk\x1b[A\x1b[B\x1bOA\x1b[5~\x1b[6~q\x03r s\x1b[Zx"),
            vec![
                Key::Down,
                Key::Up,
                Key::Up,
                Key::Down,
                Key::Up,
                Key::PageUp,
                Key::PageDown,
                Key::Quit,
                Key::Quit,
                Key::Restart,
                Key::StopStart
            ]
        );
        assert_eq!(keys(b"\x1b"), vec![]);
        assert_eq!(keys(b"\x1b[1"), vec![]);
    }

    #[test]
    fn log_lines_lose_control_characters() {
        assert_eq!(clean("\x1b[31mred\x1b[0m\tx\r"), "red    x");
    }
}
