//! The text of `ward help`: one entry per command (usage, summary, options), which the
//! help pages, the "did you mean" suggestions, shell completions and the docs test read.
//! Plain data.

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
listening socket stays open in ward throughout, so no connection is refused. It returns
once every process it replaced has exited (or was killed), as pm2's: no old copy serves
after it.

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
Shown for every app (no target, or `all`), the daemon's own log comes first and is
followed too, as pm2 shows pm2.log: ~/.ward/ward.log, prefixed `ward |` (pm2.log and
`PM2 |` in pm2 mode); the target `PM2` shows it alone. Not with --raw, --out, --err or
--json; --format writes its lines as `app=ward message=LINE`.

Options:
      --lines N                    lines to show from each file first (default 15; 0: none)
      --nostream                   print the last lines and exit, do not follow
      --raw                        lines only, no prefix or headers (stderr's to stderr)
      --out                        only the stdout logs
      --err                        only the stderr logs
      --timestamp [FORMAT]         prefix each line with the time it is shown
                                   (default format YYYY-MM-DD-HH:mm:ss)
      --json                       new lines only, one JSON object each: message,
                                   timestamp, type (out, err), process_id, app_name;
                                   and the apps' process events, as pm2: type
                                   process_event, status (start, online, exit, restart
                                   overlimit, stop, restart, reload, delete), app_name
      --format                     new lines only, as timestamp=... app=NAME id=ID
                                   type=out|error message=LINE
      --highlight VALUE            VALUE on a bright background in every line shown
                                   (on a terminal)",
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
        aliases: &[],
        usage: "ward startOrRestart <ecosystem file|->",
        summary: "start the file's apps that are not running, restart the ones that are",
        details: "\
As pm2 does, and as `ward start FILE` does. The restarted apps take the file's environment.
Takes start's options (--env, --only, ...).",
    },
    Doc {
        name: "startOrReload",
        aliases: &["startOrGracefulReload"],
        usage: "ward startOrReload <ecosystem file|-> [--env NAME] [--only APPS] [--update-env]",
        summary: "start the file's apps that are not registered, reload the ones that are",
        details: "\
As pm2 does, and as `ward reload FILE` does: an app of several copies (cluster mode, or
`instances`) is replaced one copy at a time, each new copy online (or ready) before the
next old one stops, so it keeps serving; the reloaded apps take the file's settings and
environment. Takes reload's options.",
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
every app on update). A container runtime refuses it: its new version comes with a new
image.",
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
                                   process_id, app_name; and pm2-runtime's process
                                   events: type process_event, status (start, online,
                                   exit, restart overlimit, stop, restart, reload,
                                   delete), app_name
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
