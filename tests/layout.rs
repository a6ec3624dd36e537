//! The source tree keeps the shape the README's "Hacking" section describes: no two files
//! import each other, each side stays in its room, and `unsafe` lives only in src/os/.
//! Read from the files themselves (`crate::` paths), so a new file is checked as it lands.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/client/talk.rs` → `client::talk`; `src/daemon/mod.rs` → `daemon`.
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|l| l == "mod") {
        parts.pop();
    }
    parts.join("::")
}

/// The code before the unit tests: what a test module imports does not count.
fn code(text: &str) -> &str {
    text.split("#[cfg(test)]").next().unwrap_or(text)
}

/// file → the other files it names through `crate::` paths.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeMap<String, String> = files
        .iter()
        .map(|f| (module_of(&src, f), module_of(&src, f)))
        .collect();
    let mut deps = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        let text = std::fs::read_to_string(f).unwrap();
        let mut used = BTreeSet::new();
        for (i, _) in code(&text).match_indices("crate::") {
            let path: String = code(&text)[i + 7..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let parts: Vec<&str> = path.split("::").filter(|p| !p.is_empty()).collect();
            // The longest prefix that is a file of ours.
            for n in (1..=parts.len()).rev() {
                let m = parts[..n].join("::");
                if let Some(m) = modules.get(&m) {
                    if *m != me {
                        used.insert(m.clone());
                    }
                    break;
                }
            }
        }
        deps.insert(me, used);
    }
    deps
}

#[test]
fn no_two_files_import_each_other() {
    let deps = imports();
    let mut loops = Vec::new();
    for (a, uses) in &deps {
        for b in uses {
            if a < b && deps.get(b).is_some_and(|u| u.contains(a)) {
                loops.push(format!("{a} <-> {b}"));
            }
        }
    }
    assert!(
        loops.is_empty(),
        "import loops (put what both need in a module both use):\n{}",
        loops.join("\n")
    );
}

#[test]
fn each_side_stays_in_its_room() {
    let deps = imports();
    let side = |m: &str| m.split("::").next().unwrap_or("").to_string();
    let mut wrong = Vec::new();
    for (m, uses) in &deps {
        let forbidden: &[&str] = match side(m).as_str() {
            "daemon" => &["client"],
            "client" => &["daemon"],
            "spec" => &["daemon", "client", "os"],
            "os" => &["daemon", "client"],
            "lifecycle" | "table" | "protocol" => &["daemon", "client", "os", "store", "logs"],
            _ => &[],
        };
        for u in uses {
            if forbidden.contains(&side(u).as_str()) {
                wrong.push(format!("{m} uses {u}"));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn unsafe_code_lives_in_os_only() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut found = Vec::new();
    for f in files {
        if f.starts_with(src.join("os")) {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        for (n, line) in code(&text).lines().enumerate() {
            let l = line.trim_start();
            if l.starts_with("//") {
                continue;
            }
            if l.contains("unsafe {") || l.contains("unsafe fn") || l.contains("allow(unsafe_code)")
            {
                found.push(format!("{}:{}: {l}", f.display(), n + 1));
            }
        }
    }
    assert!(
        found.is_empty(),
        "unsafe outside src/os/:\n{}",
        found.join("\n")
    );
}
