//! What a command line or an ecosystem file gives to apps that already exist, as a patch
//! (spec/patch.rs): pm2 applies the options of `restart`, `reload` and of a `start` that
//! finds the app registered (API.js:1587-1640), and every key of the file's app on
//! `restart FILE` (Utility.js:33-76); the word `null` deletes a setting.

use serde_json::{Value, json};

use crate::client::opts::StartOpts;
use crate::spec::config::AppSpec;
use crate::spec::patch::Patch;

/// The options given on the command line, each as the spec field it sets; `None` when
/// no option with a meaning for an existing app was given.
pub fn of_start(o: &StartOpts) -> Option<Patch> {
    let mut p = Patch::new();
    let mut put = |k: &str, v: Value| {
        p.insert(k.to_string(), v);
    };
    if let Some(n) = &o.name {
        put("name", json!(n));
    }
    if let Some(i) = &o.interpreter {
        put(
            "interpreter",
            if i == "none" { Value::Null } else { json!(i) },
        );
    }
    if !o.interpreter_args.is_empty() {
        let null = o.interpreter_args == ["null"];
        put(
            "interpreter_args",
            if null {
                Value::Null
            } else {
                json!(o.interpreter_args)
            },
        );
    }
    if !o.args.is_empty() {
        put("args", json!(o.args));
    }
    if o.no_autorestart {
        put("autorestart", json!(false));
    }
    if o.no_autostart {
        put("autostart", json!(false));
    }
    let numbers = [
        ("max_restarts", o.max_restarts.map(u64::from)),
        ("min_uptime", o.min_uptime),
        ("restart_delay", o.restart_delay),
        ("exp_backoff_restart_delay", o.exp_backoff_restart_delay),
        ("kill_timeout", o.kill_timeout),
        ("max_memory_restart", o.max_memory_restart),
        ("max_log_size", o.max_log_size),
        ("log_retain", o.log_retain.map(u64::from)),
        ("watch_delay", o.watch_delay),
    ];
    for (k, v) in numbers {
        if let Some(v) = v {
            put(k, json!(v));
        }
    }
    if let Some(s) = o.kill_signal {
        put("kill_signal", json!(s));
    }
    if !o.stop_exit_codes.is_empty() {
        put("stop_exit_codes", json!(o.stop_exit_codes));
    }
    if let Some(ns) = &o.namespace {
        put("namespace", json!(ns));
    }
    if let Some(f) = &o.log_date_format {
        put("log_date_format", json!(f));
    } else if o.time {
        put("log_date_format", json!(crate::spec::datefmt::TIME_FORMAT));
    }
    if let Some(c) = &o.cron_restart {
        put(
            "cron_restart",
            if c.trim() == "0" {
                Value::Null
            } else {
                json!(c)
            },
        );
    }
    if !o.ignore_watch.is_empty() {
        put("ignore_watch", json!(o.ignore_watch));
    }
    if let Some(v) = &o.instance_var {
        put("instance_var", json!(v));
    }
    if let Some(t) = &o.log_type {
        put("log_type", json!(t));
    }
    if o.disable_logs {
        put("disable_logs", json!(true));
    }
    (!p.is_empty()).then_some(p)
}

/// The keys an ecosystem file gives one app (canonical names, as appkeys.rs reads them),
/// taken from the spec built from the file; `nulls` are keys written as `'null'`.
pub fn of_file(spec: &AppSpec, keys: &[&str], nulls: &[&str]) -> Patch {
    let full = serde_json::to_value(AppSpec {
        env: Default::default(),
        ..spec.clone()
    })
    .unwrap_or(Value::Null);
    let fields = |k: &str| -> Vec<String> {
        match k {
            "script" => vec!["script".into(), "interpreter".into()],
            "time" => vec!["log_date_format".into()],
            // Decided per copy or merged their own way (env); not overwritten in place.
            "env" | "instances" | "exec_mode" | "port" | "append_env_to_name" | "out_file"
            | "error_file" | "log_file" | "pid_file" | "merge_logs" | "cwd" => vec![],
            k if full.get(k).is_some() => vec![k.to_string()],
            _ => vec![],
        }
    };
    let mut p = Patch::new();
    for k in keys {
        for f in fields(k) {
            p.insert(f.clone(), full[f.as_str()].clone());
        }
    }
    for k in nulls {
        for f in fields(k) {
            p.insert(f, Value::Null);
        }
    }
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_was_given() {
        assert_eq!(of_start(&StartOpts::default()), None);
        let o = StartOpts {
            name: Some("new".into()),
            interpreter_args: vec!["null".into()],
            restart_delay: Some(5),
            ..StartOpts::default()
        };
        let p = of_start(&o).unwrap();
        assert_eq!(
            Value::Object(p),
            json!({"name": "new", "interpreter_args": null, "restart_delay": 5})
        );
        let spec = AppSpec {
            max_restarts: 4,
            kill_timeout: 99,
            ..AppSpec::default()
        };
        let p = of_file(&spec, &["max_restarts", "env", "vizion"], &["kill_timeout"]);
        assert_eq!(
            Value::Object(p),
            json!({"max_restarts": 4, "kill_timeout": null})
        );
    }
}
