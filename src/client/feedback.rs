//! Feedback on long work: the notes of many apps folded into one line each, and a progress
//! line on the terminal while the daemon takes more than a second.
//!
//! Writes only to stderr, and only on a terminal; the folding itself is pure.

use std::io::{IsTerminal, Write};
use std::time::Duration;

/// More notes than this are folded, unless `--verbose`: a screen of them still reads.
const FOLD_OVER: usize = 20;

/// How long before the progress line shows: a quick answer stays quiet.
const QUIET_FOR: Duration = Duration::from_secs(1);

/// The daemon's notes, as the client prints them: one line per app for a few apps; for
/// many, one line per kind of outcome (`[api](3) started ✓` × 300 → `300 apps started ✓`),
/// in the order each kind first appears. Notes that name no app are kept as they are.
pub fn fold(notes: Vec<String>, verbose: bool) -> Vec<String> {
    if verbose || notes.len() <= FOLD_OVER {
        return notes;
    }
    // (outcome, count, the first note of that outcome)
    let mut kinds: Vec<(Option<String>, usize, String)> = Vec::new();
    for n in notes {
        let outcome = app_outcome(&n).map(str::to_string);
        match kinds.iter_mut().find(|k| k.0.is_some() && k.0 == outcome) {
            Some(k) => k.1 += 1,
            None => kinds.push((outcome, 1, n)),
        }
    }
    kinds
        .into_iter()
        .map(|(outcome, count, first)| match outcome {
            Some(o) if count > 1 => format!("{count} apps {o}"),
            _ => first,
        })
        .collect()
}

/// `[name](id) outcome` → `outcome`; `None` for a note about no one app.
fn app_outcome(note: &str) -> Option<&str> {
    let rest = note.strip_prefix('[')?;
    let close = rest.find("](")?;
    let after = &rest[close + 2..];
    let end = after.find(')')?;
    after[..end].parse::<u32>().ok()?;
    Some(after[end + 1..].trim_start())
}

/// A line on stderr saying what the client waits for and for how long, redrawn in place;
/// shown only on a terminal, never under `--silent`, and only after a second.
pub struct Progress {
    label: String,
    on: bool,
    width: usize,
}

impl Progress {
    pub fn new(label: String) -> Progress {
        Progress {
            label,
            on: std::io::stderr().is_terminal() && !crate::client::output::silent(),
            width: 0,
        }
    }

    pub fn tick(&mut self, waited: Duration) {
        if !self.on || waited < QUIET_FOR {
            return;
        }
        let line =
            crate::client::output::speak(&format!("[ward] {}… {} s", self.label, waited.as_secs()))
                .into_owned();
        let pad = self.width.saturating_sub(line.chars().count());
        self.width = self.width.max(line.chars().count());
        let _ = write!(std::io::stderr(), "\r{line}{:pad$}", "");
    }

    /// Wipes the line, so that what follows starts on a clean one.
    pub fn clear(&mut self) {
        if self.width > 0 {
            let _ = write!(std::io::stderr(), "\r{:w$}\r", "", w = self.width);
            self.width = 0;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn many_notes_fold_by_outcome() {
        let mut notes: Vec<String> = (0..300).map(|i| format!("[w{i}]({i}) started ✓")).collect();
        notes.insert(5, "[api](400) restarted ✓".into());
        notes.push("skipped an app of the dump: bad".into());
        notes.push("[api](401) restarted ✓".into());
        notes.push("[odd name](7x) started ✓".into());
        assert_eq!(
            fold(notes.clone(), false),
            vec![
                "300 apps started ✓",
                "2 apps restarted ✓",
                "skipped an app of the dump: bad",
                "[odd name](7x) started ✓",
            ]
        );
        assert_eq!(fold(notes.clone(), true), notes);
        let few: Vec<String> = (0..3).map(|i| format!("[w]({i}) ✓")).collect();
        assert_eq!(fold(few.clone(), false), few);
        assert_eq!(app_outcome("[a](1) ✓"), Some("✓"));
        assert_eq!(app_outcome("[a] x"), None);
    }
}
