//! Help that guides a user who typed something wrong: the short usage of a bare `ward`,
//! "did you mean" for a mistyped command, and an unknown option that names its command and
//! the help page to read.
//!
//! Also the help pages themselves (`ward help [command]`).
//!
//! Pure text from the tables of docs.rs; prints nothing (main.rs prints errors).

use crate::client::docs::{DOCS, find_doc};
use crate::error::{Error, Result};

/// What a bare `ward` prints (pm2 prints its help; the whole of ours is a page long),
/// with the name the user typed (`pm2` through a pm2 link).
pub fn short_usage() -> String {
    let w = crate::client::output::program();
    let lines = [
        (
            format!("{w} start app.js"),
            "run app.js in the background, named app",
        ),
        (format!("{w} ls"), "the table of apps"),
        (format!("{w} logs [app]"), "their output, then follow it"),
        (format!("{w} stop|restart|delete <app|id|all>"), ""),
        (
            format!("{w} save; {w} resurrect"),
            "keep the list across reboots",
        ),
    ];
    let mut s = format!("Usage: {w} <command> [options]\n\n");
    for (left, what) in lines {
        let line = format!("  {left:<31} {what}");
        s.push_str(line.trim_end());
        s.push('\n');
    }
    s.push_str(&format!(
        "\n`{w} help` lists every command, `{w} help <command>` tells one in full, `man ward` all."
    ));
    s
}

/// The error of a command that does not exist, with the nearest one when it is close.
pub fn unknown_command(cmd: &str) -> Error {
    match suggest(cmd) {
        Some(s) => Error::new(format!("unknown command {cmd:?}; did you mean {s:?}?")),
        None => Error::new(format!(
            "unknown command {cmd:?}; `ward help` lists the commands"
        )),
    }
}

/// The known command (or alias) nearest to `typed`, if it is near enough to be a typo:
/// at most one edit for short words, two for longer ones (none under three letters), a swap of two letters counting as
/// one (`strat` → `start`).
pub fn suggest(typed: &str) -> Option<&'static str> {
    let typed_l = typed.to_ascii_lowercase();
    let limit = match typed.chars().count() {
        // One or two letters are a different word, not a typo.
        0..=2 => return None,
        3..=4 => 1,
        _ => 2,
    };
    DOCS.iter()
        .flat_map(|d| std::iter::once(d.name).chain(d.aliases.iter().copied()))
        .map(|w| (distance(&typed_l, &w.to_ascii_lowercase()), w))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, w)| w)
}

/// Optimal string alignment distance: insertions, deletions, substitutions and swaps of
/// neighbours each cost one.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = v;
        }
    }
    d[a.len()][b.len()]
}

/// An option or argument a command does not take: say which command refused it and where
/// its options are listed. `args` are the command line after the program name.
pub fn in_command(e: Error, args: &[std::ffi::OsString]) -> Error {
    let msg = e.to_string();
    // lexopt's wording for an unknown option and for a word no command takes.
    let unknown = if let Some(rest) = msg.strip_prefix("invalid option ") {
        format!("unknown option {rest}")
    } else if msg.starts_with("unexpected argument") {
        msg.clone()
    } else {
        return e;
    };
    let Some(doc) = args
        .iter()
        .find_map(|a| a.to_str().filter(|s| !s.starts_with('-')))
        .and_then(find_doc)
    else {
        return Error::new(format!("{unknown}; `ward help` lists the commands"));
    };
    Error::new(format!(
        "{}: {unknown}; `ward help {}` lists its options",
        doc.name, doc.name
    ))
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
                 Options: -h, --help (also after a command); -v, --version; -s, --silent\n\
                 (no chatter); --no-color; --verbose (a line per app even for many apps).\n\
                 Environment: WARD_HOME (default ~/.ward), NO_COLOR and TERM=dumb (no colour),\n\
                 WARD_WORKER_INTERVAL (ms between memory checks, default 1000).\n\
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
            None => Err(unknown_command(c)),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_help() {
        assert!(help(None).unwrap().contains("start"));
        for d in DOCS {
            assert!(help(Some(d.name)).unwrap().contains(d.usage));
        }
        assert!(help(Some("nope")).is_err());
    }

    #[test]
    fn typos_find_their_command() {
        assert_eq!(suggest("strat"), Some("start"));
        assert_eq!(suggest("stpo"), Some("stop"));
        assert_eq!(suggest("restrat"), Some("restart"));
        assert_eq!(suggest("jlsit"), Some("jlist"));
        assert_eq!(suggest("lst"), Some("list"));
        assert_eq!(suggest("frobnicate"), None);
        assert_eq!(suggest("x"), None);
        assert_eq!(distance("abc", "abc"), 0);
        assert_eq!(distance("ab", "ba"), 1);
        assert_eq!(distance("", "ab"), 2);
    }

    #[test]
    fn unknown_option_names_its_command() {
        let args: Vec<std::ffi::OsString> = ["start", "app.js", "--bogus"]
            .iter()
            .map(Into::into)
            .collect();
        let e = in_command(Error::new("invalid option '--bogus'"), &args).to_string();
        assert_eq!(
            e,
            "start: unknown option '--bogus'; `ward help start` lists its options"
        );
        let args: Vec<std::ffi::OsString> = ["ls", "-x"].iter().map(Into::into).collect();
        let e = in_command(Error::new("invalid option '-x'"), &args).to_string();
        assert!(e.starts_with("list: unknown option '-x'"), "{e}");
        let other = Error::new("start needs a script");
        assert_eq!(in_command(other.clone(), &args), other);
    }
}
