//! The client's commands: each turns its parsed command line into requests (through
//! talk.rs) and prints the replies (through output.rs and the renderers).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::client::cli::{ActOpts, Command, StartOpts};
use crate::client::output::{chatter, out, silent, style};
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
                &Request::Control { op, targets },
                Duration::from_secs(600),
                true,
            )?;
            done(home, reply)
        }
        Command::Ecosystem => write_sample(),
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
                    eprintln!("ward: {message}");
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
    out(&s);
    Ok(0)
}

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
        let mut s = render::jlist(
            &apps,
            &home.root.to_string_lossy(),
            &crate::os::sys::user_name(),
        );
        s.push('\n');
        out(&s);
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
    if silent() {
        return Ok(0);
    }
    let mut s = String::new();
    for n in notes {
        s.push_str("[ward] ");
        s.push_str(&n);
        s.push('\n');
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
    while alive(pid) && Instant::now() < until {
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
    // This home when it is yours; the user's default home otherwise.
    let ward_home = if user == me && o.home.is_none() {
        home.root.to_string_lossy().into_owned()
    } else {
        format!("{user_home}/.ward")
    };
    let exe = std::env::current_exe()
        .map_err(|e| Error::unable("find the ward binary", os(&e)))?
        .to_string_lossy()
        .into_owned();
    let t = Target {
        init,
        service: o.service.clone().unwrap_or_else(|| format!("ward-{user}")),
        user,
        home: user_home,
        ward_home,
        exe,
        path_var,
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
            "[ward] to {} it, run as root:\nsudo env PATH=$PATH {} {verb} {} -u {} --hp {}\n",
            if o.remove { "remove" } else { "install" },
            t.exe,
            t.init.as_str(),
            t.user,
            t.home
        ));
        out(&s);
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

fn import_pm2(home: &Home, path: Option<String>, start: bool) -> Result<i32> {
    let pm2_home = std::env::var_os("PM2_HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".pm2")))
        .ok_or_else(|| Error::new("neither PM2_HOME nor HOME is set; give the dump's path"))?;
    let path = path
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| pm2_home.join("dump.pm2"));
    let text = std::fs::read_to_string(&path)
        .map_err(|e| Error::unable(format_args!("read {}", path.display()), os(&e)))?;
    let value: serde_json::Value = serde_json::from_str(&text)
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
    let reply = request(
        home,
        &Request::Start { items },
        Duration::from_secs(600),
        true,
    )?;
    done(home, reply)
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
            out(&format!(
                "[ward] daemon updated in place: pid {pid}{}, ward {version}; no app was restarted\n",
                if pid == before { " (unchanged)" } else { "" }
            ));
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

fn alive(pid: u32) -> bool {
    // A zombie counts as gone: it is only waiting for its parent.
    match crate::os::proc::read_stat(pid) {
        Some(st) => st.state != 'Z',
        None => false,
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
    start_and_show(home, items)
}

/// The apps of an ecosystem file, as start items; every error of every app is reported
/// before anything is sent.
fn file_items(file: &str, o: &StartOpts, here: &Path) -> Result<Vec<StartItem>> {
    let shell = shell_env();
    let mut eco = ecosystem::load(file, here, shell.get("PATH").map(String::as_str))?;
    ecosystem::apply_env_name(&mut eco, o.env_name.as_deref());
    for w in &eco.warnings {
        eprintln!("ward: warning: {w}");
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
    let mut items = Vec::new();
    let mut errors = Vec::new();
    for a in apps {
        match ecosystem::to_spec(&eco, a, &ctx) {
            Ok(mut spec) => {
                if a.cluster {
                    eprintln!(
                        "[ward] {}: exec_mode cluster runs as {} separate processes in fork mode \
                         (ward has no Node cluster module; they do not share a port)",
                        a.name, spec.instances
                    );
                }
                if let Some(ns) = &o.namespace {
                    spec.namespace = ns.clone();
                }
                items.push(StartItem {
                    target: a.name.clone(),
                    spec: Some(spec),
                    spec_error: None,
                    force: false,
                    ecosystem: true,
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
        let reply = request(
            home,
            &Request::Act {
                verb,
                targets,
                update_env: o.update_env.then(shell_env),
            },
            Duration::from_secs(600),
            true,
        )?;
        let code = done(home, reply)?;
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
        eprintln!("ward: warning: {w}");
    }
    let apps = ecosystem::select(&eco, &o.only)?;
    let reply = request(
        home,
        &Request::List { env: false },
        Duration::from_secs(30),
        true,
    )?;
    let Reply::List { apps: table } = reply else {
        return unexpected(reply);
    };
    let (present, missing): (Vec<_>, Vec<_>) = apps
        .into_iter()
        .partition(|a| table.iter().any(|v| v.app.spec.name == a.name));
    for m in &missing {
        eprintln!(
            "ward: warning: {file}: app {} is not registered; skipped",
            m.name
        );
    }
    if present.is_empty() {
        return Err(Error::new(format!(
            "none of the apps of {file} is registered, so there is nothing to {}",
            verb.as_str()
        )));
    }
    if !restart {
        let targets = present.iter().map(|a| a.name.clone()).collect();
        let req = Request::Act {
            verb,
            targets,
            update_env: None,
        };
        return done(home, request(home, &req, Duration::from_secs(600), true)?);
    }
    // Each app gets its own variables from the file, so one request per app.
    let mut notes = Vec::new();
    let mut last = Vec::new();
    for a in present {
        let mut env = if o.update_env {
            shell.clone()
        } else {
            BTreeMap::new()
        };
        env.extend(ecosystem::file_env(a, o.env_name.as_deref()));
        let req = Request::Act {
            verb,
            targets: vec![a.name.clone()],
            update_env: Some(env),
        };
        match request(home, &req, Duration::from_secs(600), true)? {
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

fn write_sample() -> Result<i32> {
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
    f.write_all(ecosystem::SAMPLE.as_bytes())
        .map_err(|e| Error::unable(format_args!("write {}", path.display()), os(&e)))?;
    out(&format!("File {} generated\n", path.display()));
    Ok(0)
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
    let env = shell_env();
    let path_var = env.get("PATH").map(String::as_str);
    let instances = o
        .instances
        .map_or(1, |n| ecosystem::resolve_instances(n, cpus()));
    let mut items = Vec::new();
    for target in &o.targets {
        let (spec, spec_error) =
            match config::resolve_script(target, &cwd, o.interpreter.as_deref(), path_var) {
                Ok((script, interpreter)) => {
                    let d = AppSpec::default();
                    let spec = AppSpec {
                        name: o
                            .name
                            .clone()
                            .unwrap_or_else(|| config::default_name(target)),
                        script,
                        args: o.args.clone(),
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
                        ignore_watch: o.ignore_watch.clone(),
                        watch_delay: o.watch_delay.unwrap_or(d.watch_delay),
                        pid_file: o
                            .pid_file
                            .as_ref()
                            .map(|p| cwd.join(p).to_string_lossy().into_owned())
                            .unwrap_or_default(),
                        instances,
                        // pm2 keeps one log per copy once instances are asked for.
                        merge_logs: o.merge_logs || o.instances.is_none(),
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
        });
    }
    Ok(items)
}
