//! pm2's dump format (`dump.pm2`): a JSON array of `pm2_env` objects, one per process.
//!
//! ward writes it in pm2 mode, and reads it in both modes (`resurrect` in pm2 mode,
//! `import-pm2`), so a pm2 user's saved list comes back with its names, ids order, env and
//! options. Pure: JSON values in, specs out.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::lifecycle::Status;
use crate::spec::config::AppSpec;

/// Does this dump look like pm2's (rather than ward's own)?
pub fn is_pm2(v: &Value) -> bool {
    match v {
        Value::Array(a) => a
            .first()
            .is_some_and(|x| x.get("pm_exec_path").is_some() || x.get("pm_cwd").is_some()),
        _ => false,
    }
}

/// One saved app, and what of it ward could not carry over.
pub struct Imported {
    pub spec: AppSpec,
    pub status: Status,
    pub notes: Vec<String>,
}

fn s(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(Value::as_str).map(String::from)
}

fn n(v: &Value, k: &str) -> Option<u64> {
    v.get(k)
        .and_then(|x| x.as_u64().or_else(|| x.as_str()?.parse().ok()))
}

/// A delay or timeout from the dump, capped at ward's largest (pm2's Node timers would
/// have fired at once past it; ward waits as long as it can instead).
fn delay(v: &Value, k: &str) -> Option<u64> {
    n(v, k).map(|ms| ms.min(crate::spec::config::MAX_DELAY_MS))
}

fn words(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::Array(a)) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect(),
        Some(Value::String(s)) => s.split_whitespace().map(String::from).collect(),
        _ => Vec::new(),
    }
}

fn env_map(v: Option<&Value>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if let Some(Value::Object(m)) = v {
        for (k, x) in m {
            match x {
                Value::String(s) => {
                    out.insert(k.clone(), s.clone());
                }
                Value::Number(_) | Value::Bool(_) => {
                    out.insert(k.clone(), x.to_string());
                }
                // pm2 puts `{}` under the app's own name in env; it is no variable.
                _ => {}
            }
        }
    }
    out
}

/// One `pm2_env` object → an app.
pub fn to_spec(v: &Value) -> Result<Imported, String> {
    let name = s(v, "name").ok_or("an entry has no name")?;
    let script = s(v, "pm_exec_path").ok_or(format!("{name}: no pm_exec_path (script)"))?;
    let d = AppSpec::default();
    let mut notes = Vec::new();
    let interpreter = match s(v, "exec_interpreter").as_deref() {
        None | Some("none") => None,
        Some(i) => Some(i.to_string()),
    };
    let mut env = env_map(v.get("env"));
    // What pm2 put into env for itself has no use in ward's apps.
    for k in [
        "PM2_HOME",
        "PM2_USAGE",
        "PM2_JSON_PROCESSING",
        "PM2_INTERACTOR_PROCESSING",
        "unique_id",
    ] {
        env.remove(k);
    }
    // An ecosystem app's `NAME={}`: a string in a dump ward wrote, which comes back as the
    // mark it was (config::AppSpec::name_var); pm2's own dumps hold an object there, no
    // variable (see `env_map`).
    let name_var = env.remove(&name).is_some_and(|x| x == "{}");
    let watch = match v.get("watch") {
        Some(Value::Bool(true)) => vec![".".to_string()],
        Some(w @ (Value::Array(_) | Value::String(_))) => words(Some(w)),
        _ => Vec::new(),
    };
    let kill_signal = match s(v, "kill_signal") {
        Some(sig) => match crate::spec::config::parse_signal(&sig) {
            Ok(n) => n,
            Err(_) => {
                notes.push(format!(
                    "{name}: kill_signal {sig} is unknown; SIGINT is used"
                ));
                d.kill_signal
            }
        },
        None => d.kill_signal,
    };
    if v.get("uid").is_some_and(|x| !x.is_null()) || v.get("gid").is_some_and(|x| !x.is_null()) {
        notes.push(format!(
            "{name}: uid/gid are not carried over: it runs as your user"
        ));
    }
    let stop_exit_codes = match v.get("stop_exit_codes") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(|x| x.as_i64())
            .map(|x| x as i32)
            .collect(),
        Some(Value::Number(x)) => x.as_i64().map(|c| vec![c as i32]).unwrap_or_default(),
        _ => Vec::new(),
    };
    let spec = AppSpec {
        name: name.clone(),
        script,
        args: words(v.get("args")),
        interpreter,
        interpreter_args: words(v.get("node_args").or(v.get("interpreter_args"))),
        cwd: s(v, "pm_cwd").unwrap_or_else(|| "/".into()),
        env: std::sync::Arc::new(env),
        name_var,
        namespace: s(v, "namespace").unwrap_or(d.namespace.clone()),
        autorestart: v
            .get("autorestart")
            .and_then(Value::as_bool)
            .unwrap_or(true),
        max_restarts: n(v, "max_restarts")
            .map(|x| x as u32)
            .unwrap_or(d.max_restarts),
        min_uptime: delay(v, "min_uptime").unwrap_or(d.min_uptime),
        restart_delay: delay(v, "restart_delay").unwrap_or(0),
        exp_backoff_restart_delay: delay(v, "exp_backoff_restart_delay").unwrap_or(0),
        kill_timeout: delay(v, "kill_timeout").unwrap_or(d.kill_timeout),
        kill_signal,
        stop_exit_codes,
        out_file: s(v, "pm_out_log_path").unwrap_or_default(),
        error_file: s(v, "pm_err_log_path").unwrap_or_default(),
        pid_file: s(v, "pm_pid_path").unwrap_or_default(),
        instance_var: s(v, "instance_var").unwrap_or(d.instance_var.clone()),
        merge_logs: v.get("merge_logs").and_then(Value::as_bool).unwrap_or(true),
        watch,
        ignore_watch: words(v.get("ignore_watch")),
        max_memory_restart: n(v, "max_memory_restart"),
        cron_restart: s(v, "cron_restart").filter(|c| c != "0"),
        log_date_format: s(v, "log_date_format"),
        env_blocks: match v {
            Value::Object(m) => m
                .iter()
                .filter_map(|(k, x)| Some((k.strip_prefix("env_")?.to_string(), env_map(Some(x)))))
                .collect(),
            _ => BTreeMap::new(),
        },
        ..d
    };
    if let Some(c) = &spec.cron_restart {
        if let Err(e) = crate::spec::cron::Schedule::parse(c) {
            return Err(format!("{name}: cron_restart {c:?}: {e}"));
        }
    }
    let status = match s(v, "status").as_deref() {
        Some("stopped") => Status::Stopped,
        _ => Status::Online,
    };
    Ok(Imported {
        spec,
        status,
        notes,
    })
}

/// The dump pm2 would write: each app's `pm2_env`, without the fields pm2 deletes.
pub fn encode(pm2_envs: Vec<Value>) -> Value {
    let list = pm2_envs
        .into_iter()
        .map(|mut e| {
            if let Value::Object(m) = &mut e {
                for k in ["pm_id", "instances", "prev_restart_delay"] {
                    m.remove(k);
                }
            }
            e
        })
        .collect();
    Value::Array(list)
}

/// Reads every entry; entries that cannot be read are reported, not fatal.
pub fn read_all(v: &Value) -> (Vec<Imported>, Vec<String>) {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    if let Value::Array(a) = v {
        for (i, e) in a.iter().enumerate() {
            match to_spec(e) {
                Ok(imp) => out.push(imp),
                Err(why) => problems.push(format!("entry {i}: {why}; skipped")),
            }
        }
    }
    (out, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump ward wrote in pm2 mode carries an ecosystem app's `NAME={}` as a string: it
    /// comes back as the mark, not as a variable of its own.
    #[test]
    fn the_name_variable_comes_back_as_the_mark() {
        let v = serde_json::json!({
            "name": "w", "pm_exec_path": "/bin/sleep", "env": {"w": "{}", "A": "1"}
        });
        let spec = to_spec(&v).unwrap().spec;
        assert!(spec.name_var);
        assert!(!spec.env.contains_key("w"));
        assert_eq!(spec.vars().collect::<Vec<_>>(), [("A", "1"), ("w", "{}")]);
        let v = serde_json::json!({
            "name": "w", "pm_exec_path": "/bin/sleep", "env": {"w": "mine"}
        });
        assert!(
            !to_spec(&v).unwrap().spec.name_var,
            "a value of its own is no mark"
        );
    }

    #[test]
    fn reads_pm2s_own_jlist_entries() {
        let text = include_str!("../../tests/fixtures/dump.pm2");
        let v: Value = serde_json::from_str(text).unwrap();
        assert!(is_pm2(&v));
        let (apps, problems) = read_all(&v);
        assert!(problems.is_empty(), "{problems:?}");
        let api = &apps[0];
        assert_eq!(api.spec.name, "api");
        assert_eq!(api.spec.script, "/srv/app/api.js");
        assert_eq!(api.spec.interpreter.as_deref(), Some("node"));
        assert_eq!(api.spec.args, vec!["--port", "3000"]);
        assert_eq!(api.spec.cwd, "/srv/app");
        assert_eq!(
            api.spec.env.get("NODE_ENV").map(String::as_str),
            Some("production")
        );
        assert_eq!(api.spec.env.get("PORT").map(String::as_str), Some("3000"));
        assert!(!api.spec.env.contains_key("PM2_HOME"));
        assert!(
            !api.spec.name_var,
            "pm2's own `api: {{}}` is an object, no variable"
        );
        assert_eq!(api.status, Status::Online);
        let worker = apps.iter().find(|a| a.spec.name == "worker").unwrap();
        assert_eq!(worker.status, Status::Stopped);
        assert_eq!(worker.spec.interpreter.as_deref(), Some("python3"));
        assert_eq!(worker.spec.interpreter_args, vec!["-u"]);
        assert!(!is_pm2(&serde_json::json!([{"name": "x", "script": "/a"}])));
    }

    #[test]
    fn delays_beyond_the_largest_are_capped_not_wrapped() {
        let text = include_str!("../../tests/fixtures/dump.pm2");
        let mut v: Value = serde_json::from_str(text).unwrap();
        v[0]["kill_timeout"] = Value::from(18_446_744_073_709_551_000u64);
        v[0]["restart_delay"] = Value::from("18446744073709551615");
        let (apps, _) = read_all(&v);
        let max = crate::spec::config::MAX_DELAY_MS;
        assert_eq!(apps[0].spec.kill_timeout, max);
        assert_eq!(apps[0].spec.restart_delay, max);
    }
}
