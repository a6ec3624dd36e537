//! The command line: argv → `Command`, and the help text of every command.
//!
//! Parsing validates and builds; it touches no socket and no file.

use lexopt::prelude::*;

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
    /// `--env NAME`, `--only a,b`: for ecosystem files.
    pub env_name: Option<String>,
    pub only: Vec<String>,
}

/// Options of stop/restart/reload/delete.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ActOpts {
    /// `-a`, `--update-env`: take the current shell's environment on restart/reload.
    pub update_env: bool,
    pub env_name: Option<String>,
    pub only: Vec<String>,
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
    Attach {
        target: String,
    },
    Pid {
        target: Option<String>,
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
    /// `ward ecosystem`: write a sample ecosystem.config.js.
    Ecosystem,
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
                                   with its own id and NODE_APP_INSTANCE 0..N-1
      --merge-logs                 one log file for every copy (default with -i: NAME-out-ID.log)
      --env NAME                   ecosystem file: merge env_NAME over env
      --only APP[,APP...]          ecosystem file: start only these apps
  -- ARGS...                       arguments passed to the script",
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

A plain stop keeps a watched app's watch set up (`ward start` resumes it); file changes do
not start a stopped app.

Options:
      --watch                      also stop watching the app's files
      --only APP[,APP...]          ecosystem file: only these apps",
    },
    Doc {
        name: "restart",
        aliases: &[],
        usage: "ward restart <name|id|namespace|all|/regex/|ecosystem file>... [-a] [--env NAME] [--only APPS] [--watch]",
        summary: "stop and start apps again; the restart count goes up",
        details: "A stopped or errored app is started. The daemon's log says why each restart
happened.

With an ecosystem file, acts on the apps the file names and gives them the file's `env`
(and `env_NAME` with --env NAME).

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
        aliases: &[],
        usage: "ward reload <name|id|namespace|all|/regex/|ecosystem file>... [-a] [--env NAME] [--only APPS]",
        summary: "same as restart (as pm2 does outside cluster mode)",
        details: "Options: as for restart (-a, --env, --only).",
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
labelled with id, name and namespace. Write it to a file for node_exporter's textfile
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
        usage: "ward ecosystem",
        summary: "write a commented sample ecosystem.config.js here",
        details: "An existing ecosystem.config.js is never overwritten.",
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
as stopped are registered without being started. A damaged dump is reported and left
as it is.",
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
As pm2 does; reload is restart outside cluster mode, so the three are the same. The
restarted apps take the file's environment. Takes start's options (--env, --only, ...).",
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
                 Options: -h, --help (also after a command); -v, --version.\n\
                 Environment: WARD_HOME (default ~/.ward), NO_COLOR, WARD_WORKER_INTERVAL\n\
                 (ms between memory checks, default 1000).\n\
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
            None => Err(Error::new(format!(
                "unknown command {c:?}; `ward help` lists them"
            ))),
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

/// Parses the arguments after the program name.
pub fn parse(args: Vec<std::ffi::OsString>) -> Result<Command> {
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
            return Err(Error::new(
                "no command given; `ward help` lists the commands",
            ));
        }
    };
    if tail.is_some() && cmd != "start" {
        return Err(Error::new(format!(
            "`--` (arguments for the script) only goes with start, not {cmd}"
        )));
    }
    let canonical = find_doc(&cmd).map(|d| d.name).unwrap_or(cmd.as_str());
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
        "restart" => parse_act(&mut p, canonical, Verb::Restart)?,
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
        "reload" => parse_act(&mut p, canonical, Verb::Reload)?,
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
                    _ => return Err(arg.unexpected().into()),
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
                    _ => return Err(arg.unexpected().into()),
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
                    _ => return Err(arg.unexpected().into()),
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
                    _ => return Err(arg.unexpected().into()),
                }
            }
            let target = target.ok_or_else(|| Error::new("env needs an app id"))?;
            Command::Env { target }
        }
        "scale" => parse_scale(&mut p)?,
        "ecosystem" => {
            while let Some(arg) = p.next()? {
                match arg {
                    // pm2's `ecosystem simple` writes a shorter file; one sample serves both.
                    Value(v) if v == "simple" => {}
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => return Err(arg.unexpected().into()),
                }
            }
            Command::Ecosystem
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
                    _ => return Err(arg.unexpected().into()),
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
                    _ => return Err(arg.unexpected().into()),
                }
            }
            let target = target
                .ok_or_else(|| Error::new("describe needs a target: a name, an id or /regex/"))?;
            Command::Describe { target }
        }
        "prettylist" | "metrics" | "monit" => {
            if let Some(arg) = p.next()? {
                return match arg {
                    Short('h') | Long("help") => Ok(Command::Help(Some(cmd))),
                    _ => Err(arg.unexpected().into()),
                };
            }
            match canonical {
                "prettylist" => Command::Prettylist,
                "metrics" => Command::Metrics,
                _ => Command::Monit,
            }
        }
        "send" | "attach" | "pid" => {
            let mut words = Vec::new();
            while let Some(arg) = p.next()? {
                match arg {
                    Value(v) => words.push(v.string()?),
                    Short('h') | Long("help") => return Ok(Command::Help(Some(cmd))),
                    _ => return Err(arg.unexpected().into()),
                }
            }
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
                    _ => return Err(arg.unexpected().into()),
                }
            }
            if let Some(pf) = &o.platform {
                crate::client::startup::Init::parse(pf)?;
            }
            Command::Startup(o)
        }
        "jlist" | "ping" | "kill" | "resurrect" | "cleardump" | "update" | "reloadLogs" => {
            if let Some(arg) = p.next()? {
                return match arg {
                    Short('h') | Long("help") => Ok(Command::Help(Some(cmd))),
                    _ => Err(arg.unexpected().into()),
                };
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
        "help" => {
            let topic = match p.next()? {
                Some(Value(v)) => Some(v.string()?),
                Some(arg) => return Err(arg.unexpected().into()),
                None => None,
            };
            if let Some(t) = &topic {
                find_doc(t).ok_or_else(|| {
                    Error::new(format!("unknown command {t:?}; `ward help` lists them"))
                })?;
            }
            Command::Help(topic)
        }
        _ => {
            return Err(Error::new(format!(
                "unknown command {cmd:?}; `ward help` lists the commands"
            )));
        }
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
            _ => return Err(arg.unexpected().into()),
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
            Long("env") => o.env_name = Some(env_name(p)?),
            Long("only") => o.only.extend(only(p)?),
            Short('h') | Long("help") => return Ok(Command::Help(Some("start".into()))),
            Value(v) => o.targets.push(v.string()?),
            _ => return Err(arg.unexpected().into()),
        }
    }
    if o.targets.len() > 1 && (o.name.is_some() || !o.args.is_empty()) {
        return Err(Error::new(
            "--name and `-- args` apply to one script; start several scripts one by one",
        ));
    }
    Ok(Command::Start(Box::new(o)))
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
            _ => return Err(arg.unexpected().into()),
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
        assert!(parse_str("delete --watch api").is_err());
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
        assert!(parse_str("stop api --update-env").is_err());
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
        assert_eq!(parse_str("init").unwrap(), Command::Ecosystem);
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
