//! What the client writes: stdout that ends quietly on a closed pipe, chatter that
//! `--silent` hides, colours only on a terminal and never under NO_COLOR/`--no-color`/
//! `TERM=dumb`.

use std::io::Write;

use crate::client::render;

static SILENT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static NO_COLOR: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static VERBOSE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

static PM2: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Called as `pm2`: messages speak as pm2 does (`[PM2]`, `[PM2][WARN]`, `[PM2][ERROR]`,
/// `pm2 save`).
pub fn set_pm2(on: bool) {
    PM2.store(on, std::sync::atomic::Ordering::Relaxed);
}

pub fn pm2() -> bool {
    PM2.load(std::sync::atomic::Ordering::Relaxed)
}

/// The program's name as the user typed it: `pm2` or `ward`.
pub fn program() -> &'static str {
    if pm2() { "pm2" } else { "ward" }
}

/// A message as the program the user typed says it: in pm2 mode `[ward] ` becomes
/// `[PM2] ` and a command named in backquotes (`ward save`) is pm2's (`pm2 save`).
pub fn speak(s: &str) -> std::borrow::Cow<'_, str> {
    if !pm2() || !s.contains("ward") {
        return s.into();
    }
    s.replace("[ward] ", "[PM2] ")
        .replace("`ward ", "`pm2 ")
        .replace("ward: warning: ", "[PM2][WARN] ")
        .into()
}

/// The prefix of a warning line: `[PM2][WARN] ` or `ward: warning: `.
pub fn warn_tag() -> &'static str {
    if pm2() {
        "[PM2][WARN] "
    } else {
        "ward: warning: "
    }
}

/// The prefix of an error line: `[PM2][ERROR] ` or `ward: `.
pub fn error_tag() -> &'static str {
    if pm2() { "[PM2][ERROR] " } else { "ward: " }
}

/// Takes pm2's global output flags out of the arguments: `-s`/`--silent` (also
/// `PM2_SILENT=true`) and `--no-color`, and ward's `--verbose`. They may stand anywhere before `--`.
pub fn take_output_flags(args: Vec<std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    use std::sync::atomic::Ordering::Relaxed;
    if std::env::var("PM2_SILENT").is_ok_and(|v| v == "true" || v == "1") {
        SILENT.store(true, Relaxed);
    }
    let mut out = Vec::with_capacity(args.len());
    let mut tail = false;
    for a in args {
        if !tail && (a == "-s" || a == "--silent") {
            SILENT.store(true, Relaxed);
        } else if !tail && a == "--no-color" {
            NO_COLOR.store(true, Relaxed);
        } else if !tail && a == "--verbose" {
            VERBOSE.store(true, Relaxed);
        } else {
            tail |= a == "--";
            out.push(a);
        }
    }
    out
}

/// `--verbose`: one line per app even when there are many.
pub fn verbose() -> bool {
    VERBOSE.load(std::sync::atomic::Ordering::Relaxed)
}

pub fn silent() -> bool {
    SILENT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Messages about what was done: quiet under `--silent`. Data always goes through `out`.
pub fn chatter(s: &str) {
    if !silent() {
        out(&speak(s));
    }
}

/// Writes to stdout; a closed stdout (`ward ls | head`) ends the program quietly.
pub fn out(s: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
    }
}

pub fn style() -> render::Style {
    use std::io::IsTerminal;
    let tty = std::io::stdout().is_terminal();
    render::Style {
        color: tty && colour_allowed(),
        width: if tty { terminal_width() } else { None },
    }
}

/// Colour is for terminals that show it: never under NO_COLOR, `--no-color` or `TERM=dumb`
/// (Emacs shells, some CI logs). Whether the output is a terminal is the caller's test.
pub fn colour_allowed() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
        || NO_COLOR.load(std::sync::atomic::Ordering::Relaxed);
    !no_color && std::env::var_os("TERM").is_none_or(|t| t != "dumb")
}

fn terminal_width() -> Option<usize> {
    terminal_size(1).map(|(cols, _)| cols as usize)
}

/// Columns and rows of the terminal on `fd`, when it is one.
pub fn terminal_size(fd: i32) -> Option<(u16, u16)> {
    crate::os::sys::terminal_size(fd)
}

/// An error as main prints it. pm2 mode: `[PM2][ERROR] msg`, except pm2's own warnings
/// (`No process found`), which pm2 prints as `[PM2][WARN]`.
pub fn error_line(msg: &str) -> String {
    if pm2() && msg == crate::table::NO_PROCESS {
        return format!("{}{msg}", warn_tag());
    }
    if pm2() {
        return format!("{}{}", error_tag(), speak(msg));
    }
    format!("ward: {msg}")
}
