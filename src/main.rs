//! ward: keeps programs running. One binary: `ward daemon` is the daemon, every other
//! command is a client of it. This file dispatches and turns errors into a message and an
//! exit code; everything else lives in its own module.

#![deny(unsafe_code)]

mod appkeys;
mod attach;
mod cli;
#[allow(unsafe_code)]
mod client;
mod config;
mod cron;
mod daemon;
mod datefmt;
mod ecosystem;
mod error;
mod follow;
#[allow(unsafe_code)]
mod forker;
mod holder;
mod home;
mod inspect;
mod instances;
mod jsonish;
mod lifecycle;
mod logs;
mod monit;
mod outbox;
mod pm2dump;
mod proc;
mod protocol;
mod render;
mod report;
mod schedule;
mod sock;
#[allow(unsafe_code)]
mod spawn;
mod startup;
mod store;
#[allow(unsafe_code)]
mod sys;
mod table;
mod watch;
mod yaml;

use cli::Command;

fn main() {
    let mut args = std::env::args_os();
    let argv0 = args.next().unwrap_or_default();
    // Installed (or linked) as `pm2`: pm2's home, file names and messages.
    let pm2 = std::path::Path::new(&argv0)
        .file_name()
        .is_some_and(|n| n == "pm2");
    let code = match run(args.collect(), pm2) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}: {e}", if pm2 { "pm2" } else { "ward" });
            1
        }
    };
    std::process::exit(code);
}

fn run(args: Vec<std::ffi::OsString>, pm2: bool) -> error::Result<i32> {
    let args = client::take_output_flags(args);
    if let Some(code) = cli::unsupported(&args) {
        return Ok(code);
    }
    let cmd = cli::parse(args)?;
    match cmd {
        Command::Version => {
            client::out(&format!("{}\n", env!("CARGO_PKG_VERSION")));
            Ok(0)
        }
        Command::Help(topic) => {
            client::out(&cli::help(topic.as_deref())?);
            Ok(0)
        }
        Command::Daemon {
            spawned,
            resurrect,
            wait_lock,
            lock_fd,
            sock_fd,
        } => {
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
            forker::run()?;
            Ok(0)
        }
        Command::Holder => {
            holder::run(&home::Home::from_env(pm2)?)?;
            Ok(0)
        }
        other => client::run(other, &home::Home::from_env(pm2)?),
    }
}
