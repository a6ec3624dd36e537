//! Issue 19: `make install` into a DESTDIR gives a packager's tree, `make uninstall` takes
//! back only what install put there, `install-pm2-link` never replaces a foreign pm2, and
//! `make deb` builds a package dpkg-deb and lintian accept. Runs the real Makefile with
//! WARD_BIN set to the test binary, so nothing is rebuilt.
mod util;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use util::*;

/// `make` in the source tree, free of an outer make's settings (`make test DESTDIR=…`
/// would hand DESTDIR down through MAKEFLAGS).
fn make_cmd() -> Command {
    let mut c = Command::new("make");
    c.env_remove("MAKEFLAGS")
        .env_remove("MFLAGS")
        .env_remove("MAKELEVEL")
        .arg("--no-print-directory")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"));
    c
}

fn make(args: &[&str], destdir: &Path) -> Output {
    make_cmd()
        .args(args)
        .arg(format!("DESTDIR={}", destdir.display()))
        .arg("PREFIX=/usr")
        .arg(format!("WARD_BIN={BIN}"))
        .output()
        .expect("make is required (CI has it)")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Every file and link under `root` (not folders), relative, sorted.
fn files(root: &Path) -> Vec<String> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                walk(root, &p, out);
            } else {
                out.push(p.strip_prefix(root).unwrap().display().to_string());
            }
        }
    }
    let mut v = Vec::new();
    walk(root, root, &mut v);
    v.sort();
    v
}

const TREE: &[&str] = &[
    "usr/bin/ward",
    "usr/share/bash-completion/completions/ward",
    "usr/share/doc/ward/LICENSE",
    "usr/share/fish/vendor_completions.d/ward.fish",
    "usr/share/man/man1/ward.1",
    "usr/share/zsh/site-functions/_ward",
];

/// Whether this ward has the container runtime (then install adds bin/ward-runtime).
fn has_runtime() -> bool {
    Command::new(BIN)
        .args(["help", "runtime"])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn install_and_uninstall_leave_a_foreign_pm2_alone() {
    let h = Home::new("install-foreign");
    let dest = h.dir.join("stage");
    // npm's pm2, installed before ward.
    let npm = dest.join("usr/lib/node_modules/pm2/bin/pm2");
    std::fs::create_dir_all(npm.parent().unwrap()).unwrap();
    std::fs::write(&npm, "#!/usr/bin/env node\n").unwrap();
    std::fs::create_dir_all(dest.join("usr/bin")).unwrap();
    let pm2 = dest.join("usr/bin/pm2");
    std::os::unix::fs::symlink("../lib/node_modules/pm2/bin/pm2", &pm2).unwrap();
    let before = files(&dest);

    let o = make(&["install"], &dest);
    assert!(o.status.success(), "make install: {}", text(&o));
    let mut want: Vec<String> = before.clone();
    want.extend(TREE.iter().map(|s| s.to_string()));
    if has_runtime() {
        want.push("usr/bin/ward-runtime".into());
        want.push("usr/share/man/man1/ward-runtime.1".into());
    }
    want.sort();
    assert_eq!(files(&dest), want);
    let bash = std::fs::read_to_string(dest.join(TREE[1])).unwrap();
    assert_eq!(bash, h.ok(&["completion", "bash"]));
    let zsh = std::fs::read_to_string(dest.join(TREE[5])).unwrap();
    assert!(zsh.starts_with("#compdef ward\n"));

    let o = make(&["install-pm2-link"], &dest);
    assert!(
        !o.status.success(),
        "a foreign pm2 was replaced: {}",
        text(&o)
    );
    assert!(
        text(&o).contains("is not ward") && text(&o).contains("not replaced"),
        "{}",
        text(&o)
    );
    assert_eq!(
        std::fs::read_link(&pm2).unwrap(),
        PathBuf::from("../lib/node_modules/pm2/bin/pm2")
    );

    let o = make(&["uninstall"], &dest);
    assert!(o.status.success(), "make uninstall: {}", text(&o));
    assert!(
        text(&o).contains("pm2 is not ward's: left as it is"),
        "{}",
        text(&o)
    );
    assert_eq!(files(&dest), before, "uninstall left or took something");
}

#[test]
fn pm2_link_is_made_and_taken_back() {
    let h = Home::new("install-link");
    let dest = h.dir.join("stage");
    let o = make(&["install-pm2-link"], &dest);
    assert!(o.status.success(), "{}", text(&o));
    let pm2 = dest.join("usr/bin/pm2");
    assert_eq!(std::fs::read_link(&pm2).unwrap(), PathBuf::from("ward"));
    // The link works: called as pm2, it is ward in pm2 mode.
    let v = Command::new(&pm2).arg("--version").output().unwrap();
    assert!(v.status.success(), "{v:?}");
    // Twice is fine.
    let o = make(&["install-pm2-link"], &dest);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("already links to ward"), "{}", text(&o));
    let o = make(&["uninstall"], &dest);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(files(&dest), Vec::<String>::new(), "uninstall left files");
}

#[test]
fn make_deb_builds_a_clean_package() {
    for tool in ["dpkg-deb", "lintian"] {
        assert!(
            Command::new("sh")
                .args(["-c", &format!("command -v {tool}")])
                .output()
                .is_ok_and(|o| o.status.success()),
            "{tool} is required (.ci/run installs it)"
        );
    }
    let h = Home::new("install-deb");
    let out = h.dir.join("deb");
    let o = make_cmd()
        .arg("deb")
        .arg(format!("WARD_BIN={BIN}"))
        .arg(format!("DEB_DIR={}", out.display()))
        .output()
        .unwrap();
    // lintian runs inside `make deb` and fails it on any error or warning.
    assert!(o.status.success(), "make deb: {}", text(&o));
    assert!(text(&o).contains("lintian "), "{}", text(&o));
    let deb: Vec<PathBuf> = std::fs::read_dir(&out)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "deb"))
        .collect();
    assert_eq!(deb.len(), 1, "{deb:?}");
    let name = deb[0].file_name().unwrap().to_string_lossy().into_owned();
    let version = h.ok(&["--version"]).trim().to_string();
    assert!(name.starts_with(&format!("ward_{version}_")), "{name}");
    let field = |f: &str| {
        let o = Command::new("dpkg-deb")
            .args(["-f"])
            .arg(&deb[0])
            .arg(f)
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(field("Package"), "ward");
    assert_eq!(field("Version"), version);
    assert!(
        field("Depends").starts_with("libc6"),
        "{}",
        field("Depends")
    );
    let o = Command::new("dpkg-deb")
        .arg("--contents")
        .arg(&deb[0])
        .output()
        .unwrap();
    let contents = String::from_utf8_lossy(&o.stdout);
    for f in [
        "./usr/bin/ward",
        "./usr/share/man/man1/ward.1.gz",
        "./usr/share/bash-completion/completions/ward",
        "./usr/share/zsh/site-functions/_ward",
        "./usr/share/fish/vendor_completions.d/ward.fish",
        "./usr/share/doc/ward/copyright",
    ] {
        assert!(contents.contains(f), "{f} not in the package:\n{contents}");
    }
}
