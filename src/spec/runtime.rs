//! What a container runtime (`ward-runtime`, `pm2-runtime`, `ward runtime`) is asked to do
//! beyond starting its apps: how app output reaches its own stdout and stderr, whether it
//! ends when every app has stopped for good, how long it waits before starting.
//!
//! Plain data: the client's command line fills it in, the daemon's runtime obeys it.

/// How each line of an app's output is written to the runtime's stdout/stderr; pm2-runtime's
/// `--raw` (the default), `--formatted`, `--format` and `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// The line as the app wrote it: stdout to stdout, stderr to stderr.
    #[default]
    Raw,
    /// `ID|NAME | line`, both streams on stdout.
    Formatted,
    /// `timestamp=… app=NAME id=ID type=out|error message=line` on stdout.
    KeyValue,
    /// One JSON object per line on stdout: message, timestamp, type, process_id, app_name.
    Json,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeOpts {
    pub format: Format,
    /// End (exit 0 or 2) once no app has run for the grace period; `--no-auto-exit` keeps
    /// the runtime up with nothing running.
    pub auto_exit: bool,
    /// `--delay SECONDS`: wait this long before starting the apps.
    pub delay_ms: u64,
    /// Called as `pm2-runtime`: pm2's words in the runtime's own lines.
    pub pm2: bool,
    /// What was started (the file or scripts), for the "0 application started" message.
    pub what: String,
}

impl Default for RuntimeOpts {
    fn default() -> RuntimeOpts {
        RuntimeOpts {
            format: Format::Raw,
            auto_exit: true,
            delay_ms: 0,
            pm2: false,
            what: String::new(),
        }
    }
}

/// pm2-runtime's auto-exit: it first looks 4 s after the apps started, then every 2 s,
/// and gives up after four looks in a row found no app online or launching: with no app
/// running from the start, it exits 12 s after starting them.
pub const AUTO_EXIT_FIRST_MS: u64 = 4_000;
/// How long no app may run before the runtime ends (pm2-runtime: four looks 2 s apart).
pub const AUTO_EXIT_GRACE_MS: u64 = 8_000;
/// pm2-runtime's exit status when it ends because its apps are gone.
pub const AUTO_EXIT_FAILED: i32 = 2;
