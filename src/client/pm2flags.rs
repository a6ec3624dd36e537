//! pm2's command-line options, as a table: pm2 gives every command its whole option list
//! (binaries/CLI.js:31-96), so `pm2 stop api --update-env` or `pm2 logs --no-color` is
//! valid and scripts pass such options freely. A command's own parser handles the options
//! it gives a meaning to; any other option of this table is accepted there and ignored,
//! with its value consumed. pm2.io and V8 options are ignored everywhere, with one line on
//! stderr. An option pm2 refuses is refused.

use lexopt::prelude::*;

use crate::error::{Error, Result};

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Takes {
    Nothing,
    /// `<value>`: the next word.
    Value,
    /// `[value]`: only with `=` (a following word stays an argument).
    Optional,
}

pub struct Opt {
    pub long: &'static str,
    pub short: Option<char>,
    pub takes: Takes,
    /// pm2.io, V8 and container options: nothing to do in ward.
    pub foreign: bool,
}

const fn o(long: &'static str, short: Option<char>, takes: Takes, foreign: bool) -> Opt {
    Opt {
        long,
        short,
        takes,
        foreign,
    }
}

use Takes::{Nothing as N, Optional as O, Value as V};

/// pm2 7's global options (binaries/CLI.js:31-96) and the options of its `start` and
/// `logs` commands. `--wait-ready`, `--listen-timeout` and `--shutdown-with-message`
/// belong to the cluster/IPC work and are not listed here yet.
pub const OPTIONS: &[Opt] = &[
    o("version", Some('v'), N, false),
    o("silent", Some('s'), N, false),
    o("ext", None, V, false),
    o("name", Some('n'), V, false),
    o("mini-list", Some('m'), N, false),
    o("interpreter", None, V, false),
    o("interpreter-args", None, V, false),
    o("node-args", None, V, false),
    o("output", Some('o'), V, false),
    o("error", Some('e'), V, false),
    o("log", Some('l'), O, false),
    o("filter-env", None, O, false),
    o("log-type", None, V, false),
    o("log-date-format", None, V, false),
    o("time", None, N, false),
    o("disable-logs", None, N, false),
    o("env", None, V, false),
    o("update-env", Some('a'), N, false),
    o("force", Some('f'), N, false),
    o("instances", Some('i'), V, false),
    o("parallel", None, V, false),
    o("pid", Some('p'), V, false),
    o("kill-timeout", Some('k'), V, false),
    o("max-memory-restart", None, V, false),
    o("restart-delay", None, V, false),
    o("exp-backoff-restart-delay", None, V, false),
    o("execute-command", Some('x'), N, false),
    o("max-restarts", None, O, false),
    o("user", Some('u'), V, false),
    o("uid", None, V, false),
    o("gid", None, V, false),
    o("namespace", None, V, false),
    o("cwd", None, V, false),
    o("hp", None, V, false),
    o("wait-ip", None, N, false),
    o("service-name", None, V, false),
    o("cron", Some('c'), V, false),
    o("cron-restart", None, V, false),
    o("write", Some('w'), N, false),
    o("no-daemon", None, N, true),
    o("source-map-support", None, N, true),
    o("only", None, V, false),
    o("disable-source-map-support", None, N, true),
    o("merge-logs", None, N, false),
    o("watch", None, O, false),
    o("ignore-watch", None, V, false),
    o("watch-delay", None, V, false),
    o("no-color", None, N, false),
    o("no-vizion", None, N, true),
    o("no-autostart", None, N, false),
    o("no-autorestart", None, N, false),
    o("stop-exit-codes", None, V, false),
    o("no-treekill", None, N, false),
    o("no-pmx", None, N, true),
    o("no-automation", None, N, true),
    o("trace", None, N, true),
    o("disable-trace", None, N, true),
    o("sort", None, V, false),
    o("attach", None, N, false),
    o("v8", None, N, true),
    o("event-loop-inspector", None, N, true),
    o("deep-monitoring", None, N, true),
    // `start`'s container options (pm2's Docker mode).
    o("fresh", None, N, true),
    o("daemon", None, N, true),
    o("container", None, N, true),
    o("dist", None, N, true),
    o("image-name", None, O, true),
    o("node-version", None, O, true),
    o("dockerdaemon", None, N, true),
    // `logs`'s options that pm2 accepts on any command line.
    o("json", None, N, false),
    o("format", None, N, false),
    o("raw", None, N, false),
    o("err", None, N, false),
    o("out", None, N, false),
    o("lines", None, V, false),
    o("timestamp", None, O, false),
    o("nostream", None, N, false),
    o("highlight", None, O, false),
    // ward's own start options, which pm2 takes from ecosystem files only.
    o("instance-var", None, V, false),
    o("increment-var", None, V, false),
];

pub fn find(arg: &lexopt::Arg<'_>) -> Option<&'static Opt> {
    match arg {
        Long(l) => OPTIONS.iter().find(|o| o.long == *l),
        Short(c) => OPTIONS.iter().find(|o| o.short == Some(*c)),
        Value(_) => None,
    }
}

/// An option a command gives no meaning to, taken apart from the parser it came from.
pub struct Other {
    opt: Option<&'static Opt>,
    refused: Error,
}

/// `other(arg).tolerate(p)`: accepted (its value consumed) when pm2 accepts the option,
/// refused as pm2 refuses it otherwise.
pub fn other(arg: lexopt::Arg<'_>) -> Other {
    Other {
        opt: find(&arg),
        refused: arg.unexpected().into(),
    }
}

impl Other {
    pub fn tolerate(self, p: &mut lexopt::Parser) -> Result<()> {
        tolerate_opt(p, self.opt.ok_or(self.refused)?)
    }
}

fn tolerate_opt(p: &mut lexopt::Parser, opt: &'static Opt) -> Result<()> {
    match opt.takes {
        Takes::Nothing => {}
        Takes::Value => {
            p.value()?;
        }
        Takes::Optional => {
            p.optional_value();
        }
    }
    if opt.foreign {
        ignored(opt.long);
    }
    Ok(())
}

/// One line on stderr for the pm2.io/V8/container options of one command line.
pub fn ignored(long: &str) {
    use std::sync::atomic::{AtomicBool, Ordering};
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        eprintln!(
            "{}: ignoring --{long} (pm2.io, V8 and container options have no meaning here)",
            crate::client::output::program()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_long_name_once() {
        let mut names: Vec<&str> = OPTIONS.iter().map(|o| o.long).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(n, names.len());
    }

    #[test]
    fn values_are_consumed() {
        let mut p = lexopt::Parser::from_args(["--parallel", "4", "api", "--bogus"]);
        let a = other(p.next().unwrap().unwrap());
        a.tolerate(&mut p).unwrap();
        assert_eq!(p.next().unwrap(), Some(Value("api".into())));
        let a = other(p.next().unwrap().unwrap());
        assert!(a.tolerate(&mut p).is_err());
    }
}
