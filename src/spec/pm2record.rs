//! pm2's record of one app: the object `pm2 jlist` prints and `pm2 save` writes to
//! dump.pm2 (`pm2_env` with its keys, `monit`, `pid`). A format, like pm2dump.rs reads:
//! the client prints it, the daemon saves it.
//!
//! Pure: an app in, a JSON value out.

use serde_json::{Map, Value, json};

use crate::protocol::AppView;

/// One app as pm2's `jlist` shows it (`ActionMethods.js getMonitorData`).
pub fn entry(v: &AppView, home: &str, user: &str) -> Value {
    let a = &v.app;
    let s = &a.spec;
    let r = &a.run;
    let mut env = Map::new();
    let mut pm2_env = Map::new();
    for (k, val) in s.env.iter() {
        env.insert(k.clone(), Value::String(val.clone()));
        pm2_env.insert(k.clone(), Value::String(val.clone()));
    }
    // pm2 files the app's own settings under its name in `env` (API.js:871-872): an empty
    // object for a command-line start; an ecosystem start carries `NAME: '{}'` in its
    // environment already (spec/ecosystem.rs), so it shows in both places as in pm2.
    if !env.contains_key(&s.name) {
        env.insert(s.name.clone(), json!({}));
    }
    let fixed = json!({
        "name": s.name,
        "namespace": s.namespace,
        "pm_id": a.id,
        "status": r.status.as_str(),
        "restart_time": r.restarts,
        "unstable_restarts": r.unstable_restarts,
        "pm_uptime": r.pm_uptime,
        "created_at": r.created_at,
        "pm_exec_path": s.script,
        "pm_cwd": s.cwd,
        "exec_interpreter": s.interpreter_name(),
        "interpreter": s.interpreter_name(),
        "node_args": s.interpreter_args,
        "args": s.args,
        "pm_out_log_path": s.out_file,
        "pm_err_log_path": s.error_file,
        "pm_pid_path": if s.pid_file.is_empty() {
            format!("{home}/pids/{}-{}.pid", crate::spec::config::log_stem(&s.name), a.id)
        } else {
            s.pid_file.clone()
        },
        "exec_mode": s.exec_mode(),
        "instances": s.instances,
        "instance_var": s.instance_var,
        "NODE_APP_INSTANCE": s.instance,
        "merge_logs": s.merge_logs,
        "autorestart": s.autorestart,
        "autostart": s.autostart,
        "max_restarts": s.max_restarts,
        "min_uptime": s.min_uptime,
        "kill_timeout": s.kill_timeout,
        "restart_delay": s.restart_delay,
        "exp_backoff_restart_delay": s.exp_backoff_restart_delay,
        "stop_exit_codes": s.stop_exit_codes,
        "treekill": s.treekill,
        "username": user,
        "version": "N/A",
    });
    if let Value::Object(m) = fixed {
        pm2_env.extend(m);
    }
    // Moved in, not through `json!`: the macro turns a `Value` into a new one by
    // serializing it, a deep copy of the whole environment.
    pm2_env.insert("env".into(), Value::Object(env));
    for (name, block) in &s.env_blocks {
        pm2_env.insert(format!("env_{name}"), json!(block));
    }
    let policies = json!({
        // pm2 shows `true` for the app's own folder, else the paths, `false` when off.
        "watch": if s.watch.is_empty() {
            json!(false)
        } else if s.watch.len() == 1 && s.watch[0] == s.cwd {
            json!(true)
        } else {
            json!(s.watch)
        },
        "ignore_watch": s.ignore_watch,
        "watch_delay": s.watch_delay,
        "max_memory_restart": s.max_memory_restart,
        "cron_restart": s.cron_restart,
        "kill_signal": crate::spec::config::signal_name(s.kill_signal),
        // ward's own: the last exits with their reasons (`ward describe` shows them).
        "exits": r.exits,
    });
    if let Value::Object(m) = policies {
        pm2_env.extend(m);
    }
    // Fields pm2's dashboards read; axm_monitor and axm_actions are what the app reported
    // with @pm2/io over its IPC channel.
    let pm2_extra = json!({
        "vizion_running": false,
        // pm2's defaults (API/schema.json); ward acts on none of them.
        "vizion": true,
        "pmx": true,
        "automation": true,
        "km_link": false,
        "windowsHide": true,
        "kill_retry_time": 100,
        "filter_env": [],
        "axm_actions": r.axm_actions,
        "axm_monitor": r.axm_monitor,
        "axm_options": {},
        "axm_dynamic": {},
    });
    if let Value::Object(m) = pm2_extra {
        pm2_env.extend(m);
    }
    for (k, v) in [("uid", s.uid), ("gid", s.gid)] {
        if let Some(v) = v {
            pm2_env.insert(k.into(), json!(v));
        }
    }
    if let Some(v) = &s.increment_var {
        pm2_env.insert("increment_var".into(), json!(v));
    }
    if !s.log_file.is_empty() {
        // Only with `-l` / `log_file`, as pm2 (Common.js:203-232).
        pm2_env.insert("pm_log_path".into(), json!(s.log_file));
    }
    if s.interpreter_name().ends_with("node") {
        // What pm2's in-app agent reports for a Node app; pm2 names its own package there.
        pm2_env.insert("axm_options".into(), node_axm_options(&s.name));
    }
    // pm2 keeps the code of the last exit (`exit_code`) once the app has exited.
    if let Some(crate::lifecycle::Exit::Code(c)) = r.exits.back().map(|e| e.exit) {
        pm2_env.insert("exit_code".into(), json!(c));
    }
    let mut entry = json!({
        "pid": r.pid.unwrap_or(0),
        "name": s.name,
        "pm_id": a.id,
        "monit": { "memory": v.memory, "cpu": v.cpu },
    });
    // Moved in, not through `json!` (which would copy all of `pm2_env` once more).
    entry["pm2_env"] = Value::Object(pm2_env);
    entry
}

/// pm2's `axm_options` of a Node app, as its agent (@pm2/io) reports them.
fn node_axm_options(name: &str) -> Value {
    json!({
        "error": true,
        "heapdump": true,
        "feature.profiler.heapsnapshot": false,
        "feature.profiler.heapsampling": true,
        "feature.profiler.cpu_js": true,
        "latency": true,
        "catchExceptions": true,
        "profiling": true,
        "metrics": {"v8": true, "network": false, "eventLoop": true, "runtime": true, "http": true},
        "standalone": false,
        "tracing": {"enabled": false, "outbound": false},
        "module_conf": {},
        "apm": {"type": "node", "version": "8.0.0"},
        "module_name": name,
        "module_version": env!("CARGO_PKG_VERSION"),
    })
}
