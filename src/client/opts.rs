//! What the command line asks for: `Command` and the options of each command, as cli.rs
//! parses them and commands.rs (and given.rs, runtime_cli.rs) read them. Plain data.

use crate::protocol::{ControlOp, ScaleTo, Verb};

#[derive(Debug, Default, Clone, PartialEq)]
pub struct StartOpts {
    pub targets: Vec<String>,
    pub name: Option<String>,
    pub interpreter: Option<String>,
    pub interpreter_args: Vec<String>,
    /// Everything after `--`.
    pub args: Vec<String>,
    pub cwd: Option<String>,
    pub force: bool,
    pub no_autorestart: bool,
    pub max_restarts: Option<u32>,
    pub min_uptime: Option<u64>,
    pub restart_delay: Option<u64>,
    pub exp_backoff_restart_delay: Option<u64>,
    pub kill_timeout: Option<u64>,
    pub kill_signal: Option<i32>,
    pub stop_exit_codes: Vec<i32>,
    pub namespace: Option<String>,
    pub out_file: Option<String>,
    pub error_file: Option<String>,
    /// `-l` alone is `Some("true")`: the default combined file.
    pub log_file: Option<String>,
    pub time: bool,
    pub log_date_format: Option<String>,
    pub max_log_size: Option<u64>,
    pub log_retain: Option<u32>,
    pub max_memory_restart: Option<u64>,
    /// `Some("0")` is pm2's way to say no cron.
    pub cron_restart: Option<String>,
    /// `Some(paths)`: watch these (the cwd when empty).
    pub watch: Option<Vec<String>>,
    pub ignore_watch: Vec<String>,
    pub watch_delay: Option<u64>,
    pub pid_file: Option<String>,
    /// `-i`: 0 is one per CPU, negative that many fewer than the CPUs.
    pub instances: Option<i64>,
    pub merge_logs: bool,
    /// `--wait-ready`, `--listen-timeout MS`, `--shutdown-with-message`.
    pub wait_ready: bool,
    pub listen_timeout: Option<u64>,
    pub shutdown_with_message: bool,
    /// `-x`: fork mode even for a Node app with `-i` (pm2's execute-command).
    pub fork: bool,
    /// `--env NAME`, `--only a,b`: for ecosystem files.
    pub env_name: Option<String>,
    pub only: Vec<String>,
    /// `--no-autostart`: register without starting.
    pub no_autostart: bool,
    /// `--disable-logs`: discard the app's output.
    pub disable_logs: bool,
    /// `--log-type json`: one JSON object per chunk of output, as pm2 writes it.
    pub log_type: Option<String>,
    /// `--filter-env [S]`: leave out the shell's variables whose name contains S (all of
    /// them with no S).
    pub filter_env: Option<Vec<String>>,
    /// `--instance-var NAME`: the variable carrying the copy's slot (NODE_APP_INSTANCE).
    pub instance_var: Option<String>,
    /// `-w`, `--write`: also write the app's settings to ./NAME-pm2.json.
    pub write: bool,
    /// `--attach`: follow the started apps' logs afterwards.
    pub attach: bool,
    /// `-a`, `--update-env` (restart, reload, and start of a registered app).
    pub update_env: bool,
    /// `--no-treekill`: stop signals go to the main process only.
    pub no_treekill: bool,
    /// `--increment-var NAME`: NAME counts up from copy to copy.
    pub increment_var: Option<String>,
    /// `-u`, `--user`, `--uid` and `--gid`: a user and group, by name or number.
    pub uid: Option<String>,
    pub gid: Option<String>,
    /// `--ext js,json`: watch only files with these extensions.
    pub ext: Vec<String>,
}

/// Options of stop/restart/reload/delete.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ActOpts {
    /// `-a`, `--update-env`: take the current shell's environment on restart/reload.
    pub update_env: bool,
    pub env_name: Option<String>,
    pub only: Vec<String>,
    /// Restart/reload: settings given on the command line (`--name`, `--node-args`, ...),
    /// merged over each app's (client/given.rs).
    pub patch: Option<crate::spec::patch::Patch>,
    /// `restart --watch`: toggle watching.
    pub toggle_watch: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogsOpts {
    /// `None`: every app.
    pub target: Option<String>,
    pub lines: usize,
    pub raw: bool,
    pub out: bool,
    pub err: bool,
    pub nostream: bool,
    /// Prefix each shown line with the time it is shown, in this format.
    pub timestamp: Option<String>,
    /// `--json`, `--format`: pm2's machine-readable streams (new lines only).
    pub style: LogStyle,
    /// `--highlight VALUE`: VALUE on a bright background wherever a shown line holds it.
    pub highlight: Option<String>,
}

/// How `ward logs` writes a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogStyle {
    /// `ID|NAME | line`, pm2's default.
    #[default]
    Prefixed,
    /// One JSON object per line: message, timestamp, type, process_id, app_name.
    Json,
    /// `timestamp=... app=NAME id=ID type=out|error message=line`.
    KeyValue,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub struct StartupOpts {
    pub remove: bool,
    pub platform: Option<String>,
    pub user: Option<String>,
    pub home: Option<String>,
    pub service: Option<String>,
    pub dest: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Daemon {
        spawned: bool,
        resurrect: bool,
        wait_lock: bool,
        lock_fd: Option<i32>,
        sock_fd: Option<i32>,
    },
    Holder,
    Forker,
    Update,
    ImportPm2 {
        path: Option<String>,
        start: bool,
    },
    Send {
        target: String,
        line: String,
    },
    /// `sendDataToProcessId`, `trigger`: a message over apps' Node IPC channel.
    AppMessage {
        targets: Vec<String>,
        msg: crate::protocol::AppMsg,
    },
    Attach {
        target: String,
    },
    Pid {
        target: Option<String>,
    },
    /// `pm2 id NAME`: the ids of the apps of that name (or script), as pm2 prints them.
    Id {
        name: String,
    },
    Startup(StartupOpts),
    Start(Box<StartOpts>),
    Act {
        verb: Verb,
        targets: Vec<String>,
        opts: ActOpts,
    },
    Control {
        op: ControlOp,
        targets: Vec<String>,
    },
    /// `ward env <id>`
    Env {
        target: String,
    },
    Scale {
        name: String,
        to: ScaleTo,
    },
    /// `ward ecosystem [mode]`: write a sample ecosystem.config.js; `simple` is pm2's short
    /// template, any other mode the full one.
    Ecosystem {
        simple: bool,
    },
    List {
        json: bool,
        /// `--sort FIELD[:asc|:desc]`: the field and whether descending.
        sort: Option<(crate::client::report::SortKey, bool)>,
        /// `-m`/`--mini-list`: one line per app.
        mini: bool,
    },
    Jlist,
    Prettylist,
    Describe {
        target: String,
    },
    Metrics,
    Monit,
    Ping,
    Kill,
    Logs(LogsOpts),
    Flush {
        targets: Vec<String>,
    },
    ReloadLogs,
    Save {
        force: bool,
    },
    Resurrect,
    ClearDump,
    Version,
    Help(Option<String>),
    /// `ward completion bash|zsh|fish|names`
    Completion(String),
}
