//! The container runtime's command line: `ward-runtime …`, `ward runtime …` and, called as
//! `pm2-runtime`, pm2-runtime's own (lib/binaries/Runtime4Docker.js): `[start] FILE|SCRIPT`
//! with `ward start`'s flags, plus the output format, `--no-auto-exit`, `--delay`, and
//! pm2.io's flags, accepted and said to be ignored. `--check` is a probe for Kubernetes.
//!
//! Parsing touches nothing; `items` reads the ecosystem file (as `ward start` does) and
//! makes the apps' files pm2-runtime's: none unless asked.

use std::ffi::OsString;
use std::time::Duration;

use crate::client::cli::{self, Command, StartOpts};
use crate::client::commands;
use crate::client::talk;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::protocol::{Reply, Request, StartItem};
use crate::spec::runtime::{Format, RuntimeOpts};

#[derive(Debug, PartialEq)]
pub enum RuntimeCmd {
    /// No arguments: the help on stderr and status 1, as pm2-runtime.
    Usage,
    Help,
    Version,
    /// `--check`: does the runtime answer, and is every app up?
    Check,
    Run {
        opts: RuntimeOpts,
        start: Box<StartOpts>,
        no_autostart: bool,
        /// pm2.io flags given, to say once that they do nothing here.
        ignored: Vec<String>,
    },
}

/// pm2-runtime flags that belong to pm2.io; `true`: takes an optional value.
const PM2_IO: &[(&str, bool)] = &[
    ("--secret", true),
    ("--public", true),
    ("--machine-name", true),
    ("--web", true),
    ("--trace", false),
    ("--v8", false),
    ("--deep-monitoring", false),
];

/// Parses the arguments after the program name (after `runtime` for `ward runtime`).
pub fn parse(args: Vec<OsString>, pm2: bool) -> Result<RuntimeCmd> {
    if args.is_empty() {
        return Ok(RuntimeCmd::Usage);
    }
    let (head, tail) = match args.iter().position(|a| a == "--") {
        Some(i) => (args[..i].to_vec(), Some(args[i + 1..].to_vec())),
        None => (args, None),
    };
    let head: Vec<String> = head
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| Error::new(format!("argument {a:?} is not valid UTF-8")))
        })
        .collect::<Result<_>>()?;
    let mut opts = RuntimeOpts {
        pm2,
        ..RuntimeOpts::default()
    };
    let mut no_autostart = false;
    let mut ignored = Vec::new();
    let mut rest: Vec<OsString> = vec!["start".into()];
    let mut i = 0;
    while i < head.len() {
        let a = head[i].as_str();
        i += 1;
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (a, None),
        };
        match flag {
            // pm2-runtime's `start` command and its default command are the same.
            "start" if i == 1 => {}
            "--raw" => opts.format = Format::Raw,
            "--json" => opts.format = Format::Json,
            "--format" => opts.format = Format::KeyValue,
            "--formatted" => opts.format = Format::Formatted,
            "--no-auto-exit" => opts.auto_exit = false,
            "--auto-exit" => opts.auto_exit = true,
            "--no-autostart" => no_autostart = true,
            "--check" => return Ok(RuntimeCmd::Check),
            "-h" | "--help" => return Ok(RuntimeCmd::Help),
            "-V" | "--version" => return Ok(RuntimeCmd::Version),
            "--delay" => {
                let v = match inline {
                    Some(v) => v,
                    None if i < head.len() => {
                        i += 1;
                        head[i - 1].clone()
                    }
                    None => return Err(Error::new("--delay needs a number of seconds")),
                };
                let secs: f64 = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| s.is_finite() && *s >= 0.0 && *s < 1e9)
                    .ok_or_else(|| {
                        Error::new(format!("invalid value {v:?} for --delay: expected seconds"))
                    })?;
                opts.delay_ms = (secs * 1000.0) as u64;
            }
            f if PM2_IO.iter().any(|(n, _)| *n == f) => {
                let takes = PM2_IO.iter().any(|(n, v)| *n == f && *v);
                // commander's `[value]`: the next word when it is no flag (for --web, a
                // port number, so that `--web app.js` keeps the script).
                if takes && inline.is_none() && i < head.len() {
                    let next = &head[i];
                    let fits = !next.starts_with('-')
                        && (f != "--web" || next.chars().all(|c| c.is_ascii_digit()));
                    if fits {
                        i += 1;
                    }
                }
                ignored.push(f.to_string());
            }
            _ => rest.push(a.into()),
        }
    }
    if let Some(tail) = tail {
        rest.push("--".into());
        rest.extend(tail);
    }
    let start = match cli::parse(rest)? {
        Command::Start(o) => o,
        Command::Help(_) => return Ok(RuntimeCmd::Help),
        other => return Err(Error::new(format!("unexpected command line: {other:?}"))),
    };
    opts.what = start.targets.join(" ");
    Ok(RuntimeCmd::Run {
        opts,
        start,
        no_autostart,
        ignored,
    })
}

/// The apps to start, as `ward start` would send them, with pm2-runtime's files: output
/// and errors go nowhere but the runtime's own stdout/stderr unless `--output`/`--error`
/// (or the ecosystem file's `out_file`/`error_file`) ask for a file.
pub fn items(start: &StartOpts, no_autostart: bool) -> Result<Vec<StartItem>> {
    let mut items = commands::start_request(start)?;
    let here = std::env::current_dir()
        .map_err(|e| Error::unable("read the current folder", crate::error::os(&e)))?;
    let path = |p: &str| {
        if crate::logs::is_discard(p) {
            p.to_string()
        } else {
            here.join(p).to_string_lossy().into_owned()
        }
    };
    for item in &mut items {
        let Some(spec) = item.spec.as_mut() else {
            continue;
        };
        for (file, flag) in [
            (&mut spec.out_file, &start.out_file),
            (&mut spec.error_file, &start.error_file),
        ] {
            match flag {
                Some(p) if item.ecosystem => *file = path(p),
                Some(_) => {}
                None if file.is_empty() => *file = "/dev/null".into(),
                None => {}
            }
        }
        if no_autostart {
            spec.autostart = false;
        }
    }
    Ok(items)
}

/// The runtime's folder from the environment (`$WARD_HOME`, or `$PM2_HOME` as pm2), or
/// `None` for a fresh temporary one.
pub fn home(pm2: bool) -> Result<Option<Home>> {
    let var = if pm2 { "PM2_HOME" } else { "WARD_HOME" };
    match std::env::var_os(var).filter(|v| !v.is_empty()) {
        Some(_) => Home::from_env(pm2).map(Some),
        None => Ok(None),
    }
}

/// `--check`, a Kubernetes probe: 0 when the runtime answers and no app is launching,
/// waiting to restart or errored; never starts a daemon.
pub fn check(home: &Home) -> Result<i32> {
    let apps = match talk::request(
        home,
        &Request::List { env: false },
        Duration::from_secs(5),
        false,
    )? {
        Reply::List { apps, .. } => apps,
        other => return talk::unexpected(other),
    };
    use crate::lifecycle::Status;
    let down: Vec<String> = apps
        .iter()
        .map(|a| &a.app)
        .filter(|a| !matches!(a.run.status, Status::Online | Status::Stopped))
        .map(|a| format!("{} {}", a.spec.name, a.run.status.as_str()))
        .collect();
    if down.is_empty() {
        let online = apps
            .iter()
            .filter(|a| a.app.run.status == Status::Online)
            .count();
        crate::client::output::out(&format!("ready: {online} app(s) online\n"));
        Ok(0)
    } else {
        Err(Error::new(format!("not ready: {}", down.join(", "))))
    }
}

/// The note for pm2.io flags, which a runtime without pm2.io takes and ignores.
pub fn ignored_note(flags: &[String]) -> Option<String> {
    (!flags.is_empty()).then(|| {
        format!(
            "{} belong{} to pm2.io monitoring, which ward does not provide: ignored",
            flags.join(", "),
            if flags.len() == 1 { "s" } else { "" }
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> RuntimeCmd {
        parse(s.split_whitespace().map(OsString::from).collect(), true).unwrap()
    }

    #[test]
    fn pm2_runtime_command_lines() {
        let RuntimeCmd::Run { opts, start, .. } =
            p("start ecosystem.config.js --env production --only api --json --no-auto-exit")
        else {
            panic!()
        };
        assert_eq!(start.targets, ["ecosystem.config.js"]);
        assert_eq!(start.env_name.as_deref(), Some("production"));
        assert_eq!(start.only, ["api"]);
        assert_eq!(opts.format, Format::Json);
        assert!(!opts.auto_exit);
        let RuntimeCmd::Run {
            opts,
            start,
            ignored,
            ..
        } = p("app.js -i max --secret abc --web --delay 1.5 --formatted --max-memory-restart 100M")
        else {
            panic!()
        };
        assert_eq!(start.targets, ["app.js"]);
        assert_eq!(start.instances, Some(0));
        assert_eq!(opts.delay_ms, 1500);
        assert_eq!(opts.format, Format::Formatted);
        assert!(opts.auto_exit);
        assert_eq!(ignored, ["--secret", "--web"]);
        assert!(start.max_memory_restart.is_some());
        let RuntimeCmd::Run { start, ignored, .. } = p("--web app.js --format") else {
            panic!()
        };
        assert_eq!(
            start.targets,
            ["app.js"],
            "--web takes a port, not the script"
        );
        assert_eq!(ignored, ["--web"]);
    }

    #[test]
    fn usage_check_help_and_errors() {
        assert_eq!(parse(Vec::new(), false).unwrap(), RuntimeCmd::Usage);
        assert_eq!(p("--check"), RuntimeCmd::Check);
        assert_eq!(p("app.js --help"), RuntimeCmd::Help);
        assert!(parse(vec!["app.js".into(), "--delay".into(), "x".into()], false).is_err());
        assert!(parse(vec!["app.js".into(), "--bogus".into()], false).is_err());
        let RuntimeCmd::Run { start, .. } = parse(
            ["sleep", "--json", "--", "--json", "5"]
                .map(OsString::from)
                .to_vec(),
            false,
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(
            start.args,
            ["--json", "5"],
            "after -- everything is the script's"
        );
    }
}
