//! `--ext js,json`: watch only files with these extensions. pm2 lists, once at start, every
//! file under the app's folder whose name has none of them and adds it to `ignore_watch`
//! (API/Modules/flagExt.js); ward does the same, with paths relative to the folder.

use std::path::Path;

/// No more than this many files are listed: a huge tree is not walked to the end.
const MAX_FILES: usize = 10_000;

/// The files under `dir` (not in node_modules or dot folders) whose names do not end
/// with `.EXT` for one of `exts`, relative to `dir`.
pub fn ignores(dir: &Path, exts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') || name == "node_modules" {
                continue;
            }
            let path = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(path);
            } else if !exts.iter().any(|x| name.ends_with(&format!(".{x}"))) {
                if let Ok(rel) = path.strip_prefix(dir) {
                    out.push(rel.to_string_lossy().into_owned());
                }
                if out.len() >= MAX_FILES {
                    return out;
                }
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn lists_the_other_files() {
        let d = std::env::temp_dir().join(format!("ward-ext-{}", std::process::id()));
        std::fs::create_dir_all(d.join("src")).unwrap();
        for f in ["a.js", "b.txt", "src/c.json", "src/d.md"] {
            std::fs::write(d.join(f), "").unwrap();
        }
        let got = super::ignores(&d, &["js".into(), "json".into()]);
        std::fs::remove_dir_all(&d).unwrap();
        assert_eq!(got, ["b.txt", "src/d.md"]);
    }
}
