//! Copies of one app (pm2's `instances`): the slot a new copy takes, where each copy logs,
//! and which copies a `scale` adds or removes.
//!
//! Pure: the daemon asks, these functions answer.

use std::path::Path;

use crate::logs;
use crate::protocol::ScaleTo;
use crate::spec::config::AppSpec;

/// pm2's `NODE_APP_INSTANCE`: the lowest number no copy of the same name holds.
pub fn free_slot(used: &[u32]) -> u32 {
    (0..).find(|n| !used.contains(n)).unwrap_or(0)
}

/// `out.log` → `out-3.log`: pm2 gives each copy its own file unless `merge_logs`.
pub fn per_copy(path: &str, id: u32) -> String {
    if path.is_empty() || logs::is_discard(path) {
        return path.to_string();
    }
    let p = Path::new(path);
    match (
        p.file_stem().and_then(|s| s.to_str()),
        p.extension().and_then(|e| e.to_str()),
    ) {
        (Some(stem), Some(ext)) => p
            .with_file_name(format!("{stem}-{id}.{ext}"))
            .to_string_lossy()
            .into_owned(),
        _ => format!("{path}-{id}"),
    }
}

/// pm2's pid file of app `id` (God.js:205): `-N.pid` or `.pid` at the end becomes
/// `-ID.pid`, for every new id (one copy or many, and again on resurrect).
pub fn pid_for(path: &str, id: u32) -> String {
    let Some(stem) = path.strip_suffix(".pid") else {
        return path.to_string();
    };
    let stem = match stem.rsplit_once('-') {
        Some((head, n)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => head,
        _ => stem,
    };
    format!("{stem}-{id}.pid")
}

/// The (stdout, stderr, combined) paths of copy `id`: the spec's own or the defaults under
/// `logs`, with `-ID` inserted when the copies do not merge their logs.
pub fn log_paths(logs_dir: &Path, spec: &AppSpec, id: u32) -> (String, String, String) {
    let (def_out, def_err) = logs::default_paths(logs_dir, &spec.name);
    let pick = |p: &str, d: &Path| {
        if p.is_empty() {
            d.to_string_lossy().into_owned()
        } else {
            p.to_string()
        }
    };
    let mut out = pick(&spec.out_file, &def_out);
    let mut err = pick(&spec.error_file, &def_err);
    let mut all = spec.log_file.clone();
    if !all.is_empty() && !Path::new(&all).is_absolute() {
        all = logs_dir.join(&all).to_string_lossy().into_owned();
    }
    if !spec.merge_logs {
        out = per_copy(&out, id);
        err = per_copy(&err, id);
        all = per_copy(&all, id);
    }
    (out, err, all)
}

/// What `scale` does to a group whose copies have these ids (ascending): how many copies to
/// add, or which to remove (the newest), or why it refuses.
pub fn plan_scale(ids: &[u32], to: ScaleTo, name: &str) -> Result<(u32, Vec<u32>), String> {
    let now = ids.len() as u32;
    let target = to.target(now);
    if target == 0 {
        return Err(format!(
            "scaling {name} to 0 would remove every copy; use `ward delete {name}` for that"
        ));
    }
    if target >= now {
        Ok((target - now, Vec::new()))
    } else {
        Ok((0, ids[target as usize..].to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_files_per_id() {
        assert_eq!(pid_for("/a/echo.pid", 0), "/a/echo-0.pid");
        assert_eq!(pid_for("/a/echo-0.pid", 3), "/a/echo-3.pid");
        assert_eq!(pid_for("/a/echo-x.pid", 1), "/a/echo-x-1.pid");
        assert_eq!(pid_for("/a/echo.txt", 1), "/a/echo.txt");
        assert_eq!(pid_for("", 1), "");
    }

    #[test]
    fn slots() {
        assert_eq!(free_slot(&[]), 0);
        assert_eq!(free_slot(&[0, 1, 3]), 2);
        assert_eq!(free_slot(&[1, 2]), 0);
    }

    #[test]
    fn paths() {
        assert_eq!(per_copy("/l/out.log", 3), "/l/out-3.log");
        assert_eq!(per_copy("/l/out", 3), "/l/out-3");
        assert_eq!(per_copy("/dev/null", 3), "/dev/null");
        let mut spec = AppSpec {
            name: "api".into(),
            ..AppSpec::default()
        };
        let l = Path::new("/h/logs");
        assert_eq!(
            log_paths(l, &spec, 4),
            (
                "/h/logs/api-out.log".into(),
                "/h/logs/api-error.log".into(),
                String::new()
            )
        );
        spec.merge_logs = false;
        spec.log_file = "api.log".into();
        assert_eq!(
            log_paths(l, &spec, 4),
            (
                "/h/logs/api-out-4.log".into(),
                "/h/logs/api-error-4.log".into(),
                "/h/logs/api-4.log".into()
            )
        );
    }

    #[test]
    fn scaling() {
        assert_eq!(
            plan_scale(&[0, 1], ScaleTo::Exactly(4), "a"),
            Ok((2, vec![]))
        );
        assert_eq!(plan_scale(&[0, 1], ScaleTo::More(1), "a"), Ok((1, vec![])));
        assert_eq!(
            plan_scale(&[0, 1, 5], ScaleTo::Fewer(2), "a"),
            Ok((0, vec![1, 5]))
        );
        assert_eq!(
            plan_scale(&[0, 1, 5], ScaleTo::Exactly(1), "a"),
            Ok((0, vec![1, 5]))
        );
        assert!(plan_scale(&[0], ScaleTo::Fewer(3), "a").is_err());
        assert_eq!(
            plan_scale(&[0, 1], ScaleTo::Exactly(2), "a"),
            Ok((0, vec![]))
        );
    }
}
