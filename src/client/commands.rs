//! The client's commands: each turns its parsed command line into requests (through
//! talk.rs) and prints the replies (through output.rs and the renderers).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::cli::{ActOpts, Command, StartOpts};
use crate::client::output::{chatter, out, silent, speak, style};
use crate::client::render;
use crate::client::talk::{fetch, request, unexpected};
use crate::error::{Error, Result, os};
use crate::home::Home;
use crate::protocol::{Reply, Request, StartItem, Verb};
use crate::spec::config::{self, AppSpec};
use crate::spec::ecosystem;

pub fn run(cmd: Command, home: &Home) -> Result<i32> {
    match cmd {
        Command::Ping => {
            let reply = request(home, &Request::Ping, Duration::from_secs(30), true)?;
            match reply {
                Reply::Pong { .. } => {
                    out("pong\n");
                    Ok(0)
                }
                other => unexpected(other),
            }
        }
        Command::List { json, sort, mini } => list(home, json, sort, mini),
        Command::Jlist => list(home, true, None, false),
        Command::Prettylist => prettylist(home),
        Command::Describe { target } => describe(home, &target),
        Command::Metrics => metrics(home),
        Command::Monit => crate::client::monit::run(home),
        Command::Start(opts) => start(home, &opts),
        Command::Act {
            verb,
            targets,
            opts,
        } => act(home, verb, targets, &opts),
        Command::Env { target } => env(home, &target),
        Command::Scale { name, to } => {
            let reply = request(
                home,
                &Request::Scale { name, to },
                Duration::from_secs(600),
                true,
            )?;
            done(home, reply)
        }
        Command::Control { op, targets } => {
            let reply = request(
                home,
                &Request::Control {
                    op,
                    targets,
                    cwd: here_str(),
                },
                Duration::from_secs(600),
                true,
            )?;
            done(home, reply)
        }
        Command::Ecosystem { simple } => write_sample(simple),
        Command::Kill => kill(home),
        Command::Logs(opts) => crate::client::follow::run(home, &opts),
        Command::Flush { targets } => {
            let reply = request(
                home,
                &Request::Flush { targets },
                Duration::from_secs(60),
                true,
            )?;
            notes(reply)
        }
        Command::ReloadLogs => {
            let reply = request(home, &Request::ReloadLogs, Duration::from_secs(60), true)?;
            notes(reply)
        }
        Command::Save { force } => {
            match request(
                home,
                &Request::Save { force },
                Duration::from_secs(60),
                true,
            )? {
                Reply::Saved { count, path } => {
                    chatter(&format!("[ward] saved {count} apps in {path}\n"));
                    Ok(0)
                }
                Reply::Warning { message } => {
                    eprintln!("{}{}", crate::client::output::warn_tag(), speak(&message));
                    Ok(0)
                }
                other => unexpected(other),
            }
        }
        Command::ClearDump => {
            match request(home, &Request::ClearDump, Duration::from_secs(60), true)? {
                Reply::Saved { path, .. } => {
                    chatter(&format!("[ward] {path} emptied\n"));
                    Ok(0)
                }
                other => unexpected(other),
            }
        }
        Command::Resurrect => {
            let reply = request(home, &Request::Resurrect, Duration::from_secs(600), true)?;
            done(home, reply)
        }
        Command::Update => update(home),
        Command::ImportPm2 { path, start } => import_pm2(home, path, start),
        Command::Send { target, line } => {
            match request(
                home,
                &Request::Send { target, line },
                Duration::from_secs(30),
                true,
            )? {
                Reply::Done { .. } => Ok(0),
                other => unexpected(other),
            }
        }
        Command::AppMessage { targets, msg } => {
            let trigger = matches!(msg, crate::protocol::AppMsg::Trigger { .. });
            match request(
                home,
                &Request::AppMessage { targets, msg },
                Duration::from_secs(60),
                true,
            )? {
                Reply::Done { notes, .. } => {
                    if !trigger {
                        chatter("[ward] successfully sent data to process\n");
                    }
                    for n in notes {
                        println!("{n}");
                    }
                    Ok(0)
                }
                other => unexpected(other),
            }
        }
        Command::Attach { target } => crate::client::attach::run(home, &target),
        Command::Pid { target } => {
            let apps = fetch(home, false)?;
            let ids: Option<Vec<u32>> = match &target {
                None => None,
                Some(t) => {
                    let table = crate::table::Table::from_apps(
                        apps.iter().map(|v| v.app.clone()).collect(),
                        0,
                    );
                    Some(table.resolve(t)?)
                }
            };
            let mut s = String::new();
            for v in &apps {
                if ids.as_ref().is_some_and(|ids| !ids.contains(&v.app.id)) {
                    continue;
                }
                if let Some(pid) = v.app.run.pid {
                    s.push_str(&format!("{pid}\n"));
                }
            }
            out(&s);
            Ok(0)
        }
        Command::Startup(o) => startup(&o, home),
        Command::Completion(shell) => crate::client::completion::run(home, &shell),
        Command::Id { name } => {
            let apps = fetch(home, false)?;
            let here = here_str();
            let table =
                crate::table::Table::from_apps(apps.into_iter().map(|v| v.app).collect(), 0);
            // pm2's getProcessIdByName: by name or script only, never a namespace or id.
            let ids: Vec<String> = table
                .named(&name, here.as_deref())
                .iter()
                .map(|i| i.to_string())
                .collect();
            // node's util.inspect of an array of numbers.
            out(&if ids.is_empty() {
                "[]\n".to_string()
            } else {
                format!("[ {} ]\n", ids.join(", "))
            });
            Ok(0)
        }
        Command::Version
        | Command::Help(_)
        | Command::Daemon { .. }
        | Command::Holder
        | Command::Forker => Err(Error::new("internal: not a client command")),
    }
}

fn notes(reply: Reply) -> Result<i32> {
    let Reply::Notes { notes } = reply else {
        return unexpected(reply);
    };
    let mut s = String::new();
    for n in notes {
        s.push_str("[ward] ");
        s.push_str(&n);
        s.push('\n');
    }
    out(&speak(&s));
    Ok(0)
}

/// `jlist` writes its text this many bytes at a time (see pm2record::write_list_in_parts).
const JLIST_PART: usize = 64 * 1024;

fn list(
    home: &Home,
    json: bool,
    sort: Option<(crate::client::report::SortKey, bool)>,
    mini: bool,
) -> Result<i32> {
    let mut apps = if json {
        fetch(home, true)?
    } else {
        crate::client::talk::table(home, Duration::from_secs(30))?
            .into_iter()
            .map(|r| r.view())
            .collect()
    };
    let now = crate::os::sys::wall_ms();
    if let Some((key, desc)) = sort {
        crate::client::report::sort(&mut apps, key, desc, now);
    }
    if json {
        let mut s = String::with_capacity(2 * JLIST_PART);
        crate::spec::pm2record::write_list_in_parts(
            &apps,
            &home.root.to_string_lossy(),
            &crate::os::sys::user_name(),
            &mut s,
            JLIST_PART,
            &mut |s| {
                out(s);
                s.clear();
            },
        );
        out("\n");
        // The process ends with this command: the apps go with it rather than be freed
        // string by string (a tenth of `jlist`'s time with 100 apps).
        std::mem::forget(apps);
        return Ok(0);
    } else if mini {
        out(&crate::client::report::mini(&apps, now));
    } else {
        out(&render::table(
            &apps,
            now,
            &crate::os::sys::user_name(),
            &style(),
        ));
    }
    Ok(0)
}

/// pm2 writes prettylist without a final newline; ward adds one on a terminal only, so a
/// pipe gets pm2's bytes and a shell prompt still starts on its own line.
fn prettylist(home: &Home) -> Result<i32> {
    use std::io::IsTerminal;
    let apps = fetch(home, true)?;
    let json = render::jlist(
        &apps,
        &home.root.to_string_lossy(),
        &crate::os::sys::user_name(),
    );
    let node =
        crate::client::inspect::parse(&json).map_err(|e| Error::unable("render the list", e))?;
    let mut s = crate::client::inspect::inspect(&node);
    if std::io::stdout().is_terminal() {
        s.push('\n');
    }
    out(&s);
    Ok(0)
}

fn describe(home: &Home, target: &str) -> Result<i32> {
    let apps = fetch(home, false)?;
    let next = apps.iter().map(|v| v.app.id + 1).max().unwrap_or(0);
    let table = crate::table::Table::from_apps(apps.iter().map(|v| v.app.clone()).collect(), next);
    let ids = table.resolve(target)?;
    let now = crate::os::sys::wall_ms();
    let root = home.root.to_string_lossy();
    let mut s = String::new();
    for v in apps.iter().filter(|v| ids.contains(&v.app.id)) {
        s.push_str(&crate::client::report::describe(v, &root, now));
    }
    out(&s);
    Ok(0)
}

fn metrics(home: &Home) -> Result<i32> {
    let apps = fetch(home, false)?;
    out(&crate::client::report::metrics(&apps));
    Ok(0)
}

fn done(_home: &Home, reply: Reply) -> Result<i32> {
    let Reply::Done { notes, apps } = reply else {
        return unexpected(reply);
    };
    // What pm2 prints as errors (a dump that could not be read, API/Startup.js) goes to
    // stderr, also under --silent.
    let (errors, notes): (Vec<String>, Vec<String>) = notes.into_iter().partition(|n| {
        n.starts_with(crate::store::DUMP_UNREADABLE) || n.starts_with(crate::store::NO_DUMP)
    });
    for e in errors {
        eprintln!("{}{e}", crate::client::output::error_tag());
    }
    if silent() {
        return Ok(0);
    }
    let mut s = String::new();
    for n in crate::client::feedback::fold(notes, crate::client::output::verbose()) {
        s.push_str(&speak(&format!("[ward] {n}\n")));
    }
    s.push_str(&render::table(
        &apps,
        crate::os::sys::wall_ms(),
        &crate::os::sys::user_name(),
        &style(),
    ));
    out(&s);
    Ok(0)
}

fn kill(home: &Home) -> Result<i32> {
    // A home ward refuses is said so, not reported as "no daemon is running".
    home.check()?;
    let pid = match request(home, &Request::Ping, Duration::from_secs(10), false) {
        Ok(Reply::Pong { pid, .. }) => pid,
        Ok(other) => return unexpected(other),
        Err(_) if !daemon_answers(home) => {
            chatter("[ward] no daemon is running\n");
            return Ok(0);
        }
        Err(e) => return Err(e),
    };
    let reply = request(home, &Request::Kill, Duration::from_secs(600), false)?;
    let Reply::Killed = reply else {
        return unexpected(reply);
    };
    // Return only once the daemon is gone, so that `ward kill && ward start` starts afresh.
    let until = Instant::now() + Duration::from_secs(10);
    while crate::os::proc::running(pid) && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(2));
    }
    chatter("[ward] every app stopped; daemon killed\n");
    Ok(0)
}

fn startup(o: &crate::client::cli::StartupOpts, home: &Home) -> Result<i32> {
    use crate::client::startup::{Init, Target};
    let path_var = std::env::var("PATH").unwrap_or_else(|_| "/usr/bin:/bin".into());
    let init = match &o.platform {
        Some(p) => Init::parse(p)?,
        None => Init::detect(Some(&path_var))?,
    };
    let me = crate::os::sys::user_name();
    let user = o.user.clone().unwrap_or_else(|| me.clone());
    let user_home = match &o.home {
        Some(h) => h.clone(),
        None if user == me => std::env::var("HOME").unwrap_or_else(|_| format!("/home/{user}")),
        None => crate::os::users::home_of(&user)
            .ok_or_else(|| Error::new(format!("unknown user {user:?}; pass --hp HOME")))?,
    };
    // The home named by the environment (PM2_HOME in pm2 mode, WARD_HOME) or this one when
    // it is yours; otherwise the user's default, HOME/.pm2 in pm2 mode (API/Startup.js).
    // The printed command passes an explicit home on, so preview and install agree.
    let (var, folder, prog) = if home.pm2 {
        ("PM2_HOME", ".pm2", "pm2")
    } else {
        ("WARD_HOME", ".ward", "ward")
    };
    let explicit = std::env::var_os(var).is_some_and(|v| !v.is_empty());
    let ward_home = if explicit || (user == me && o.home.is_none()) {
        home.root.to_string_lossy().into_owned()
    } else {
        format!("{user_home}/{folder}")
    };
    let exe = std::env::current_exe()
        .map_err(|e| Error::unable("find the ward binary", os(&e)))?
        .to_string_lossy()
        .into_owned();
    let t = Target {
        init,
        service: o
            .service
            .clone()
            .unwrap_or_else(|| format!("{prog}-{user}")),
        user,
        home: user_home,
        ward_home,
        exe,
        path_var,
        pm2: home.pm2,
    };
    // The command to run as root names the program as it was called (a `pm2` link runs
    // ward in pm2 mode), and the home when it was given.
    let me_cmd = if home.pm2 {
        invoked_as().unwrap_or_else(|| t.exe.clone())
    } else {
        t.exe.clone()
    };
    let env_home = if explicit {
        format!(" {var}={}", t.ward_home)
    } else {
        String::new()
    };
    let dest = o.dest.as_ref().map(Path::new);
    let root = crate::os::sys::uid() == 0;
    if dest.is_none() && !root && init != Init::SystemdUser {
        let verb = if o.remove { "unstartup" } else { "startup" };
        let mut s = String::new();
        if !o.remove {
            s.push_str(&format!(
                "[ward] the unit for {}:\n\n{}\n",
                t.unit_path().display(),
                t.unit()
            ));
        }
        s.push_str(&format!(
            "[ward] to {} it, run as root:\nsudo env PATH=$PATH{env_home} {me_cmd} {verb} {} -u {} --hp {}\n",
            if o.remove { "remove" } else { "install" },
            t.init.as_str(),
            t.user,
            t.home
        ));
        out(&speak(&s));
        return Ok(0);
    }
    let done = if o.remove {
        crate::client::startup::uninstall(&t, dest)?
    } else {
        crate::client::startup::install(&t, dest)?
    };
    let mut s: String = done.iter().map(|l| format!("[ward] {l}\n")).collect();
    if !o.remove {
        s.push_str(
            "[ward] at boot the daemon starts and resurrects the list saved by `ward save`\n",
        );
        if init == Init::SystemdUser {
            s.push_str(&format!(
                "[ward] to start it at boot without a login, run: loginctl enable-linger {}\n",
                t.user
            ));
        }
    }
    chatter(&s);
    Ok(0)
}

/// The path this program was called by (argv[0], looked up in PATH when it is a bare
/// word), when it is not the binary's own path: the `pm2` link.
fn invoked_as() -> Option<String> {
    let argv0 = std::env::args_os().next()?;
    let p = Path::new(&argv0);
    let found = if argv0.to_string_lossy().contains('/') {
        Some(here().ok()?.join(p))
    } else {
        config::find_in_path(
            &argv0.to_string_lossy(),
            std::env::var("PATH").ok().as_deref(),
        )
    }?;
    Some(config::normalize(&found).to_string_lossy().into_owned())
}

fn import_pm2(home: &Home, path: Option<String>, start: bool) -> Result<i32> {
    let pm2_home = std::env::var_os("PM2_HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pm2")))
        .ok_or_else(|| Error::new("neither PM2_HOME nor HOME is set; give the dump's path"))?;
    let given = path.is_some();
    let path = path
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| pm2_home.join("dump.pm2"));
    // A path given is the user's choice; pm2's home found through the environment (sudo
    // keeping HOME) is trusted only as ward's own home is, or root would start the commands
    // of a dump another user wrote.
    let text = if given {
        std::fs::read(&path)
    } else {
        let me = crate::os::trust::euid();
        crate::os::trust::check_ancestors(&pm2_home, me)?;
        crate::os::trust::check_dir(&pm2_home, me)?;
        crate::os::trust::read(&path)
    };
    let text = text
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .map_err(|e| Error::unable(format_args!("read {}", path.display()), os(&e)))?;
    let value: serde_json::Value = crate::json::from_text(&text)
        .map_err(|e| Error::unable(format_args!("read {}", path.display()), e))?;
    if !crate::spec::pm2dump::is_pm2(&value) && value.as_array().is_none_or(|a| !a.is_empty()) {
        return Err(Error::new(format!(
            "{} is not a pm2 dump (an array of pm2_env objects)",
            path.display()
        )));
    }
    let (apps, mut problems) = crate::spec::pm2dump::read_all(&value);
    let registered: Vec<String> =
        match request(home, &Request::Table, Duration::from_secs(30), true)? {
            Reply::Table { rows } => rows.into_iter().map(|r| r.name).collect(),
            other => return unexpected(other),
        };
    let pm2_dirs = [pm2_home.join("logs"), pm2_home.join("pids")];
    let mut items = Vec::new();
    for imp in apps {
        problems.extend(imp.notes);
        let mut spec = imp.spec;
        if registered.contains(&spec.name) {
            problems.push(format!(
                "{} is already registered in ward: skipped",
                spec.name
            ));
            continue;
        }
        // pm2's default paths become ward's; paths the user chose stay.
        for p in [&mut spec.out_file, &mut spec.error_file, &mut spec.pid_file] {
            if pm2_dirs
                .iter()
                .any(|d| Path::new(p.as_str()).starts_with(d))
            {
                p.clear();
            }
        }
        if !Path::new(&spec.script).exists() {
            problems.push(format!(
                "{}: {} does not exist (registered anyway)",
                spec.name, spec.script
            ));
        }
        spec.autostart = start && imp.status != crate::lifecycle::Status::Stopped;
        items.push(StartItem {
            target: spec.name.clone(),
            spec: Some(spec),
            spec_error: None,
            // Copies of one name (instances) are all registered.
            force: true,
            ecosystem: false,
            watch_toggle: false,
            patch: None,
        });
    }
    for p in &problems {
        eprintln!("ward: import-pm2: {p}");
    }
    if items.is_empty() {
        chatter("[ward] nothing to import\n");
        return Ok(0);
    }
    start_and_show(home, items)
}

/// Sends one Start request (waiting for every app to settle) and prints the result.
fn start_and_show(home: &Home, items: Vec<StartItem>) -> Result<i32> {
    let apps: u32 = items
        .iter()
        .map(|i| i.spec.as_ref().map_or(1, |s| s.instances.max(1)))
        .sum();
    let label = format!("starting {apps} app{}", if apps == 1 { "" } else { "s" });
    let since = crate::os::sys::wall_ms();
    let reply = request_showing(home, &Request::Start { items }, label)?;
    if let Reply::Done { apps, .. } = &reply {
        wait_for_node_scripts(apps, since);
    }
    done(home, reply)
}

/// Sends a request that may take long (start, stop, restart of many apps), saying on the
/// terminal what it waits for once it takes more than a second.
fn request_showing(home: &Home, req: &Request, label: String) -> Result<Reply> {
    let mut progress = crate::client::feedback::Progress::new(label);
    let reply = crate::client::talk::request_ticking(
        home,
        req,
        Duration::from_secs(600),
        true,
        &mut |waited| progress.tick(waited),
    );
    progress.clear();
    reply
}

/// A Node app is online as soon as node runs, but its script installs its signal
/// handlers only after node's bootstrap (~50 ms): a `sendSignal` sent right after `start`
/// would kill it. pm2's start takes long enough that this never shows; ward's start
/// returns once each Node app it started waits in its event loop (its script's top level
/// has run), or after 3 s.
fn wait_for_node_scripts(apps: &[crate::protocol::AppView], since: u64) {
    let pids: Vec<u32> = apps
        .iter()
        .filter(|v| v.app.spec.interpreter_name().ends_with("node"))
        .filter(|v| v.app.run.pm_uptime >= since)
        .filter_map(|v| v.app.run.pid)
        .collect();
    let until = Instant::now() + Duration::from_secs(3);
    for pid in pids {
        while crate::os::proc::in_event_loop(pid) == Some(false) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

fn update(home: &Home) -> Result<i32> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::unable("find the ward binary", os(&e)))?
        .to_string_lossy()
        .into_owned();
    let before = match request(
        home,
        &Request::Update { exe },
        Duration::from_secs(30),
        true,
    )? {
        Reply::Pong { pid, .. } => pid,
        other => return unexpected(other),
    };
    // The daemon answers again once the new image has taken everything back.
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        std::thread::sleep(Duration::from_millis(5));
        if let Ok(Reply::Pong { pid, version }) =
            request(home, &Request::Ping, Duration::from_secs(2), false)
        {
            out(&speak(&format!(
                "[ward] daemon updated in place: pid {pid}{}, ward {version}; no app was restarted\n",
                if pid == before { " (unchanged)" } else { "" }
            )));
            return Ok(0);
        }
        if Instant::now() > until {
            return Err(Error::new(format!(
                "the daemon did not come back after the update (see {})",
                home.daemon_log().display()
            )));
        }
    }
}

fn daemon_answers(home: &Home) -> bool {
    matches!(
        request(home, &Request::Ping, Duration::from_secs(2), false),
        Ok(Reply::Pong { .. })
    )
}

/// A log path relative to the app's folder; pm2's words for "none" and "default" stay.
fn log_path(cwd: &Path, p: &str) -> String {
    if crate::logs::is_discard(p) || p == "true" || p == "false" {
        p.to_string()
    } else {
        cwd.join(p).to_string_lossy().into_owned()
    }
}

fn here() -> Result<std::path::PathBuf> {
    std::env::current_dir().map_err(|e| Error::unable("read the current folder", os(&e)))
}

/// The client's folder as the daemon resolves script targets against it.
fn here_str() -> Option<String> {
    here().ok().map(|p| p.to_string_lossy().into_owned())
}

/// The client's environment: what a new app gets, and what `--update-env` sends.
fn shell_env() -> BTreeMap<String, String> {
    std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .collect()
}

fn cpus() -> u32 {
    std::thread::available_parallelism().map_or(1, |n| n.get() as u32)
}

fn start(home: &Home, o: &StartOpts) -> Result<i32> {
    let items = start_request(o)?;
    let here = here()?;
    if o.write {
        for spec in items.iter().filter_map(|i| i.spec.as_ref()) {
            write_conf(&here, spec)?;
        }
    }
    let names: Vec<String> = items
        .iter()
        .filter_map(|i| i.spec.as_ref().map(|s| s.name.clone()))
        .collect();
    let code = start_and_show(home, items)?;
    if o.attach && code == 0 && !names.is_empty() {
        // pm2 streams the logs of the apps it just started (API.js:1776).
        let alts: Vec<String> = names.iter().map(|n| regex_lite::escape(n)).collect();
        let logs = crate::client::cli::LogsOpts {
            target: Some(format!("/^({})$/", alts.join("|"))),
            lines: 0,
            raw: false,
            out: false,
            err: false,
            nostream: false,
            timestamp: None,
            style: Default::default(),
            highlight: None,
        };
        return crate::client::follow::run(home, &logs);
    }
    Ok(code)
}

/// `-w`, `--write`: the app's settings as `./NAME-pm2.json`, a file `start` reads back
/// (pm2 writes its whole app record there, environment included; ward leaves the
/// environment out).
fn write_conf(here: &Path, s: &AppSpec) -> Result<()> {
    let path = here.join(format!("{}-pm2.json", config::log_stem(&s.name)));
    let conf = serde_json::json!({
        "name": s.name,
        "script": s.script,
        "args": s.args,
        "interpreter": s.interpreter_name(),
        "interpreter_args": s.interpreter_args,
        "cwd": s.cwd,
        "namespace": s.namespace,
        "instances": s.instances,
        "autorestart": s.autorestart,
        "max_restarts": s.max_restarts,
        "min_uptime": s.min_uptime,
        "kill_timeout": s.kill_timeout,
        "restart_delay": s.restart_delay,
        "watch": if s.watch.is_empty() { serde_json::json!(false) } else { serde_json::json!(s.watch) },
    });
    chatter(&format!(
        "[ward] Writing configuration to {}\n",
        path.display()
    ));
    let text = serde_json::to_string_pretty(&conf).unwrap_or_default();
    std::fs::write(&path, text + "\n")
        .map_err(|e| Error::unable(format_args!("write {}", path.display()), os(&e)))
}

/// What `start` sends for these options: the apps of an ecosystem file or the scripts
/// named (also what a container runtime starts).
pub fn start_request(o: &StartOpts) -> Result<Vec<StartItem>> {
    let here = here()?;
    let mut o = o.clone();
    if o.targets.is_empty() {
        match ecosystem::DEFAULT_FILES
            .iter()
            .find(|f| here.join(f).is_file())
        {
            Some(f) => o.targets.push(f.to_string()),
            None => {
                return Err(Error::new(
                    "start needs a script, a name, an id or an ecosystem file \
                     (there is no ecosystem.config.js here; `ward ecosystem` writes one)",
                ));
            }
        }
    }
    let items = if let Some(file) = o.targets.iter().find(|t| ecosystem::is_ecosystem(t)) {
        if o.targets.len() > 1 {
            return Err(Error::new(format!(
                "{file} is an ecosystem file: start it on its own (--only picks its apps)"
            )));
        }
        if o.name.is_some() || !o.args.is_empty() || o.instances.is_some() {
            return Err(Error::new(format!(
                "--name, -i and `-- args` apply to a script; set name, instances and args \
                 in {file}"
            )));
        }
        file_items(file, &o, &here)?
    } else {
        if let Some(n) = &o.env_name {
            return Err(Error::new(format!(
                "--env {n} selects the env_{n} block of an ecosystem file, and {} is not one",
                o.targets[0]
            )));
        }
        if !o.only.is_empty() {
            return Err(Error::new(format!(
                "--only selects apps of an ecosystem file, and {} is not one",
                o.targets[0]
            )));
        }
        start_items(&o, &here)?
    };
    Ok(items)
}

/// The apps of an ecosystem file, as start items; every error of every app is reported
/// before anything is sent.
fn file_items(file: &str, o: &StartOpts, here: &Path) -> Result<Vec<StartItem>> {
    let shell = shell_env();
    let mut eco = ecosystem::load(file, here, shell.get("PATH").map(String::as_str))?;
    ecosystem::apply_env_name(&mut eco, o.env_name.as_deref());
    for w in &eco.warnings {
        eprintln!("{}", speak(&format!("ward: warning: {w}")));
    }
    let apps = ecosystem::select(&eco, &o.only)?;
    if let Some(n) = &o.env_name {
        if !apps.iter().any(|a| a.env_named.contains_key(n)) {
            eprintln!(
                "ward: warning: {file}: no app has an env_{n} block; --env {n} changes nothing"
            );
        }
    }
    let ctx = ecosystem::Ctx {
        shell_env: &shell,
        env_name: o.env_name.as_deref(),
        cpus: cpus(),
    };
    items_of(file, &eco, &apps, &ctx, o.namespace.as_deref())
}

/// Start items for some apps of an ecosystem file; every error of every app is reported
/// before anything is sent.
fn items_of(
    file: &str,
    eco: &ecosystem::Ecosystem,
    apps: &[&crate::spec::appkeys::EcoApp],
    ctx: &ecosystem::Ctx,
    namespace: Option<&str>,
) -> Result<Vec<StartItem>> {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for &a in apps {
        match ecosystem::to_spec(eco, a, ctx) {
            Ok(mut spec) => {
                if (a.cluster || spec.instances > 1) && !spec.cluster {
                    fork_copies_note(&a.name, spec.instances);
                }
                if let Some(ns) = namespace {
                    spec.namespace = ns.to_string();
                }
                match owner(a.uid.as_deref(), a.gid.as_deref()) {
                    Ok((uid, gid)) => (spec.uid, spec.gid) = (uid, gid),
                    Err(e) => {
                        errors.push(format!("{file}: app {}: {e}", a.name));
                        continue;
                    }
                }
                items.push(StartItem {
                    target: a.name.clone(),
                    spec: Some(spec),
                    spec_error: None,
                    force: false,
                    ecosystem: true,
                    watch_toggle: false,
                    patch: None,
                });
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    if !errors.is_empty() {
        return Err(Error::new(format!(
            "{}\nward: {file}: nothing was done",
            errors.join("\nward: ")
        )));
    }
    Ok(items)
}

fn act(home: &Home, verb: Verb, targets: Vec<String>, o: &ActOpts) -> Result<i32> {
    let restart = matches!(verb, Verb::Restart | Verb::Reload);
    let Some(file) = targets.iter().find(|t| ecosystem::is_ecosystem(t)) else {
        if o.env_name.is_some() || !o.only.is_empty() {
            return Err(Error::new(format!(
                "--env and --only select apps of an ecosystem file, and {} is not one",
                targets[0]
            )));
        }
        let label = {
            let doing = match verb {
                Verb::Stop => "stopping",
                Verb::Restart => "restarting",
                Verb::Reload => "reloading",
                Verb::Delete => "deleting",
            };
            let mut what = targets.join(" ");
            if what.chars().count() > 40 {
                what = format!("{} targets", targets.len());
            }
            format!("{doing} {what}")
        };
        let req = Request::Act {
            verb,
            targets,
            update_env: o.update_env.then(shell_env),
            cwd: here_str(),
            patch: o.patch.clone(),
            toggle_watch: o.toggle_watch,
        };
        let code = done(home, request_showing(home, &req, label)?)?;
        if restart && !o.update_env {
            // pm2's hint, after the table as pm2 prints it; chatter, so not with --silent.
            chatter("[ward] Use --update-env to update environment variables\n");
        }
        return Ok(code);
    };
    if targets.len() > 1 {
        return Err(Error::new(format!(
            "{file} is an ecosystem file: give it on its own (--only picks its apps)"
        )));
    }
    let shell = shell_env();
    let mut eco = ecosystem::load(file, &here()?, shell.get("PATH").map(String::as_str))?;
    ecosystem::apply_env_name(&mut eco, o.env_name.as_deref());
    for w in &eco.warnings {
        eprintln!("{}", speak(&format!("ward: warning: {w}")));
    }
    let apps = ecosystem::select(&eco, &o.only)?;
    let reply = request(
        home,
        &Request::List { env: false },
        Duration::from_secs(30),
        true,
    )?;
    let Reply::List { apps: table, .. } = reply else {
        return unexpected(reply);
    };
    let (present, missing): (Vec<_>, Vec<_>) = apps
        .into_iter()
        .partition(|a| table.iter().any(|v| v.app.spec.name == a.name));
    if restart {
        return restart_file(home, verb, file, &eco, &present, &missing, o, &shell);
    }
    for m in &missing {
        eprintln!(
            "{}",
            speak(&format!(
                "ward: warning: {file}: app {} is not registered; skipped",
                m.name
            ))
        );
    }
    if present.is_empty() {
        return Err(Error::new(format!(
            "none of the apps of {file} is registered, so there is nothing to {}",
            verb.as_str()
        )));
    }
    let targets = present.iter().map(|a| a.name.clone()).collect();
    let req = Request::Act {
        verb,
        targets,
        update_env: None,
        cwd: None,
        patch: None,
        toggle_watch: false,
    };
    done(home, request(home, &req, Duration::from_secs(600), true)?)
}

/// `restart FILE`, `reload FILE` (pm2's `_startJson` with restartProcessId): each
/// registered app of the file takes every key the file gives it (`'null'` deletes one)
/// and the file's environment; the apps not registered are started.
#[allow(clippy::too_many_arguments)]
fn restart_file(
    home: &Home,
    verb: Verb,
    file: &str,
    eco: &ecosystem::Ecosystem,
    present: &[&crate::spec::appkeys::EcoApp],
    missing: &[&crate::spec::appkeys::EcoApp],
    o: &ActOpts,
    shell: &BTreeMap<String, String>,
) -> Result<i32> {
    let ctx = ecosystem::Ctx {
        shell_env: shell,
        env_name: o.env_name.as_deref(),
        cpus: cpus(),
    };
    // Everything is checked before anything is sent.
    let mut reqs = Vec::new();
    for a in present {
        let spec = ecosystem::to_spec(eco, a, &ctx)?;
        let mut env = if o.update_env {
            shell.clone()
        } else {
            BTreeMap::new()
        };
        env.extend(ecosystem::file_env(a, o.env_name.as_deref()));
        reqs.push(Request::Act {
            verb,
            targets: vec![a.name.clone()],
            update_env: Some(env),
            cwd: None,
            patch: Some(crate::client::given::of_file(&spec, &a.keys, &a.nulls)),
            toggle_watch: false,
        });
    }
    let start = items_of(file, eco, missing, &ctx, None)?;
    // Each app gets its own variables from the file, so one request per app.
    let mut notes = Vec::new();
    let mut last = Vec::new();
    for req in reqs {
        match request(home, &req, Duration::from_secs(600), true)? {
            Reply::Done { notes: n, apps } => {
                notes.extend(n);
                last = apps;
            }
            other => return unexpected(other),
        }
    }
    if !start.is_empty() {
        let names: Vec<&str> = missing.iter().map(|a| a.name.as_str()).collect();
        chatter(&format!(
            "{}Applications {} not running, starting...\n",
            crate::client::output::warn_tag(),
            names.join(", ")
        ));
        match request(
            home,
            &Request::Start { items: start },
            Duration::from_secs(600),
            true,
        )? {
            Reply::Done { notes: n, apps } => {
                notes.extend(n);
                last = apps;
            }
            other => return unexpected(other),
        }
    }
    done(home, Reply::Done { notes, apps: last })
}

/// `ward env ID`: pm2 prints `KEY: value` lines.
fn env(home: &Home, target: &str) -> Result<i32> {
    let apps = fetch(home, true)?;
    let found = match target.parse::<u32>() {
        Ok(id) => apps.iter().find(|v| v.app.id == id),
        Err(_) => apps.iter().find(|v| v.app.spec.name == target),
    };
    let Some(v) = found else {
        return Err(Error::new(format!("process {target} not found")));
    };
    let mut vars = (*v.app.spec.env).clone();
    vars.extend(config::pm2_vars(
        v.app.id,
        &v.app.spec,
        &home.root.to_string_lossy(),
    ));
    let mut s = String::new();
    for (k, val) in vars {
        s.push_str(&format!("{k}: {val}\n"));
    }
    out(&s);
    Ok(0)
}

fn write_sample(simple: bool) -> Result<i32> {
    let path = here()?.join("ecosystem.config.js");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                Error::new(format!(
                    "{} already exists; ward does not overwrite it",
                    path.display()
                ))
            } else {
                Error::unable(format_args!("write {}", path.display()), os(&e))
            }
        })?;
    let text = if simple {
        ecosystem::SAMPLE_SIMPLE
    } else {
        ecosystem::SAMPLE
    };
    f.write_all(text.as_bytes())
        .map_err(|e| Error::unable(format_args!("write {}", path.display()), os(&e)))?;
    out(&format!("File {} generated\n", path.display()));
    Ok(0)
}

/// Copies of an app that is not a Node cluster app are separate processes: said once, so
/// that nobody expects them to share a port.
fn fork_copies_note(name: &str, n: u32) {
    let copies = if n == 1 { "copy" } else { "copies" };
    let note = format!(
        "[ward] {name}: {n} {copies} in fork mode: they do not share a port unless the program \
         does it itself (SO_REUSEPORT); cluster mode is for Node apps"
    );
    eprintln!("{}", speak(&note));
}

/// `--uid`/`-u` and `--gid`, by name or number, as pm2 resolves them (Common.js:775-827):
/// a user without a group runs with that user's own group.
fn owner(user: Option<&str>, group: Option<&str>) -> Result<(Option<u32>, Option<u32>)> {
    use crate::os::users;
    let user = match user {
        None => None,
        Some(u) => {
            let found = match u.parse::<u32>() {
                Ok(n) => users::by_uid(n),
                Err(_) => users::by_name(u),
            };
            Some(found.ok_or_else(|| Error::new(format!("User {u} cannot be found")))?)
        }
    };
    let gid = match group {
        None => user.as_ref().map(|u| u.gid),
        Some(g) => {
            Some(users::group(g).ok_or_else(|| Error::new(format!("Group {g} cannot be found")))?)
        }
    };
    Ok((user.map(|u| u.uid), gid))
}

fn start_items(o: &StartOpts, here: &Path) -> Result<Vec<StartItem>> {
    let cwd = match &o.cwd {
        Some(c) => here.join(c),
        None => here.to_path_buf(),
    };
    if !cwd.is_dir() {
        return Err(Error::new(format!(
            "--cwd {}: no such folder",
            cwd.display()
        )));
    }
    if let Some(n) = &o.name {
        config::check_name(n)?;
    }
    let mut env = shell_env();
    let path_var = env.get("PATH").cloned();
    let path_var = path_var.as_deref();
    if let Some(f) = &o.filter_env {
        // pm2's filter_env: `true` drops the whole shell environment, strings drop the
        // variables whose name contains one of them.
        env.retain(|k, _| !f.is_empty() && !f.iter().any(|s| k.contains(s.as_str())));
    }
    let instances = o
        .instances
        .map_or(1, |n| ecosystem::resolve_instances(n, cpus()));
    let (uid, gid) = owner(o.uid.as_deref(), o.gid.as_deref())?;
    let mut ignore_watch = o.ignore_watch.clone();
    if !o.ext.is_empty() {
        ignore_watch.extend(crate::client::watchext::ignores(&cwd, &o.ext));
    }
    let mut items = Vec::new();
    for target in &o.targets {
        let shell = config::command_string(target, &cwd, path_var);
        let resolved = match &shell {
            Some((sh, _)) => Ok((sh.clone(), None)),
            None => config::resolve_script(target, &cwd, o.interpreter.as_deref(), path_var),
        };
        let (spec, spec_error) = match resolved {
            Ok((script, interpreter)) => {
                let d = AppSpec::default();
                // pm2's `determineExecMode`: `-i` with a Node interpreter is cluster.
                let cluster = o.instances.is_some()
                    && !o.fork
                    && interpreter.as_deref().is_some_and(config::is_node_program);
                if instances > 1 && !cluster {
                    fork_copies_note(&config::default_name(target), instances);
                }
                let spec = AppSpec {
                    name: o
                        .name
                        .clone()
                        .unwrap_or_else(|| config::default_name(target)),
                    script,
                    // A command string's arguments are the shell's `-c STRING`.
                    args: shell
                        .as_ref()
                        .map_or_else(|| o.args.clone(), |s| s.1.clone()),
                    interpreter,
                    interpreter_args: o.interpreter_args.clone(),
                    cwd: cwd.to_string_lossy().into_owned(),
                    env: std::sync::Arc::new(env.clone()),
                    namespace: o.namespace.clone().unwrap_or(d.namespace),
                    autorestart: !o.no_autorestart,
                    max_restarts: o.max_restarts.unwrap_or(d.max_restarts),
                    min_uptime: o.min_uptime.unwrap_or(d.min_uptime),
                    restart_delay: o.restart_delay.unwrap_or(d.restart_delay),
                    exp_backoff_restart_delay: o
                        .exp_backoff_restart_delay
                        .unwrap_or(d.exp_backoff_restart_delay),
                    kill_timeout: o.kill_timeout.unwrap_or(d.kill_timeout),
                    kill_signal: o.kill_signal.unwrap_or(d.kill_signal),
                    stop_exit_codes: o.stop_exit_codes.clone(),
                    out_file: o
                        .out_file
                        .as_ref()
                        .map(|p| log_path(&cwd, p))
                        .unwrap_or_default(),
                    error_file: o
                        .error_file
                        .as_ref()
                        .map(|p| log_path(&cwd, p))
                        .unwrap_or_default(),
                    log_file: match o.log_file.as_deref() {
                        None => String::new(),
                        // `-l` alone: relative, so the daemon puts it in its logs folder.
                        Some("true") => format!(
                            "{}.log",
                            config::log_stem(
                                &o.name
                                    .clone()
                                    .unwrap_or_else(|| config::default_name(target))
                            )
                        ),
                        Some(p) => log_path(&cwd, p),
                    },
                    // pm2's `--time` is `log_date_format: 'YYYY-MM-DDTHH:mm:ss'`.
                    log_date_format: o.log_date_format.clone().or_else(|| {
                        o.time
                            .then(|| crate::spec::datefmt::TIME_FORMAT.to_string())
                    }),
                    max_log_size: o.max_log_size,
                    log_retain: o.log_retain,
                    max_memory_restart: o.max_memory_restart,
                    cron_restart: o.cron_restart.clone().filter(|c| c.trim() != "0"),
                    // pm2's `watch: true` is the app's folder; paths are its own.
                    watch: match &o.watch {
                        None => Vec::new(),
                        Some(p) if p.is_empty() => vec![cwd.to_string_lossy().into_owned()],
                        Some(p) => p
                            .iter()
                            .map(|p| cwd.join(p).to_string_lossy().into_owned())
                            .collect(),
                    },
                    ignore_watch: ignore_watch.clone(),
                    watch_delay: o.watch_delay.unwrap_or(d.watch_delay),
                    pid_file: o
                        .pid_file
                        .as_ref()
                        .map(|p| cwd.join(p).to_string_lossy().into_owned())
                        .unwrap_or_default(),
                    instances,
                    cluster,
                    wait_ready: o.wait_ready,
                    listen_timeout: o.listen_timeout.unwrap_or(d.listen_timeout),
                    shutdown_with_message: o.shutdown_with_message,
                    // pm2 keeps one log per copy once instances are asked for.
                    merge_logs: o.merge_logs || o.instances.is_none(),
                    autostart: !o.no_autostart,
                    disable_logs: o.disable_logs,
                    log_type: o.log_type.clone(),
                    instance_var: o.instance_var.clone().unwrap_or(d.instance_var.clone()),
                    treekill: !o.no_treekill,
                    increment_var: o.increment_var.clone(),
                    uid,
                    gid,
                    ..d
                };
                (Some(spec), None)
            }
            Err(e) => (None, Some(e.to_string())),
        };
        items.push(StartItem {
            target: target.clone(),
            spec,
            spec_error,
            force: o.force,
            ecosystem: false,
            watch_toggle: o.watch.is_some(),
            // pm2's start of a registered app is a restart with these options.
            patch: crate::client::given::of_start(o),
        });
    }
    Ok(items)
}
