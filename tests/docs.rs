//! Every command and flag that `ward help` shows is in the man page too.
mod util;
use util::*;

/// The words `ward help` lists as commands (aliases included), and every `--flag` of
/// every `ward help <command>` page.
fn documented() -> (Vec<String>, Vec<(String, String)>) {
    let h = Home::new("docs");
    let help = h.ok(&["help"]);
    let mut cmds = Vec::new();
    let mut in_cmds = false;
    for line in help.lines() {
        if line == "Commands:" {
            in_cmds = true;
            continue;
        }
        if in_cmds && line.is_empty() {
            break;
        }
        if in_cmds {
            // "  delete (del)     summary" → delete, del
            let head = line.trim_start().split("  ").next().unwrap_or_default();
            for w in head.split([' ', '(', ')', ',']) {
                if !w.is_empty() {
                    cmds.push(w.to_string());
                }
            }
        }
    }
    let mut flags = Vec::new();
    for c in &cmds {
        let page = h.ok(&["help", c]);
        for w in page.split(|c: char| c.is_whitespace() || c == ',' || c == '[' || c == ']') {
            let w = w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric());
            if w.starts_with("--") && w.len() > 2 {
                flags.push((c.clone(), w.to_string()));
            }
        }
    }
    (cmds, flags)
}

#[test]
fn man_page_covers_every_command_and_flag() {
    let man = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/man/ward.1"))
        .unwrap()
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fR", "")
        .replace("\\fI", "");
    let (cmds, flags) = documented();
    assert!(cmds.len() >= 10, "{cmds:?}");
    let mut missing: Vec<String> = cmds
        .iter()
        .filter(|c| !man.contains(c.as_str()))
        .cloned()
        .collect();
    missing.extend(
        flags
            .iter()
            .filter(|(_, f)| !man.contains(f.as_str()))
            .map(|(c, f)| format!("{c} {f}")),
    );
    missing.dedup();
    assert!(missing.is_empty(), "not in man/ward.1: {missing:?}");
}
