//! ward: keeps programs running. One binary: `ward daemon` is the daemon, every other
//! command is a client of it. This file dispatches and turns errors into a message and an
//! exit code; everything else lives in its own module.

#![deny(unsafe_code)]

mod cli;
#[allow(unsafe_code)]
mod client;
mod config;
mod daemon;
mod datefmt;
mod error;
mod follow;
mod holder;
mod home;
mod lifecycle;
mod logs;
mod proc;
mod protocol;
mod render;
mod sock;
#[allow(unsafe_code)]
mod spawn;
mod startup;
mod store;
#[allow(unsafe_code)]
mod sys;
mod table;

use cli::Command;

fn main() {
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let code = match run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("ward: {e}");
            1
        }
    };
    std::process::exit(code);
}

fn run(args: Vec<std::ffi::OsString>) -> error::Result<i32> {
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
            lock_fd,
            sock_fd,
        } => {
            let inherited = daemon::Inherited {
                lock: lock_fd,
                sock: sock_fd,
            };
            daemon::run(home::Home::from_env()?, spawned, resurrect, inherited)?;
            Ok(0)
        }
        Command::Holder => {
            holder::run(&home::Home::from_env()?)?;
            Ok(0)
        }
        other => client::run(other, &home::Home::from_env()?),
    }
}
