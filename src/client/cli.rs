//! The command line: argv → `Command` (opts.rs); the help text lives in docs.rs.
//!
//! Parsing validates and builds; it touches no socket and no file.

use lexopt::prelude::*;

use crate::client::docs::find_doc;
pub use crate::client::opts::*;
use crate::client::pm2flags;
use crate::error::{Error, Result};
use crate::protocol::{ControlOp, ScaleTo, Verb};

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
                crate::client::guide::short_usage()
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
        // pm2's `_startJson` with reloadProcessId, which is also its `reload FILE`.
        "startOrReload" => {
            let c = parse_restart(&mut p, canonical, Verb::Reload, None)?;
            if let Command::Act { targets, .. } = &c {
                if targets.len() != 1 || !crate::spec::ecosystem::is_ecosystem(&targets[0]) {
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
                        data: crate::json::from_text(data)
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

/// An option's optional value: `--opt=VALUE`, or the next word when `takes` accepts it
/// (else that word is left for the caller: a target, another option).
fn optional_word(p: &mut lexopt::Parser, takes: impl Fn(&str) -> bool) -> Result<Option<String>> {
    Ok(match p.optional_value() {
        Some(v) => Some(v.string()?),
        None => p
            .try_raw_args()
            .and_then(|mut raw| raw.next_if(|a| takes(&a.to_string_lossy())))
            .map(|v| v.to_string_lossy().into_owned()),
    })
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
        style: LogStyle::Prefixed,
        highlight: None,
    };
    while let Some(arg) = p.next()? {
        match arg {
            Long("lines") => o.lines = number(p, "--lines")?,
            Long("json") => o.style = LogStyle::Json,
            Long("format") => o.style = LogStyle::KeyValue,
            Long("raw") => o.raw = true,
            Long("out") => o.out = true,
            Long("err") => o.err = true,
            Long("nostream") => o.nostream = true,
            Long("timestamp") => {
                // The next word only when it looks like a date format, so that
                // `ward logs --timestamp api` still means the app api.
                let v = optional_word(p, crate::spec::datefmt::looks_like_format)?;
                o.timestamp =
                    Some(v.unwrap_or_else(|| crate::spec::datefmt::LOGS_TIMESTAMP.into()));
            }
            Long("highlight") => {
                // pm2's `--highlight [value]` (commander): the next word, unless an option.
                let v = optional_word(p, |w| !w.starts_with('-'))?;
                o.highlight = v.filter(|v| !v.is_empty());
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
    fn logs_highlight_takes_the_next_word_unless_an_option() {
        for line in ["logs api --highlight GET", "logs --highlight GET api"] {
            let Command::Logs(o) = parse_str(line).unwrap() else {
                panic!()
            };
            assert_eq!(o.target.as_deref(), Some("api"), "{line}");
            assert_eq!(o.highlight.as_deref(), Some("GET"), "{line}");
        }
        let Command::Logs(o) = parse_str("logs --highlight --nostream").unwrap() else {
            panic!()
        };
        assert_eq!((o.highlight, o.nostream, o.target), (None, true, None));
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
}
