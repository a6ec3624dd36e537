//! The command line: argv → `Command`, and the help text of every command.
//!
//! Parsing validates and builds; it touches no socket and no file.

use lexopt::prelude::*;

use crate::client::pm2flags;
use crate::error::{Error, Result};
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

/// One entry of `ward help`.
pub struct Doc {
    pub name: &'static str,
    pub aliases: &'static [&'static str],
    pub usage: &'static str,
    pub summary: &'static str,
    pub details: &'static str,
}

pub const DOCS: &[Doc] = &[
    Doc {
        name: "start",
        aliases: &[],
        usage: "ward start <script|name|id|ecosystem file>... [options] [-- args...]",
        summary: "register and run an app, or start a registered one",
        details: "\
A script is run with the interpreter of its extension (.js/.mjs/.cjs node, .py python,
.sh bash, .rb ruby, .php php, .pl perl, .coffee coffee); any other file runs itself, and a
bare word is looked up in PATH. The app runs in the current folder with the current
environment. A name or id that is already registered is started (or restarted).

An ecosystem file (any .json, or *.config.js/.cjs/.mjs; with no argument,
./ecosystem.config.js) starts every app it lists: apps already registered under their name
are restarted with the file's environment, the others are started. Every key is checked
first; an error names the file, line, app and key, and nothing starts. `man ward` lists
the keys (ECOSYSTEM FILE).

Options:
  -n, --name NAME                  app name (default: the file name without extension)
      --interpreter PATH           interpreter to run the script with; `none` runs it directly
      --interpreter-args \"ARGS\"    arguments for the interpreter (also --node-args)
      --cwd DIR                    folder to run in (default: the current one)
  -f, --force                      start the script even if it already runs
      --no-autorestart             do not restart the app when it exits
      --max-restarts N             unstable restarts in a row before `errored` (default 16)
      --min-uptime MS              a run shorter than this is unstable (default 1000)
      --restart-delay MS           wait before each restart (default 0)
      --exp-backoff-restart-delay MS
                                   grow the restart delay by 1.5x up to 15 s on each crash
  -k, --kill-timeout MS            time between the stop signal and SIGKILL (default 1600)
      --kill-signal SIGNAL         stop signal sent to the process group (default SIGINT)
      --stop-exit-codes CODE...    exit codes (0-255) after which the app is not restarted
                                   every MS above is at most 2147483647 (about 24.8 days)
      --namespace NS               namespace of the app (default `default`; with an
                                   ecosystem file, overrides the file's)
  -o, --output FILE                stdout log file (default ~/.ward/logs/NAME-out.log)
  -e, --error FILE                 stderr log file (default ~/.ward/logs/NAME-error.log)
  -l, --log [FILE]                 also write stdout and stderr, line by line, to one file
                                   (default ~/.ward/logs/NAME.log)
                                   /dev/null or NULL for -o, -e or -l: discard that stream
      --time                       prefix each line with its capture time (YYYY-MM-DDTHH:mm:ss)
      --log-date-format FMT        prefix each line with its capture time in this format:
                                   YYYY YY MM M DD D HH H hh h mm m ss s SSS Z ZZ A a,
                                   [text] is copied as is (e.g. \"YYYY-MM-DD HH:mm:ss Z\")
      --max-log-size SIZE          rotate a log file once it passes SIZE (bytes, or 10K/10M/1G);
                                   default from ~/.ward/config.json {\"max_log_size\": \"10M\"}
      --log-retain N               rotated files kept per log file (default: config.json's
                                   log_retain, else 30)
      --max-memory-restart SIZE    restart gracefully when the app's whole process group
                                   uses more memory (RSS) than SIZE: bytes, or K, M, G
                                   (e.g. 300M); checked every WARD_WORKER_INTERVAL ms
  -c, --cron-restart \"EXPR\"        restart on a cron schedule, local time (also --cron):
                                   5 fields (min hour day month weekday) or 6 (seconds
                                   first); *, ranges, lists, steps, names; `0` disables
      --watch [PATHS]              restart when files change under the app's folder, or
                                   under PATHS (comma-separated; give it after the script,
                                   or as --watch=PATHS); dot folders and node_modules and
                                   ward's own log files are never watched
      --ignore-watch \"NAMES\"       names, paths, globs (*.log) or regexes not to watch
      --watch-delay SECONDS        quiet time after a change before restarting: seconds,
                                   or milliseconds with ms (e.g. 500ms); at least 100 ms
  -p, --pid FILE                   pid file (default ~/.ward/pids/NAME-ID.pid)
  -i, --instances N                run N copies (max or 0: one per CPU; -1: CPUs - 1), each
                                   with its own id and NODE_APP_INSTANCE 0..N-1; a Node app
                                   runs in cluster mode: the copies share the ports they
                                   listen on (ward is their cluster primary)
      --wait-ready                 stay `launching` until the app says ready: Node's
                                   process.send('ready') or READY=1 on $NOTIFY_SOCKET
      --listen-timeout MS          how long to wait for ready (or, in cluster mode, for
                                   listening during a reload) (default 3000)
      --shutdown-with-message      stop a Node app with the IPC message 'shutdown' instead
                                   of its kill signal (SIGKILL after the kill timeout)
      --merge-logs                 one log file for every copy (default with -i: NAME-out-ID.log)
      --env NAME                   ecosystem file: merge env_NAME over env
      --only APP[,APP...]          ecosystem file: start only these apps
      --no-autostart               register the app without starting it
      --no-treekill                stop signals go to the main process only; its children
                                   keep running
      --filter-env [NAMES]         leave out the shell's variables whose name contains one
                                   of NAMES (comma-separated; all of them without NAMES)
      --disable-logs               keep none of the app's output
      --log-type json              write each chunk of output as one JSON line, as pm2 does
      --instance-var NAME          the variable that holds the copy's slot
                                   (default NODE_APP_INSTANCE)
      --increment-var NAME         NAME counts up from copy to copy, from its value here
                                   (or 0)
      --ext EXTS                   with --watch: watch only files with these extensions
                                   (js,json); the others found now are ignored, as pm2 does
  -u, --uid USER                   run as this user (name or number; also --user) and its
                                   group; the daemon must run as root
      --gid GROUP                  run with this group
  -x, --execute-command            fork mode, even for a Node app with -i (no cluster)
  -w, --write                      also write the app's settings to ./NAME-pm2.json
      --attach                     follow the started apps' logs afterwards (Ctrl-C ends)
      --parallel N                 accepted for pm2; ward acts on every app at once
  -a, --update-env                 an app already registered takes this shell's environment
  -- ARGS...                       arguments passed to the script

A script with a space that is no file (\"node -e '...'\", \"make && ./a.out\") runs through
bash -c (sh without bash), named after the string cut at its last dot. Several scripts in
one start share the options and the -- ARGS. A registered app started again takes the
options given (--node-args=null removes a setting), as restart does.

Every other option of pm2 is accepted on every command and changes nothing there; pm2.io,
V8 and container options (--no-pmx, --no-vizion, --no-automation, --v8, --trace,
--source-map-support, ...) are ignored with one line on stderr.",
    },
    Doc {
        name: "stop",
        aliases: &[],
        usage: "ward stop <name|id|namespace|all|/regex/|ecosystem file>... [--watch] [--only APPS]",
        summary: "stop apps and keep them in the list",
        details: "\
Sends the app's stop signal (SIGINT unless --kill-signal) and SIGCONT to its whole process
group, then SIGKILL to the group after its kill timeout. Returns once every app has stopped.

With an ecosystem file, acts on the apps the file names.

Any stop (and any delete) also stops watching the app's files, as pm2 does; `ward restart
APP --watch` or `ward start APP --watch` turns watching on again.

Options:
      --watch                      stop watching (what every stop does; kept for pm2)
      --only APP[,APP...]          ecosystem file: only these apps",
    },
    Doc {
        name: "restart",
        aliases: &[],
        usage: "ward restart <name|id|namespace|all|/regex/|script|ecosystem file>... [-a] [--env NAME] [--only APPS] [--watch] [start's options] [-- ARGS]",
        summary: "stop and start apps again; the restart count goes up",
        details: "A stopped or errored app is started. The daemon's log says why each restart
happened. The restart count (↺, restart_time) goes up only for an app that was running,
as in pm2.

Start's options given here are applied to the apps first: `restart 0 --name new`,
`restart api --node-args=\"--harmony\"`; the value null removes a setting
(`--node-args=null`); `-- ARGS` replaces the arguments.

With an ecosystem file, every key the file gives an app overwrites the app's setting (the
string 'null' deletes it), the app takes the file's `env` (and `env_NAME` with --env NAME),
and the file's apps that are not registered are started (\"Applications A, B not running,
starting...\").

Options:
  -a, --update-env                 take the current shell's environment (merged over the
                                   app's; nothing is removed). Without it the app keeps the
                                   environment it was started with.
      --env NAME                   ecosystem file: merge env_NAME over env
      --only APP[,APP...]          ecosystem file: only these apps
      --watch                      toggle watching (on if off, off if on), as pm2 does",
    },
    Doc {
        name: "reload",
        aliases: &["gracefulReload"],
        usage: "ward reload <name|id|namespace|all|/regex/|script|ecosystem file>... [-a] [--env NAME] [--only APPS] [start's options] [-- ARGS]",
        summary: "replace an app's copies one at a time, without downtime",
        details: "\
For an app in cluster mode, or with several copies: one copy at a time, ward starts a new
process beside the old one, waits until it is ready, then gives it the copy's id and stops
the old one (its kill signal, or the message 'shutdown' with --shutdown-with-message;
SIGKILL after the kill timeout). Ready means: with --wait-ready, it said so
(process.send('ready') or READY=1 on $NOTIFY_SOCKET) within --listen-timeout; in cluster
mode, it listens (or --listen-timeout passed, as in pm2); otherwise, it was started. A new
process that exits first, or with --wait-ready never says ready, stops the reload of that
app: the old copies keep serving and ward says why (exit status 1). In cluster mode the
listening socket stays open in ward throughout, so no connection is refused.

An app with one copy outside cluster mode is restarted, as pm2 does. gracefulReload is
the same command. Start's options given here are applied to the app, as for restart;
--watch does not toggle.

Options:
  -a, --update-env                 take the current shell's environment, as restart does
      --env NAME                   ecosystem file: merge env_NAME over env
      --only APP[,APP...]          ecosystem file: only these apps",
    },
    Doc {
        name: "delete",
        aliases: &["del"],
        usage: "ward delete <name|id|namespace|all|/regex/|ecosystem file>... [--only APPS]",
        summary: "stop apps and remove them from the list",
        details: "Their log files are kept.

With an ecosystem file, acts on the apps the file names.

Options:
      --only APP[,APP...]          ecosystem file: only these apps",
    },
    Doc {
        name: "reset",
        aliases: &[],
        usage: "ward reset <name|id|namespace|all|/regex/>...",
        summary: "zero the restart counters (restarts and unstable restarts)",
        details: "The apps keep running; the ↺ column and restart_time start again from 0.",
    },
    Doc {
        name: "sendSignal",
        aliases: &["send-signal"],
        usage: "ward sendSignal <signal> <name|id|namespace|all|/regex/>...",
        summary: "send a signal to apps' main processes",
        details: "\
The signal (SIGUSR2, USR2 or 12) goes to each app's main pid only, as pm2 does, not to its
process group. Fails, sending nothing, if a target app is not running.",
    },
    Doc {
        name: "list",
        aliases: &["ls", "l", "ps", "status"],
        usage: "ward list [--json] [--sort FIELD[:asc|:desc]] [-m]",
        summary: "show the table of apps",
        details: "\
Columns: id, name, namespace (when one is used), mode, pid, uptime, restarts (↺), status,
cpu, memory (of the app's whole process group), user, watching. The table fits the
terminal: long names are cut with an ellipsis. Colours only on a terminal, never with
NO_COLOR.

Options:
      --json                       print the table as JSON (same as `ward jlist`)
      --sort FIELD[:asc|:desc]     order by name, id, cpu, mem, uptime or restarts
                                   (ascending unless :desc)
  -m, --mini-list                  one plain line per app: id, name, status, pid, cpu,
                                   memory, restarts, uptime",
    },
    Doc {
        name: "jlist",
        aliases: &[],
        usage: "ward jlist",
        summary: "print the table as JSON, in pm2's shape",
        details: "\
An array of {pid, name, pm_id, monit: {cpu, memory}, pm2_env: {...}} with pm2's field
names (status, restart_time, unstable_restarts, pm_uptime, created_at, pm_exec_path,
pm_cwd, pm_out_log_path, pm_err_log_path, pm_pid_path, exec_interpreter, exec_mode,
namespace, env, ...), so scripts and dashboards written for pm2 read it unchanged.
monit.memory is the resident memory of the app's whole process group, in bytes;
monit.cpu is the CPU % since the previous sample.",
    },
    Doc {
        name: "prettylist",
        aliases: &[],
        usage: "ward prettylist",
        summary: "print the jlist data as pm2 prints it (node's util.inspect)",
        details: "\
The same data as `ward jlist`, printed exactly as node's util.inspect prints it (single
quotes, bare keys, nested objects indented by two, lines broken at 80 columns), which is
what `pm2 prettylist` writes. It is not JSON; scripts that grep pm2's output (for example
for `status: 'online'`) work unchanged. Keys come in alphabetical order.",
    },
    Doc {
        name: "describe",
        aliases: &["show", "info", "desc"],
        usage: "ward describe <name|id|/regex/>",
        summary: "show everything about an app",
        details: "\
A table of the app's status, restarts, uptime, pid, live CPU and memory of its whole
process group, script and arguments, interpreter, folder, log and pid paths, unstable
restarts and creation time, then its last exits (time, exit code or signal, uptime,
reason) and its last error. A target matching several apps describes each.",
    },
    Doc {
        name: "monit",
        aliases: &["dashboard", "dash"],
        usage: "ward monit",
        summary: "full-screen dashboard of apps, CPU, memory and logs",
        details: "\
Left: every app with its status, CPU %, memory with a history of the last samples,
restarts and uptime. Right: the selected app's details and the live tail of its log
files. Refreshes every second and on resize.

Keys:
  up/down, k/j                     move the selection (PgUp/PgDn, Home/End jump)
  r                                restart the selected app
  s                                stop the selected app, or start it when stopped
  q, Ctrl-C                        quit",
    },
    Doc {
        name: "metrics",
        aliases: &[],
        usage: "ward metrics",
        summary: "print the table in the Prometheus text format",
        details: "\
One sample per app of ward_app_up, ward_app_cpu_seconds_total,
ward_app_resident_memory_bytes, ward_app_restarts_total and ward_app_start_time_seconds,
labelled with id, name and namespace; and ward_app_metric, one gauge per code metric an
app reports with @pm2/io (label metric). Write it to a file for node_exporter's textfile
collector, or serve it to any scraper.",
    },
    Doc {
        name: "env",
        aliases: &[],
        usage: "ward env <id|name>",
        summary: "print the environment an app runs with",
        details: "\
One `KEY: value` line per variable, sorted, including those ward adds (pm_id, name,
namespace, NODE_APP_INSTANCE, WARD_HOME). A name shows its first app.",
    },
    Doc {
        name: "scale",
        aliases: &[],
        usage: "ward scale <name> <N|+N|-N>",
        summary: "set how many copies of an app run",
        details: "\
N sets the number of copies, +N adds, -N removes. New copies are started with the first
copy's settings and the lowest free NODE_APP_INSTANCE; removed copies are the newest ones.",
    },
    Doc {
        name: "ecosystem",
        aliases: &["init"],
        usage: "ward ecosystem [simple]",
        summary: "write a commented sample ecosystem.config.js here",
        details: "\
`simple` writes pm2's short template (one app, name and script); any other mode, or none,
the full commented sample. An existing ecosystem.config.js is never overwritten.",
    },
    Doc {
        name: "ping",
        aliases: &[],
        usage: "ward ping",
        summary: "start the daemon if needed and check that it answers",
        details: "",
    },
    Doc {
        name: "kill",
        aliases: &[],
        usage: "ward kill",
        summary: "stop every app, then the daemon",
        details: "The list is cleared; the next daemon starts empty.",
    },
    Doc {
        name: "logs",
        aliases: &["log"],
        usage: "ward logs [name|id|namespace|all|/regex/] [options]",
        summary: "show the last lines of apps' logs, then follow them",
        details: "\
Prints the last lines of each selected app's stdout and stderr log, each line prefixed
with `ID|NAME |` (stderr's prefix in red on a terminal), then prints new lines as they are
written, until Ctrl-C. Following survives rotation, `ward flush` and `ward reloadLogs`:
a log file that is replaced or truncated is opened again. Without a target: every app.

Options:
      --lines N                    lines to show from each file first (default 15; 0: none)
      --nostream                   print the last lines and exit, do not follow
      --raw                        lines only, no prefix or headers (stderr's to stderr)
      --out                        only the stdout logs
      --err                        only the stderr logs
      --timestamp [FORMAT]         prefix each line with the time it is shown
                                   (default format YYYY-MM-DD-HH:mm:ss)",
    },
    Doc {
        name: "flush",
        aliases: &[],
        usage: "ward flush [name|id|namespace|all|/regex/]...",
        summary: "empty log files",
        details: "\
Truncates the stdout, stderr and combined log files of the apps named; without a target,
of every app and also the daemon's log (~/.ward/ward.log). Rotated files are kept.",
    },
    Doc {
        name: "reloadLogs",
        aliases: &[],
        usage: "ward reloadLogs",
        summary: "make the daemon re-open every log file",
        details: "\
For an external logrotate that renamed the files: the daemon opens each log file again
by its path, creating it when it is gone. SIGUSR2 to the daemon does the same. A log path
that was failing (full disk, missing folder) is retried too.",
    },
    Doc {
        name: "save",
        aliases: &["dump"],
        usage: "ward save [--force]",
        summary: "save the list of apps, for resurrect",
        details: "\
Writes every app, its settings and environment, and whether it is stopped to
$WARD_HOME/dump.json (atomically; the previous dump is kept as dump.json.bak).
With no app registered nothing is written unless --force.

Options:
  -f, --force                      save even an empty list",
    },
    Doc {
        name: "resurrect",
        aliases: &[],
        usage: "ward resurrect",
        summary: "start the apps of the saved list",
        details: "\
Apps whose name is already registered are left alone, so nothing runs twice; apps saved
as stopped are registered without being started. A dump that does not parse is reported,
kept as dump.json.broken (dump.pm2.broken), and the backup (.bak) is used, as it is when
the dump is missing.",
    },
    Doc {
        name: "cleardump",
        aliases: &[],
        usage: "ward cleardump",
        summary: "empty the saved list",
        details: "",
    },
    Doc {
        name: "startOrRestart",
        aliases: &["startOrReload", "startOrGracefulReload"],
        usage: "ward startOrRestart <ecosystem file|->",
        summary: "start the file's apps that are not running, restart the ones that are",
        details: "\
As pm2 does. In ward the three are the same: the running apps are restarted, also in
cluster mode (for a reload one copy at a time, use `ward reload FILE`). The restarted
apps take the file's environment. Takes start's options (--env, --only, ...).",
    },
    Doc {
        name: "import-pm2",
        aliases: &[],
        usage: "ward import-pm2 [PATH] [--start]",
        summary: "register the apps of a pm2 dump (default ~/.pm2/dump.pm2) in ward",
        details: "\
Reads the list pm2 saved (`pm2 save`) and registers the same apps, with their names, order,
environment and options, stopped unless --start. Apps whose name ward already has are
skipped. Whatever could not be carried over (uid/gid, unknown signals, damaged entries) is
reported on stderr. pm2's default log and pid paths become ward's.

Options:
      --start                      start the apps that were running in pm2",
    },
    Doc {
        name: "update",
        aliases: &["updatePM2"],
        usage: "ward update",
        summary: "re-execute the daemon from this binary, keeping every app running",
        details: "\
After an upgrade of ward, the daemon re-executes the new binary in place: same pid, same
children, same output pipes. No app is restarted and no output is lost (pm2 restarts
every app on update).",
    },
    Doc {
        name: "startup",
        aliases: &[],
        usage: "ward startup [systemd|systemd-user|openrc|runit|sysv] [-u USER] [--hp HOME]",
        summary: "run the daemon at boot and resurrect the saved list",
        details: "\
Detects the init system (or takes its name) and writes its unit: as root it installs and
enables it; otherwise it prints the unit and the one command to run as root. The systemd
unit is Type=notify: the daemon reports ready once the saved apps are started.
`systemd-user` writes a unit for `systemctl --user` (run `loginctl enable-linger USER` so
it starts at boot without a login). Save the list first with `ward save`.

Options:
  -u, --user USER                  the user the daemon runs as (default: you)
      --hp HOME                    that user's home (default: $HOME)
      --service-name NAME          the unit's name (default: ward-USER)
      --dest DIR                   write under DIR instead of / and enable nothing
                                   (for packaging and checking)",
    },
    Doc {
        name: "unstartup",
        aliases: &[],
        usage: "ward unstartup [systemd|systemd-user|openrc|runit|sysv] [-u USER] [--hp HOME]",
        summary: "remove the boot unit written by startup",
        details: "Takes the same options as startup.",
    },
    Doc {
        name: "send",
        aliases: &[],
        usage: "ward send <id|name> <line>",
        summary: "write a line to an app's standard input",
        details: "\
Every app gets a stdin pipe that ward keeps open (it costs nothing while unused); the
app sees end-of-file only when it stops. The words after the target are joined with
spaces and a newline is added. Fails when the app is not running or its pipe is full.",
    },
    Doc {
        name: "sendDataToProcessId",
        aliases: &[],
        usage: "ward sendDataToProcessId <id|name|namespace|all> <topic> <data>",
        summary: "send a message to Node apps over their IPC channel",
        details: "\
Each app receives, as with pm2's sendDataToProcessId, the message
{ type: 'process:msg', topic, data, id } on process.on('message'). DATA is taken as
JSON when it parses as JSON (e.g. '{\"a\": 1}'), as a string otherwise. Every Node app
ward starts has the channel; the target apps must be online or launching, or nothing is
sent.",
    },
    Doc {
        name: "trigger",
        aliases: &[],
        usage: "ward trigger <id|name|namespace|all> <action> [params]",
        summary: "run an action an app offers with @pm2/io (io.action)",
        details: "\
Sends the action's name (or { msg: action, opts: params }) to every target app that
declared it, and prints each app's answer as pm2 does: [name:id:namespace]=RESULT. Apps
that do not answer within 10 seconds are named.",
    },
    Doc {
        name: "attach",
        aliases: &[],
        usage: "ward attach <id|name>",
        summary: "connect the terminal to an app's input and output",
        details: "\
Prints what the app writes (its out and error logs, from now on) and sends every line
typed to its stdin, until Ctrl-C.",
    },
    Doc {
        name: "pid",
        aliases: &[],
        usage: "ward pid [name|id]",
        summary: "print the pid of an app, or of every app, one per line",
        details: "Apps that are not running print nothing, as pm2 does.",
    },
    Doc {
        name: "id",
        aliases: &[],
        usage: "ward id <name|script>",
        summary: "print the ids of the apps with this name, as pm2 does: [ 0, 3 ]",
        details: "An app matches by name or by its script file; none prints [] (exit 0).",
    },
    Doc {
        name: "daemon",
        aliases: &[],
        usage: "ward daemon",
        summary: "run the daemon in the foreground",
        details: "\
Clients start it on their own when none answers; run it by hand to watch its log on the
terminal. SIGTERM, SIGINT or SIGQUIT stop every app and end it.

Options:
      --resurrect                  start the saved list once running (what boot units
                                   use); then tell systemd READY=1 on $NOTIFY_SOCKET",
    },
    Doc {
        name: "completion",
        aliases: &[],
        usage: "ward completion [bash|zsh|fish]",
        summary: "print a shell completion script (default bash)",
        details: "\
Completes commands, each command's options and the names of the registered apps. App
names come from a running daemon only: pressing Tab never starts one. `make install`
puts the scripts where bash-completion, zsh and fish look; to try one in the current shell:
  source <(ward completion bash)
`ward completion names` prints the names the scripts offer, one a line.",
    },
    Doc {
        name: "runtime",
        aliases: &[],
        usage: "ward runtime <file|script> [start options]   (also: ward-runtime, pm2-runtime)",
        summary: "run apps in the foreground as a container's entrypoint (PID 1)",
        details: "\
The daemon's supervisor in the foreground, for containers: it starts the apps of an
ecosystem file or one script (every `ward start` option and key), copies their output to
its own stdout and stderr as whole lines (no log file unless --output/--error ask), reaps
every orphaned process as PID 1 (elsewhere it becomes a child subreaper), forwards
SIGHUP, SIGUSR1 and SIGUSR2 to the apps, and on SIGTERM, SIGINT or SIGQUIT stops every
app with its kill signal and kill_timeout, then exits 0. Its socket and state live in
$WARD_HOME if set (so `ward ls`, `ward logs`, `ward restart` work from `docker exec`),
else in a temporary folder. The same binary linked as ward-runtime or pm2-runtime runs
this command; as pm2-runtime it takes pm2-runtime's command line (`pm2-runtime start
ecosystem.config.js --env production`) and uses $PM2_HOME.

Auto-exit (pm2-runtime's): from 4 s after the start, once no app has been online,
launching or waiting to restart for 8 s, it stops and exits: 0 when every app ended
cleanly (stopped, or exited 0 or with one of its stop_exit_codes), else 2 (pm2-runtime
exits 2 in both cases). The last line says why.

Options (beside those of start):
      --raw                        each line as the app wrote it, stdout to stdout and
                                   stderr to stderr (the default)
      --formatted                  `ID|NAME | line` on stdout
      --format                     `timestamp=… app=NAME id=ID type=out|error message=…`
      --json                       one JSON object per line: message, timestamp, type,
                                   process_id, app_name
      --no-auto-exit               keep running when no app runs
      --delay <seconds>            wait before starting the apps
      --no-autostart               register the apps without starting them
      --check                      a probe: exit 0 when the runtime answers and every app
                                   is online or stopped (needs the same WARD_HOME)
  --secret, --public, --machine-name, --web, --trace, --v8 and --deep-monitoring
  (pm2.io) are accepted and ignored. When stdout does not take the lines (a blocked log
  reader) they are dropped and counted, never the apps held.",
    },
    Doc {
        name: "help",
        aliases: &[],
        usage: "ward help [command]",
        summary: "show help for ward or for one command",
        details: "",
    },
];

pub fn find_doc(cmd: &str) -> Option<&'static Doc> {
    DOCS.iter()
        .find(|d| d.name == cmd || d.aliases.contains(&cmd))
}

pub fn help(cmd: Option<&str>) -> Result<String> {
    match cmd {
        None => {
            let mut s = format!(
                "ward {} — keeps programs running (a process manager with pm2's commands)\n\n\
                 Usage: ward <command> [options]\n\nCommands:\n",
                env!("CARGO_PKG_VERSION")
            );
            for d in DOCS {
                let mut name = d.name.to_string();
                if !d.aliases.is_empty() {
                    name = format!("{} ({})", name, d.aliases.join(", "));
                }
                if name.chars().count() > 32 {
                    // A long list of aliases gets a line of its own.
                    s.push_str(&format!("  {name}\n  {:<32} {}\n", "", d.summary));
                } else {
                    s.push_str(&format!("  {name:<32} {}\n", d.summary));
                }
            }
            s.push_str(
                "\nTargets: a name, an id, a namespace, `all`, or a /regular expression/ on names.\n\
                 Options: -h, --help (also after a command); -v, --version; -s, --silent\n\
                 (no chatter); --no-color; --verbose (a line per app even for many apps).\n\
                 Environment: WARD_HOME (default ~/.ward), NO_COLOR and TERM=dumb (no colour),\n\
                 WARD_WORKER_INTERVAL (ms between memory checks, default 1000).\n\
                 `ward help <command>` tells more; `man ward` tells all.\n",
            );
            Ok(s)
        }
        Some(c) => match find_doc(c) {
            Some(d) => {
                let mut s = format!("Usage: {}\n\n{}.\n", d.usage, capitalize(d.summary));
                if !d.aliases.is_empty() {
                    s.push_str(&format!("Aliases: {}\n", d.aliases.join(", ")));
                }
                if !d.details.is_empty() {
                    s.push('\n');
                    s.push_str(d.details);
                    s.push('\n');
                }
                Ok(s)
            }
            None => Err(crate::client::guide::unknown_command(c)),
        },
    }
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// pm2 verbs that belong to pm2's cloud service or module system: one clear line on
/// stderr, at once, and no connection anywhere. Scripts call `link`/`monitor` as set-up
/// steps, so those succeed; the rest fail. `None`: not such a verb.
pub fn unsupported(args: &[std::ffi::OsString]) -> Option<i32> {
    let verb = args
        .iter()
        .find_map(|a| a.to_str().filter(|s| !s.starts_with('-')))?;
    let (what, code) = match verb {
        "link" | "unlink" | "monitor" | "unmonitor" => ("pm2.io monitoring", 0),
        "plus" | "register" | "login" | "logout" | "open" => ("the pm2.io service", 1),
        "install" | "uninstall" | "publish" | "package" => ("pm2 modules", 1),
        "set" | "unset" | "get" | "multiset" | "conf" | "config" => ("pm2's module settings", 1),
        "deploy" => ("pm2's deployment tool (use your CI or a script)", 1),
        "serve" | "expose" => ("pm2's static file server (run a web server as an app)", 1),
        v if v.starts_with("module:") => ("pm2 modules", 1),
        _ => return None,
    };
    eprintln!(
        "ward does not provide `{verb}`: it belongs to {what}; {}",
        if code == 0 {
            "nothing to do"
        } else {
            "nothing was done"
        }
    );
    Some(code)
}

/// Parses the arguments after the program name; an option a command does not take names
/// the command and its help page.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Command> {
    parse_args(args.clone()).map_err(|e| crate::client::guide::in_command(e, &args))
}

fn parse_args(args: Vec<std::ffi::OsString>) -> Result<Command> {
    // Everything after the first `--` goes to the script, untouched.
    let (args, tail) = match args.iter().position(|a| a == "--") {
        Some(i) => {
            let tail: Vec<String> = args[i + 1..]
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            (args[..i].to_vec(), Some(tail))
        }
        None => (args, None),
    };
    let mut p = lexopt::Parser::from_args(args);
    let cmd = match p.next()? {
        Some(Short('v') | Long("version")) => return Ok(Command::Version),
        Some(Short('h') | Long("help")) => return Ok(Command::Help(None)),
        Some(Value(v)) => v.string()?,
        Some(arg) => return Err(arg.unexpected().into()),
        None => {
            return Err(Error::new(format!(
                "no command given\n\n{}",
                crate::client::guide::SHORT_USAGE
            )));
        }
    };
    let canonical = find_doc(&cmd).map(|d| d.name).unwrap_or(cmd.as_str());
    if tail.is_some() && !matches!(canonical, "start" | "restart" | "reload") {
        return Err(Error::new(format!(
            "`--` (arguments for the script) only goes with start, not {cmd}"
        )));
    }
    let command = match canonical {
        "start" => parse_start(&mut p, tail.unwrap_or_default())?,
        "startOrRestart" => {
            // pm2's start of an ecosystem file is already start-or-restart.
            let c = parse_start(&mut p, tail.unwrap_or_default())?;
            if let Command::Start(o) = &c {
                let file_only =
                    o.targets.len() == 1 && crate::spec::ecosystem::is_ecosystem(&o.targets[0]);
                if !file_only {
                    return Err(Error::new(format!(
                        "{cmd} takes one ecosystem file (or - for JSON on stdin)"
                    )));
                }
            }
            c
        }
        "stop" => parse_act(&mut p, canonical, Verb::Stop)?,
        "restart" => parse_restart(&mut p, canonical, Verb::Restart, tail)?,
        "reset" => match parse_act(&mut p, canonical, Verb::Restart)? {
            Command::Act { targets, .. } => Command::Control {
                op: ControlOp::Reset,
                targets,
            },
            other => other,
        },
        "sendSignal" => {
            let signal = match p.next()? {
                Some(Value(v)) => crate::spec::config::parse_signal(&v.string()?)?,
                Some(Short('h') | Long("help")) => return Ok(Command::Help(Some(cmd))),
                Some(arg) => return Err(arg.unexpected().into()),
                None => {
                    return Err(Error::new(
                        "sendSignal needs a signal and a target: ward sendSignal SIGUSR2 api",
                    ));
                }
            };
            match parse_act(&mut p, canonical, Verb::Restart)? {
                Command::Act { targets, .. } => Command::Control {
                    op: ControlOp::Signal { signal },
                    targets,
                },
                other => other,
            }
        }
        "reload" => parse_restart(&mut p, canonical, Verb::Reload, tail)?,
        "delete" => parse_act(&mut p, canonical, Verb::Delete)?,
        "list" => {
            let (mut json, mut sort, mut mini) = (false, None, false);
            while let Some(arg) = p.next()? {
                match arg {
                    Long("json") => json = true,
                    Long("sort") => {
                        sort = Some(crate::client::report::parse_sort(&p.value()?.string()?)?)
                    }
                    Short('m') | Long("mini-list") | Long("mini") => mini = true,
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            Command::List { json, sort, mini }
        }
        "logs" => parse_logs(&mut p)?,
        "flush" => {
            let mut targets = Vec::new();
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) => targets.push(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            // `flush all` is every app, without the daemon's log (as pm2 does).
            Command::Flush { targets }
        }
        "save" => {
            let mut force = false;
            while let Some(arg) = p.next()? {
                match arg {
                    Short('f') | Long("force") => force = true,
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            Command::Save { force }
        }
        "env" => {
            let mut target = None;
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) if target.is_none() => target = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            let target = target.ok_or_else(|| Error::new("env needs an app id"))?;
            Command::Env { target }
        }
        "scale" => parse_scale(&mut p)?,
        "ecosystem" => {
            let mut mode = None;
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) if mode.is_none() => mode = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            Command::Ecosystem {
                simple: mode.as_deref() == Some("simple"),
            }
        }
        "holder" => Command::Holder,
        "forker" => Command::Forker,
        "import-pm2" => {
            let (mut path, mut start) = (None, false);
            while let Some(arg) = p.next()? {
                match arg {
                    Long("start") => start = true,
                    Value(v) if path.is_none() => path = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            Command::ImportPm2 { path, start }
        }
        "describe" => {
            let mut target = None;
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) if target.is_none() => target = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            let target = target
                .ok_or_else(|| Error::new("describe needs a target: a name, an id or /regex/"))?;
            Command::Describe { target }
        }
        "prettylist" | "metrics" | "monit" => {
            while let Some(arg) = p.next()? {
                match arg {
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            match canonical {
                "prettylist" => Command::Prettylist,
                "metrics" => Command::Metrics,
                _ => Command::Monit,
            }
        }
        "sendDataToProcessId" | "trigger" => {
            let Some(words) = positional(&mut p)? else {
                return Ok(Command::Help(Some(cmd)));
            };
            match (canonical, words.as_slice()) {
                ("trigger", [target, action]) | ("trigger", [target, action, _]) => {
                    Command::AppMessage {
                        targets: vec![target.clone()],
                        msg: crate::protocol::AppMsg::Trigger {
                            action: action.clone(),
                            params: words.get(2).cloned(),
                        },
                    }
                }
                ("trigger", _) => {
                    return Err(Error::new(
                        "usage: ward trigger <id|name|all> <action> [params]",
                    ));
                }
                (_, [target, topic, data]) => Command::AppMessage {
                    targets: vec![target.clone()],
                    msg: crate::protocol::AppMsg::Data {
                        topic: topic.clone(),
                        data: serde_json::from_str(data)
                            .unwrap_or_else(|_| serde_json::Value::String(data.clone())),
                    },
                },
                _ => {
                    return Err(Error::new(
                        "usage: ward sendDataToProcessId <id|name|all> <topic> <data>",
                    ));
                }
            }
        }
        "id" => {
            let mut name = None;
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) if name.is_none() => name = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            let name = name.ok_or_else(|| Error::new("usage: ward id <name>"))?;
            Command::Id { name }
        }
        "send" | "attach" | "pid" => {
            let Some(mut words) = positional(&mut p)? else {
                return Ok(Command::Help(Some(cmd)));
            };
            match (canonical, words.len()) {
                ("send", n) if n >= 2 => Command::Send {
                    target: words[0].clone(),
                    line: words[1..].join(" "),
                },
                ("send", _) => return Err(Error::new("usage: ward send <id> <line>")),
                ("attach", 1) => Command::Attach {
                    target: words.remove(0),
                },
                ("attach", _) => return Err(Error::new("usage: ward attach <id>")),
                (_, 0) => Command::Pid { target: None },
                (_, 1) => Command::Pid {
                    target: Some(words.remove(0)),
                },
                _ => return Err(Error::new("usage: ward pid [name]")),
            }
        }
        "startup" | "unstartup" => {
            let mut o = StartupOpts {
                remove: canonical == "unstartup",
                ..StartupOpts::default()
            };
            while let Some(arg) = p.next()? {
                match arg {
                    Short('u') | Long("user") => o.user = Some(p.value()?.string()?),
                    Long("hp") => o.home = Some(p.value()?.string()?),
                    Long("service-name") => o.service = Some(p.value()?.string()?),
                    Long("dest") => o.dest = Some(p.value()?.string()?),
                    Value(v) if o.platform.is_none() => o.platform = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            if let Some(pf) = &o.platform {
                crate::client::startup::Init::parse(pf)?;
            }
            Command::Startup(o)
        }
        "jlist" | "ping" | "kill" | "resurrect" | "cleardump" | "update" | "reloadLogs" => {
            while let Some(arg) = p.next()? {
                match arg {
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => pm2flags::other(arg).tolerate(&mut p)?,
                }
            }
            match canonical {
                "jlist" => Command::Jlist,
                "ping" => Command::Ping,
                "reloadLogs" => Command::ReloadLogs,
                "resurrect" => Command::Resurrect,
                "cleardump" => Command::ClearDump,
                "update" => Command::Update,
                _ => Command::Kill,
            }
        }
        "daemon" => {
            let mut spawned = false;
            let mut resurrect = false;
            let mut wait_lock = false;
            let (mut lock_fd, mut sock_fd) = (None, None);
            while let Some(arg) = p.next()? {
                match arg {
                    Long("spawned") => spawned = true,
                    Long("resurrect") => resurrect = true,
                    Long("wait-lock") => wait_lock = true,
                    Long("lock-fd") => lock_fd = Some(number(&mut p, "--lock-fd")?),
                    Long("sock-fd") => sock_fd = Some(number(&mut p, "--sock-fd")?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => return Err(arg.unexpected().into()),
                }
            }
            Command::Daemon {
                spawned,
                resurrect,
                wait_lock,
                lock_fd,
                sock_fd,
            }
        }
        "completion" => {
            let mut shell = None;
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) if shell.is_none() => shell = Some(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => return Err(arg.unexpected().into()),
                }
            }
            let shell = shell.unwrap_or_else(|| "bash".into());
            crate::client::completion::check(&shell)?;
            Command::Completion(shell)
        }
        "help" => {
            let topic = match p.next()? {
                Some(Value(v)) => Some(v.string()?),
                Some(arg) => return Err(arg.unexpected().into()),
                None => None,
            };
            if let Some(t) = &topic {
                find_doc(t).ok_or_else(|| crate::client::guide::unknown_command(t))?;
            }
            Command::Help(topic)
        }
        _ => return Err(crate::client::guide::unknown_command(&cmd)),
    };
    Ok(command)
}

fn parse_act(p: &mut lexopt::Parser, cmd: &str, verb: Verb) -> Result<Command> {
    let mut targets = Vec::new();
    let mut watch = false;
    let mut opts = ActOpts::default();
    let env_ok = matches!(verb, Verb::Restart | Verb::Reload);
    while let Some(arg) = p.next()? {
        match arg {
            Long("watch") if cmd == "stop" || cmd == "restart" => watch = true,
            Value(v) => targets.push(v.string()?),
            Short('a') | Long("update-env") if env_ok => opts.update_env = true,
            Long("env") if env_ok => opts.env_name = Some(env_name(p)?),
            Long("only") => opts.only.extend(only(p)?),
            Short('h') | Long("help") => return Ok(Command::Help(Some(cmd.into()))),
            _ => pm2flags::other(arg).tolerate(p)?,
        }
    }
    if targets.is_empty() {
        return Err(Error::new(format!(
            "{cmd} needs a target: a name, an id, a namespace, all, /regex/ or an ecosystem file"
        )));
    }
    if watch {
        let op = match verb {
            Verb::Stop => ControlOp::StopWatch,
            _ => ControlOp::RestartWatch,
        };
        return Ok(Command::Control { op, targets });
    }
    Ok(Command::Act {
        verb,
        targets,
        opts,
    })
}

/// restart and reload take start's options and apply them to the apps (pm2's
/// `_handleAttributeUpdate`); `--watch` toggles watching on restart.
fn parse_restart(
    p: &mut lexopt::Parser,
    cmd: &str,
    verb: Verb,
    tail: Option<Vec<String>>,
) -> Result<Command> {
    let o = match parse_start(p, tail.unwrap_or_default())? {
        Command::Start(o) => o,
        Command::Help(_) => return Ok(Command::Help(Some(cmd.into()))),
        other => return Ok(other),
    };
    if o.targets.is_empty() {
        return Err(Error::new(format!(
            "{cmd} needs a target: a name, an id, a namespace, all, /regex/ or an ecosystem file"
        )));
    }
    let patch = crate::client::given::of_start(&o);
    let toggle_watch = o.watch.is_some() && verb == Verb::Restart;
    let plain = patch.is_none() && !o.update_env && o.env_name.is_none() && o.only.is_empty();
    if toggle_watch && plain {
        return Ok(Command::Control {
            op: ControlOp::RestartWatch,
            targets: o.targets,
        });
    }
    Ok(Command::Act {
        verb,
        targets: o.targets,
        opts: ActOpts {
            update_env: o.update_env,
            env_name: o.env_name,
            only: o.only,
            patch,
            toggle_watch,
        },
    })
}

fn env_name(p: &mut lexopt::Parser) -> Result<String> {
    let v = p.value()?.string()?;
    if v.is_empty() || v.contains(char::is_whitespace) {
        return Err(Error::new(format!(
            "invalid value {v:?} for --env: expected the NAME of an env_NAME block"
        )));
    }
    Ok(v)
}

fn only(p: &mut lexopt::Parser) -> Result<Vec<String>> {
    let v = p.value()?.string()?;
    let names: Vec<String> = v
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(Error::new("--only needs app names: --only api,worker"));
    }
    Ok(names)
}

/// `scale NAME 4`, `+2`, `-1`: read raw, since lexopt would take `-1` for an option.
fn parse_scale(p: &mut lexopt::Parser) -> Result<Command> {
    let raw: Vec<String> = p
        .raw_args()?
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if raw.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(Command::Help(Some("scale".into())));
    }
    let [name, n] = raw.as_slice() else {
        return Err(Error::new(
            "scale needs an app name and a number: ward scale api 4 (or +2, -1)",
        ));
    };
    let bad = || {
        Error::new(format!(
            "invalid number {n:?} for scale: expected N, +N or -N"
        ))
    };
    let to = if let Some(d) = n.strip_prefix('+') {
        ScaleTo::More(d.parse().map_err(|_| bad())?)
    } else if let Some(d) = n.strip_prefix('-') {
        ScaleTo::Fewer(d.parse().map_err(|_| bad())?)
    } else {
        ScaleTo::Exactly(n.parse().map_err(|_| bad())?)
    };
    Ok(Command::Scale {
        name: name.clone(),
        to,
    })
}

/// `-i`: a number (negative: fewer than the CPUs) or `max`.
fn instances(p: &mut lexopt::Parser) -> Result<i64> {
    let v = p.value()?.string()?;
    if v == "max" {
        return Ok(0);
    }
    v.parse::<i64>().map_err(|_| {
        Error::new(format!(
            "invalid value {v:?} for --instances: expected a number, max, or -N"
        ))
    })
}

fn split_list(s: &str) -> impl Iterator<Item = String> + '_ {
    s.split([',', ' ', '\t', '\n'])
        .filter(|x| !x.is_empty())
        .map(String::from)
}

fn number<T: std::str::FromStr>(p: &mut lexopt::Parser, flag: &str) -> Result<T> {
    let v = p.value()?.string()?;
    v.parse::<T>().map_err(|_| {
        Error::new(format!(
            "invalid value {v:?} for {flag}: expected a whole number, 0 or more"
        ))
    })
}

/// A delay or timeout in ms: a whole number up to `MAX_DELAY_MS`, refused above it.
fn millis(p: &mut lexopt::Parser, flag: &str) -> Result<u64> {
    crate::spec::config::check_delay(number(p, flag)?, flag)
}

fn parse_start(p: &mut lexopt::Parser, args: Vec<String>) -> Result<Command> {
    let mut o = StartOpts {
        args,
        ..StartOpts::default()
    };
    while let Some(arg) = p.next()? {
        match arg {
            Short('n') | Long("name") => o.name = Some(p.value()?.string()?),
            Long("interpreter") => o.interpreter = Some(p.value()?.string()?),
            Long("interpreter-args") | Long("node-args") => {
                o.interpreter_args = p
                    .value()?
                    .string()?
                    .split_whitespace()
                    .map(String::from)
                    .collect()
            }
            Long("cwd") => o.cwd = Some(p.value()?.string()?),
            Short('f') | Long("force") => o.force = true,
            Long("no-autorestart") => o.no_autorestart = true,
            Long("no-autostart") => o.no_autostart = true,
            Long("disable-logs") => o.disable_logs = true,
            Long("log-type") => {
                let v = p.value()?.string()?;
                if v != "json" && v != "raw" {
                    return Err(Error::new(format!(
                        "invalid value {v:?} for --log-type: expected json (or raw, the default)"
                    )));
                }
                o.log_type = Some(v);
            }
            Long("filter-env") => {
                let list = o.filter_env.get_or_insert_with(Vec::new);
                if let Some(v) = p.optional_value() {
                    list.extend(split_list(&v.string()?));
                }
            }
            Long("instance-var") => o.instance_var = Some(p.value()?.string()?),
            Short('w') | Long("write") => o.write = true,
            Long("attach") => o.attach = true,
            Short('a') | Long("update-env") => o.update_env = true,
            Long("no-treekill") => o.no_treekill = true,
            Long("increment-var") => o.increment_var = Some(p.value()?.string()?),
            Short('u') | Long("user") | Long("uid") => o.uid = Some(p.value()?.string()?),
            Long("gid") => o.gid = Some(p.value()?.string()?),
            Long("ext") => o.ext.extend(
                split_list(&p.value()?.string()?).map(|x| x.trim_start_matches('.').to_string()),
            ),
            // ward's own mode is pm2's fork mode: -x asks for what ward always does.
            Short('x') | Long("execute-command") => o.fork = true,
            Long("max-restarts") => o.max_restarts = Some(number(p, "--max-restarts")?),
            Long("min-uptime") => o.min_uptime = Some(millis(p, "--min-uptime")?),
            Long("restart-delay") => o.restart_delay = Some(millis(p, "--restart-delay")?),
            Long("exp-backoff-restart-delay") => {
                o.exp_backoff_restart_delay = Some(millis(p, "--exp-backoff-restart-delay")?)
            }
            Short('k') | Long("kill-timeout") => {
                o.kill_timeout = Some(millis(p, "--kill-timeout")?)
            }
            Long("kill-signal") => {
                o.kill_signal = Some(crate::spec::config::parse_signal(&p.value()?.string()?)?)
            }
            Long("stop-exit-codes") => {
                // Variadic as in pm2: the numbers that follow; a word ends the list.
                // A negative number looks like an option to lexopt ("missing argument"):
                // say what is wrong with it instead.
                if let Some(neg) = p.try_raw_args().and_then(|raw| {
                    raw.peek()
                        .and_then(|a| a.to_str())
                        .filter(|a| {
                            a.starts_with('-') && a[1..].starts_with(|c: char| c.is_ascii_digit())
                        })
                        .map(str::to_string)
                }) {
                    return Err(Error::new(format!(
                        "invalid exit code {neg} for --stop-exit-codes: exit codes are 0 to 255"
                    )));
                }
                let mut any = false;
                for v in p.values()? {
                    let v = v.string()?;
                    for part in v.split(',').filter(|s| !s.is_empty()) {
                        match part.parse::<i32>() {
                            Ok(c) if !(0..=255).contains(&c) => {
                                return Err(Error::new(format!(
                                    "invalid exit code {c} for --stop-exit-codes: exit codes are \
                                     0 to 255"
                                )));
                            }
                            Ok(c) => {
                                o.stop_exit_codes.push(c);
                                any = true;
                            }
                            Err(_) if any => o.targets.push(part.to_string()),
                            Err(_) => {
                                return Err(Error::new(format!(
                                    "invalid exit code {part:?} for --stop-exit-codes"
                                )));
                            }
                        }
                    }
                }
            }
            Long("namespace") => o.namespace = Some(p.value()?.string()?),
            Short('o') | Long("output") => o.out_file = Some(p.value()?.string()?),
            Short('e') | Long("error") => o.error_file = Some(p.value()?.string()?),
            Short('l') | Long("log") => {
                // An optional value, as pm2's `[path]`: with `=`, or the next word once the
                // script is known (`start app.js -l all.log`; `start -l app.js` keeps the script).
                let v = match p.optional_value() {
                    Some(v) => Some(v),
                    None if !o.targets.is_empty() => p
                        .try_raw_args()
                        .and_then(|mut raw| raw.next_if(|a| !a.to_string_lossy().starts_with('-'))),
                    None => None,
                };
                o.log_file = Some(match v {
                    Some(v) => v.string()?,
                    None => "true".into(),
                });
            }
            Long("time") => o.time = true,
            Long("log-date-format") => o.log_date_format = Some(p.value()?.string()?),
            Long("max-log-size") => {
                o.max_log_size = Some(crate::logs::parse_size(&p.value()?.string()?)?)
            }
            Long("log-retain") => o.log_retain = Some(number(p, "--log-retain")?),
            Long("max-memory-restart") => {
                o.max_memory_restart =
                    Some(crate::spec::config::parse_memory(&p.value()?.string()?)?)
            }
            Short('c') | Long("cron") | Long("cron-restart") => {
                let v = p.value()?.string()?;
                if v.trim() != "0" {
                    crate::spec::cron::Schedule::parse(&v)
                        .map_err(|e| Error::new(format!("invalid cron expression {v:?}: {e}")))?;
                }
                o.cron_restart = Some(v);
            }
            Long("watch") => {
                // pm2's `--watch [paths]`: a value only with `=`, or a word that follows
                // once the script is known (`start app.js --watch src`).
                let mut paths: Vec<String> = match p.optional_value() {
                    Some(v) => split_list(&v.string()?).collect(),
                    None => Vec::new(),
                };
                if paths.is_empty() && !o.targets.is_empty() {
                    if let Some(mut raw) = p.try_raw_args() {
                        if let Some(v) =
                            raw.next_if(|a| a.to_str().is_some_and(|s| !s.starts_with('-')))
                        {
                            paths = split_list(&v.to_string_lossy()).collect();
                        }
                    }
                }
                o.watch = Some(paths);
            }
            Long("ignore-watch") => {
                o.ignore_watch.extend(split_list(&p.value()?.string()?));
            }
            Long("watch-delay") => {
                o.watch_delay = Some(crate::spec::config::parse_watch_delay(
                    &p.value()?.string()?,
                )?)
            }
            Short('p') | Long("pid") => o.pid_file = Some(p.value()?.string()?),
            Short('i') | Long("instances") => o.instances = Some(instances(p)?),
            Long("merge-logs") => o.merge_logs = true,
            Long("wait-ready") => o.wait_ready = true,
            Long("listen-timeout") => o.listen_timeout = Some(number(p, "--listen-timeout")?),
            Long("shutdown-with-message") => o.shutdown_with_message = true,
            Long("env") => o.env_name = Some(env_name(p)?),
            Long("only") => o.only.extend(only(p)?),
            Short('h') | Long("help") => return Ok(Command::Help(Some("start".into()))),
            Value(v) => o.targets.push(v.string()?),
            _ => pm2flags::other(arg).tolerate(p)?,
        }
    }
    Ok(Command::Start(Box::new(o)))
}

/// The words of a command that takes only positional arguments; `None` for `-h`.
fn positional(p: &mut lexopt::Parser) -> Result<Option<Vec<String>>> {
    let mut words = Vec::new();
    while let Some(arg) = p.next()? {
        match arg {
            Value(v) => words.push(v.string()?),
            Short('h') | Long("help") => return Ok(None),
            // pm2 gives every command its whole option list (pm2flags.rs).
            _ => pm2flags::other(arg).tolerate(p)?,
        }
    }
    Ok(Some(words))
}

fn parse_logs(p: &mut lexopt::Parser) -> Result<Command> {
    let mut o = LogsOpts {
        target: None,
        lines: 15,
        raw: false,
        out: false,
        err: false,
        nostream: false,
        timestamp: None,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Long("lines") => o.lines = number(p, "--lines")?,
            Long("raw") => o.raw = true,
            Long("out") => o.out = true,
            Long("err") => o.err = true,
            Long("nostream") => o.nostream = true,
            Long("timestamp") => {
                // Optional value: the next word only when it looks like a date format, so
                // that `ward logs --timestamp api` still means the app api.
                let v = match p.optional_value() {
                    Some(v) => Some(v.string()?),
                    None => p
                        .try_raw_args()
                        .and_then(|mut raw| {
                            raw.next_if(|a| {
                                crate::spec::datefmt::looks_like_format(&a.to_string_lossy())
                            })
                        })
                        .map(|v| v.to_string_lossy().into_owned()),
                };
                o.timestamp =
                    Some(v.unwrap_or_else(|| crate::spec::datefmt::LOGS_TIMESTAMP.into()));
            }
            Short('h') | Long("help") => return Ok(Command::Help(Some("logs".into()))),
            Value(v) if o.target.is_none() => o.target = Some(v.string()?),
            _ => pm2flags::other(arg).tolerate(p)?,
        }
    }
    if o.out && o.err {
        return Err(Error::new(
            "--out and --err exclude each other; give neither for both",
        ));
    }
    Ok(Command::Logs(o))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<Command> {
        parse(s.split_whitespace().map(Into::into).collect())
    }

    #[test]
    fn start_with_args_after_dashes() {
        let c = parse_str("start ./server -n api -- --port 8080").unwrap();
        let Command::Start(o) = c else { panic!() };
        assert_eq!(o.targets, vec!["./server"]);
        assert_eq!(o.name.as_deref(), Some("api"));
        assert_eq!(o.args, vec!["--port", "8080"]);
    }

    #[test]
    fn stop_exit_codes_are_variadic() {
        let Command::Start(o) = parse_str("start --stop-exit-codes 0 3 app.js").unwrap() else {
            panic!()
        };
        assert_eq!(o.stop_exit_codes, vec![0, 3]);
        assert_eq!(o.targets, vec!["app.js"]);
    }

    #[test]
    fn aliases_and_targets() {
        assert_eq!(
            parse_str("ls").unwrap(),
            Command::List {
                json: false,
                sort: None,
                mini: false
            }
        );
        assert_eq!(
            parse_str("status").unwrap(),
            Command::List {
                json: false,
                sort: None,
                mini: false
            }
        );
        assert_eq!(
            parse_str("del a 3 /x/").unwrap(),
            Command::Act {
                verb: Verb::Delete,
                targets: vec!["a".into(), "3".into(), "/x/".into()],
                opts: ActOpts::default(),
            }
        );
        assert!(parse_str("stop").is_err());
        assert!(parse_str("frobnicate").is_err());
        assert!(parse_str("start app.js --bogus").is_err());
        assert!(parse_str("start app.js --max-restarts -1").is_err());
        assert!(parse_str("start app.js --kill-signal SIGNOPE").is_err());
        assert_eq!(parse_str("--version").unwrap(), Command::Version);
        assert_eq!(
            parse_str("help start").unwrap(),
            Command::Help(Some("start".into()))
        );
        assert_eq!(
            parse_str("stop --help").unwrap(),
            Command::Help(Some("stop".into()))
        );
    }

    #[test]
    fn logs_options() {
        let Command::Logs(o) = parse_str("log api --lines 3 --raw --err --nostream").unwrap()
        else {
            panic!()
        };
        assert_eq!(o.target.as_deref(), Some("api"));
        assert_eq!(
            (o.lines, o.raw, o.err, o.out, o.nostream),
            (3, true, true, false, true)
        );
        let Command::Logs(o) = parse_str("logs --timestamp api").unwrap() else {
            panic!()
        };
        assert_eq!(o.target.as_deref(), Some("api"));
        assert_eq!(o.timestamp.as_deref(), Some("YYYY-MM-DD-HH:mm:ss"));
        let Command::Logs(o) = parse_str("logs --timestamp HH:mm api").unwrap() else {
            panic!()
        };
        assert_eq!(o.timestamp.as_deref(), Some("HH:mm"));
        assert_eq!(o.target.as_deref(), Some("api"));
        assert!(parse_str("logs --out --err").is_err());
        assert!(parse_str("logs --lines x").is_err());
        assert_eq!(
            parse_str("flush").unwrap(),
            Command::Flush { targets: vec![] }
        );
        assert_eq!(parse_str("reloadLogs").unwrap(), Command::ReloadLogs);
    }

    #[test]
    fn start_log_options() {
        let Command::Start(o) =
            parse_str("start a.sh -l --time --max-log-size 10M --log-retain 3 --merge-logs")
                .unwrap()
        else {
            panic!()
        };
        assert_eq!(o.log_file.as_deref(), Some("true"));
        assert!(o.time && o.merge_logs);
        assert_eq!((o.max_log_size, o.log_retain), (Some(10 << 20), Some(3)));
        let Command::Start(o) = parse_str("start a.sh -l all.log --log-date-format HH").unwrap()
        else {
            panic!()
        };
        assert_eq!(o.log_file.as_deref(), Some("all.log"));
        assert_eq!(o.log_date_format.as_deref(), Some("HH"));
        assert!(parse_str("start a.sh --max-log-size lots").is_err());
    }

    #[test]
    fn policy_flags() {
        let v = |a: &[&str]| parse(a.iter().map(Into::into).collect());
        let Command::Start(o) = v(&[
            "start",
            "app.js",
            "--max-memory-restart",
            "300M",
            "-c",
            "*/2 * * * * *",
            "--watch",
            "src,lib",
            "--ignore-watch",
            "logs",
            "--watch-delay",
            "500ms",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.cron_restart.as_deref(), Some("*/2 * * * * *"));
        assert_eq!(o.max_memory_restart, Some(300 << 20));
        assert_eq!(o.watch, Some(vec!["src".to_string(), "lib".to_string()]));
        assert_eq!(o.ignore_watch, vec!["logs"]);
        assert_eq!(o.watch_delay, Some(500));
        assert_eq!(o.targets, vec!["app.js"]);
        // --watch before the script takes no value; the script stays the target.
        let Command::Start(o) = parse_str("start --watch app.js").unwrap() else {
            panic!()
        };
        assert_eq!(o.watch, Some(vec![]));
        assert_eq!(o.targets, vec!["app.js"]);
        let Command::Start(o) = parse_str("start app.js --watch --name x").unwrap() else {
            panic!()
        };
        assert_eq!(o.watch, Some(vec![]));
        assert_eq!(o.name.as_deref(), Some("x"));
        let Command::Start(o) = parse(
            ["start", "app.js", "--cron-restart", "0 3 * * *"]
                .iter()
                .map(Into::into)
                .collect(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.cron_restart.as_deref(), Some("0 3 * * *"));
        let e = parse(
            ["start", "a.js", "-c", "0 25 * * *"]
                .iter()
                .map(Into::into)
                .collect(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("hour field"), "{e}");
        assert!(parse_str("start a.js --max-memory-restart lots").is_err());
        assert!(parse_str("start a.js --cron 0").is_ok());
    }

    #[test]
    fn control_commands() {
        assert_eq!(
            parse_str("reset api").unwrap(),
            Command::Control {
                op: ControlOp::Reset,
                targets: vec!["api".into()]
            }
        );
        assert_eq!(
            parse_str("sendSignal SIGUSR2 api 3").unwrap(),
            Command::Control {
                op: ControlOp::Signal {
                    signal: libc::SIGUSR2
                },
                targets: vec!["api".into(), "3".into()]
            }
        );
        assert_eq!(
            parse_str("send-signal usr1 api").unwrap(),
            Command::Control {
                op: ControlOp::Signal {
                    signal: libc::SIGUSR1
                },
                targets: vec!["api".into()]
            }
        );
        assert!(parse_str("sendSignal SIGNOPE api").is_err());
        assert!(parse_str("sendSignal SIGUSR2").is_err());
        assert!(parse_str("reset").is_err());
        assert_eq!(
            parse_str("stop --watch api").unwrap(),
            Command::Control {
                op: ControlOp::StopWatch,
                targets: vec!["api".into()]
            }
        );
        assert_eq!(
            parse_str("restart api --watch").unwrap(),
            Command::Control {
                op: ControlOp::RestartWatch,
                targets: vec!["api".into()]
            }
        );
        // pm2 gives every command its whole option list: accepted, and meaningless here.
        assert!(parse_str("delete --watch api").is_ok());
        assert!(parse_str("delete api --bogus").is_err());
    }

    #[test]
    fn ecosystem_flags_scale_env() {
        let Command::Start(o) =
            parse_str("start eco.json --env production --only api,worker -i -1").unwrap()
        else {
            panic!()
        };
        assert_eq!(o.env_name.as_deref(), Some("production"));
        assert_eq!(o.only, vec!["api", "worker"]);
        assert_eq!(o.instances, Some(-1));
        let Command::Start(o) = parse_str("start app.js -i max --merge-logs").unwrap() else {
            panic!()
        };
        assert_eq!(o.instances, Some(0));
        assert!(o.merge_logs);
        assert!(parse_str("start app.js -i lots").is_err());
        assert_eq!(
            parse_str("restart api -a").unwrap(),
            Command::Act {
                verb: Verb::Restart,
                targets: vec!["api".into()],
                opts: ActOpts {
                    update_env: true,
                    ..ActOpts::default()
                },
            }
        );
        assert!(parse_str("stop api --update-env --parallel 2 --no-pmx").is_ok());
        assert_eq!(
            parse_str("scale api -2").unwrap(),
            Command::Scale {
                name: "api".into(),
                to: ScaleTo::Fewer(2)
            }
        );
        assert_eq!(
            parse_str("scale api +3").unwrap(),
            Command::Scale {
                name: "api".into(),
                to: ScaleTo::More(3)
            }
        );
        assert!(parse_str("scale api").is_err());
        assert!(parse_str("scale api x").is_err());
        assert_eq!(
            parse_str("env 3").unwrap(),
            Command::Env { target: "3".into() }
        );
        assert_eq!(
            parse_str("init").unwrap(),
            Command::Ecosystem { simple: false }
        );
        assert_eq!(
            parse_str("init simple").unwrap(),
            Command::Ecosystem { simple: true }
        );
    }

    #[test]
    fn every_command_has_help() {
        assert!(help(None).unwrap().contains("start"));
        for d in DOCS {
            assert!(help(Some(d.name)).unwrap().contains(d.usage));
        }
        assert!(help(Some("nope")).is_err());
    }
}
