//! Every command `ward help` lists, and every option its help shows, is in man/ward.1.
mod util;
use util::*;

fn man() -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ward.1");
    // roff escapes dashes; compare without the escapes.
    std::fs::read_to_string(p).unwrap().replace("\\-", "-")
}

fn commands(h: &Home) -> Vec<String> {
    let help = h.ok(&["help"]);
    help.lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

#[test]
fn every_command_is_in_the_man_page() {
    let h = Home::new("docs");
    let man = man();
    let cmds = commands(&h);
    assert!(cmds.len() >= 10, "ward help lists the commands: {cmds:?}");
    for c in &cmds {
        let found = man.lines().any(|l| {
            (l.starts_with(".B") || l.starts_with(".TP"))
                && l.split_whitespace()
                    .nth(1)
                    .is_some_and(|w| w.trim_matches('"') == c)
        });
        assert!(found, "command {c} is not in man/ward.1");
    }
}

#[test]
fn every_option_in_help_is_in_the_man_page() {
    let h = Home::new("docs-opts");
    let man = man();
    for c in commands(&h) {
        let text = h.ok(&["help", &c]);
        for word in text.split(|ch: char| ch.is_whitespace() || ch == ',' || ch == '(' || ch == ')')
        {
            let w = word.trim_end_matches(['.', ':', ';']);
            if w.starts_with("--")
                && w.len() > 2
                && w.chars()
                    .skip(2)
                    .all(|ch| ch.is_ascii_lowercase() || ch == '-')
            {
                assert!(
                    man.contains(w),
                    "option {w} of `ward help {c}` is not in man/ward.1"
                );
            }
        }
    }
}
