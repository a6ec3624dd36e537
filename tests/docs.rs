//! Every command `ward help` lists, and every option its help shows, is in man/ward.1, and
//! every option the man page names is one `ward help` shows; the man page is lint-clean.
mod util;
use std::collections::BTreeSet;
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
        // A long list of aliases puts the summary on a line of its own.
        .filter(|l| !l.starts_with("   "))
        .filter_map(|l| l.split_whitespace().next().map(String::from))
        .collect()
}

/// The options named in a text: `-x` and `--long-name` standing as words (not inside a
/// path, a word or a `--` on its own), with roff's font escapes removed.
fn options(text: &str) -> BTreeSet<String> {
    let text = text
        .replace("\\fB", " ")
        .replace("\\fI", " ")
        .replace("\\fR", " ")
        .replace("\\fP", " ");
    let chars: Vec<char> = text.chars().collect();
    let mut found = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let before_ok =
            i == 0 || !(chars[i - 1].is_alphanumeric() || "-_/.~\\".contains(chars[i - 1]));
        if chars[i] == '-' && before_ok {
            let mut j = i;
            while j < chars.len() && chars[j] == '-' {
                j += 1;
            }
            let dashes = j - i;
            let start = j;
            while j < chars.len() && (chars[j].is_ascii_alphanumeric() || chars[j] == '-') {
                j += 1;
            }
            let name: String = chars[start..j].iter().collect::<String>();
            let name = name.trim_end_matches('-');
            let first_alpha = name.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
            // ward's short options are lower-case letters; `-N` in `scale N|+N|-N` is not one.
            let short =
                dashes == 1 && name.len() == 1 && name.chars().all(|c| c.is_ascii_lowercase());
            if (dashes == 2 || short) && first_alpha {
                found.insert(format!("{}{name}", "-".repeat(dashes)));
            }
            i = j.max(i + 1);
        } else {
            i += 1;
        }
    }
    found
}

/// Every option of every help page, and of `ward help` itself.
fn help_options(h: &Home) -> BTreeSet<String> {
    let mut all = options(&h.ok(&["help"]));
    for c in commands(h) {
        all.extend(options(&h.ok(&["help", &c])));
    }
    all
}

#[test]
fn every_command_is_in_the_man_page() {
    let h = Home::new("docs");
    let man = man();
    let cmds = commands(&h);
    assert!(cmds.len() >= 10, "ward help lists the commands: {cmds:?}");
    assert!(cmds.contains(&"completion".to_string()), "{cmds:?}");
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
    let in_man = options(&man());
    for c in commands(&h) {
        for o in options(&h.ok(&["help", &c])) {
            assert!(
                in_man.contains(&o),
                "option {o} of `ward help {c}` is not in man/ward.1"
            );
        }
    }
    for o in options(&h.ok(&["help"])) {
        assert!(
            in_man.contains(&o),
            "option {o} of `ward help` is not in man/ward.1"
        );
    }
}

/// The reverse: the man page documents no option that `ward help` leaves out.
#[test]
fn every_option_in_the_man_page_is_in_help() {
    let h = Home::new("docs-rev");
    let in_help = help_options(&h);
    // Arguments of the example script, not ward's.
    let examples = ["--port"];
    let missing: Vec<String> = options(&man())
        .into_iter()
        .filter(|o| !in_help.contains(o) && !examples.contains(&o.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "options in man/ward.1 that no `ward help` page shows: {missing:?}"
    );
    // The scan finds what it should.
    assert!(in_help.contains("--name") && in_help.contains("-n") && in_help.contains("--silent"));
    assert!(!options("a/b-c x--y -- args").contains("--"));
}

fn tool(name: &str, arg: &str) -> bool {
    std::process::Command::new(name)
        .arg(arg)
        .output()
        .is_ok_and(|o| o.status.success())
}

/// groff and mandoc both read the page without a word (CI installs both).
#[test]
fn man_page_is_lint_clean() {
    let page = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("man/ward.1");
    assert!(
        tool("groff", "-v"),
        "groff is required (.ci/run installs it)"
    );
    let out = std::process::Command::new("groff")
        .args(["-man", "-ww", "-z"])
        .arg(&page)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "groff -man -ww -z man/ward.1:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::process::Command::new("mandoc")
            .arg("-V")
            .output()
            .is_ok(),
        "mandoc is required (.ci/run installs it)"
    );
    let out = std::process::Command::new("mandoc")
        .args(["-T", "lint"])
        .arg(&page)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.is_empty(),
        "mandoc -T lint man/ward.1:\n{said}"
    );
}
