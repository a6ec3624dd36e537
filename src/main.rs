//! ward: keeps programs running. One binary: `ward daemon` is the daemon, every other
//! command is a client of it. This file dispatches and turns errors into a message and an
//! exit code; everything else lives in its own module.

#![deny(unsafe_code)]

mod client;
mod daemon;
mod error;
mod home;
mod json;
mod lifecycle;
mod logs;
// Unsafe code is allowed file by file inside os/ (see os/mod.rs), nowhere else.
mod os;
mod protocol;
mod spec;
mod store;
mod table;
mod tagfirst;

use client::cli::{self, Command};
use client::commands as client_cmd;
use os::forker;

fn main() {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    let called = std::path::Path::new(&argv0)
        .file_name()
        .unwrap_or_default()
        .to_owned();
    // Linked as `pm2-runtime` (or pm2's older `pm2-docker`): pm2-runtime's command line.
    let pm2_runtime = called == "pm2-runtime" || called == "pm2-docker";
    // Installed (or linked) as `pm2`: pm2's home, file names and messages.
    let pm2 = called == "pm2" || pm2_runtime;
    client::output::set_pm2(pm2);
    let args: Vec<std::ffi::OsString> = args.collect();
    let result = if pm2_runtime || called == "ward-runtime" {
        runtime(args, pm2)
    } else if args.first().is_some_and(|a| a == "runtime") {
        runtime(args[1..].to_vec(), pm2)
    } else {
        run(args, pm2)
    };
    let code = match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", client::output::error_line(&e.to_string()));
            1
        }
    };
    std::process::exit(code);
}

/// How much of the daemon's and the fork server's small allocations the static build
/// serves from its pool (os/pool.rs).
const DAEMON_POOL: usize = 8 << 20;
const FORKER_POOL: usize = 2 << 20;

/// The container runtime: the apps of its command line, supervised in the foreground.
fn runtime(args: Vec<std::ffi::OsString>, pm2: bool) -> error::Result<i32> {
    use client::runtime_cli::{self, RuntimeCmd};
    match runtime_cli::parse(args, pm2)? {
        RuntimeCmd::Usage => {
            eprint!("{}", client::guide::help(Some("runtime"))?);
            Ok(1)
        }
        RuntimeCmd::Help => {
            client::output::out(&client::guide::help(Some("runtime"))?);
            Ok(0)
        }
        RuntimeCmd::Version => {
            client::output::out(&format!("{}\n", env!("CARGO_PKG_VERSION")));
            Ok(0)
        }
        RuntimeCmd::Check => runtime_cli::check(&home::Home::from_env(pm2)?),
        RuntimeCmd::Run {
            opts,
            start,
            no_autostart,
            ignored,
        } => {
            // The runtime is the daemon, in the foreground.
            os::pool::enable_up_to(DAEMON_POOL);
            let items = runtime_cli::items(&start, no_autostart)?;
            let home = runtime_cli::home(pm2)?;
            if let Some(note) = runtime_cli::ignored_note(&ignored) {
                eprintln!(
                    "{}: {note}",
                    if pm2 { "pm2-runtime" } else { "ward-runtime" }
                );
            }
            daemon::run_runtime(home, opts, items)
        }
    }
}

fn run(args: Vec<std::ffi::OsString>, pm2: bool) -> error::Result<i32> {
    let args = client::output::take_output_flags(args);
    if let Some(code) = cli::unsupported(&args) {
        return Ok(code);
    }
    let cmd = cli::parse(args)?;
    match cmd {
        Command::Version => {
            client::output::out(&format!("{}\n", env!("CARGO_PKG_VERSION")));
            Ok(0)
        }
        Command::Help(topic) => {
            client::output::out(&client::guide::help(topic.as_deref())?);
            Ok(0)
        }
        Command::Daemon {
            spawned,
            resurrect,
            wait_lock,
            lock_fd,
            sock_fd,
        } => {
            // Its first 8 MiB of small allocations from the pool (os/pool.rs): what it
            // keeps after a peak is bounded, and musl's allocator serves the rest.
            os::pool::enable_up_to(DAEMON_POOL);
            let inherited = daemon::Inherited {
                lock: lock_fd,
                sock: sock_fd,
            };
            daemon::run(
                home::Home::from_env(pm2)?,
                spawned,
                resurrect,
                wait_lock,
                inherited,
            )?;
            Ok(0)
        }
        Command::Forker => {
            // One request at a time: its pool holds about one request's worth.
            os::pool::enable_up_to(FORKER_POOL);
            forker::run()?;
            Ok(0)
        }
        Command::Holder => {
            daemon::holder::run(&home::Home::from_env(pm2)?)?;
            Ok(0)
        }
        other => {
            let short_lived = match &other {
                Command::List { .. }
                | Command::Jlist
                | Command::Prettylist
                | Command::Describe { .. } => true,
                // `start --attach` goes on printing the app's output.
                Command::Start(o) => !o.attach,
                _ => false,
            };
            if short_lived {
                // Allocation-heavy with many apps (os/pool.rs).
                os::pool::enable();
            }
            client_cmd::run(other, &home::Home::from_env(pm2)?)
        }
    }
}
