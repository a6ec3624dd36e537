//! pm2's app keys: which keys exist (with their aliases), what type each takes, and the
//! parsers of their values (sizes, durations, cron patterns, argument strings). Checks one
//! app object into an `EcoApp`, collecting every error and warning with its position.
//!
//! Pure: a parsed value in, apps and messages out.

use std::collections::{BTreeMap, HashMap};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::config::{self, AppSpec};

/// One app of the file, checked, before its script is resolved.
#[derive(Debug, Clone)]
pub struct EcoApp {
    /// Its place in the file (0-based).
    pub index: usize,
    pub name: String,
    pub script: String,
    pub interpreter: Option<String>,
    pub cwd: Option<String>,
    pub env: BTreeMap<String, String>,
    /// `env_production` → "production" → its variables.
    pub env_named: BTreeMap<String, BTreeMap<String, String>>,
    /// `instances` as written: 0 means one per CPU, negative means CPUs minus that many.
    pub instances: Option<i64>,
    pub merge_logs: Option<bool>,
    /// `exec_mode: cluster`: Node cluster workers sharing their ports.
    pub cluster: bool,
    /// `exec_mode: fork` written out: no cluster mode even with `instances`.
    pub fork: bool,
    pub port: Option<u64>,
    /// `append_env_to_name`: `--env NAME` renames the app `NAME-ENV`.
    pub append_env_to_name: bool,
    /// `log_file: true`: `NAME.log` in ward's logs folder.
    pub(crate) log_default: bool,
    /// Every other key, already applied.
    pub spec: AppSpec,
    /// Where the app's `script` key is, for errors found later (script not found).
    pub(crate) script_at: String,
    pub(crate) cwd_at: String,
    /// The keys the file gives (canonical names), for `restart FILE`, which overwrites
    /// exactly these on a running app.
    pub keys: Vec<&'static str>,
    /// Keys written as the string `'null'`: `restart FILE` deletes them (pm2's extendMix).
    pub nulls: Vec<&'static str>,
    /// `uid`/`user` and `gid` as written (a name or a number): the client looks them up.
    pub uid: Option<String>,
    pub gid: Option<String>,
}

/// Checks a whole file; `Err` holds every error, one per line, then "nothing was done".
pub fn check(
    file: &str,
    positions: &HashMap<String, (usize, usize)>,
    root: &Value,
) -> Result<(Vec<EcoApp>, Vec<String>)> {
    let mut c = Checker {
        file,
        positions,
        errors: Vec::new(),
        warnings: Vec::new(),
    };
    let apps = c.file(root);
    if !c.errors.is_empty() {
        return Err(c.fail());
    }
    Ok((apps, c.warnings))
}

/// `apps[1]` or `app "api"`.
pub fn label(index: usize, name: Option<&str>) -> String {
    match name {
        Some(n) if !n.is_empty() => format!("app {n:?}"),
        _ => format!("apps[{index}]"),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Str,
    Bool,
    /// A whole number, 0 or more.
    Count,
    /// A string or a list of strings (`args`, `node_args`, `ignore_watch`).
    Words,
    Env,
    Instances,
    ExecMode,
    Size,
    Duration,
    Cron,
    ExitCodes,
    Watch,
    Signal,
    LogFile,
    Port,
    /// A user or group: a name or a number. Not supported yet.
    Owner,
    /// A key ward accepts and ignores (Node-only and pm2.io options).
    Ignored,
}

/// pm2's keys (`lib/API/schema.json`) and their aliases → (canonical key, kind).
const KEYS: &[(&str, &str, Kind)] = &[
    ("name", "name", Kind::Str),
    ("script", "script", Kind::Str),
    ("exec", "script", Kind::Str),
    ("cmd", "script", Kind::Str),
    ("command", "script", Kind::Str),
    ("args", "args", Kind::Words),
    ("interpreter", "interpreter", Kind::Str),
    ("exec_interpreter", "interpreter", Kind::Str),
    ("interpreter_args", "interpreter_args", Kind::Words),
    ("node_args", "interpreter_args", Kind::Words),
    ("interpreterArgs", "interpreter_args", Kind::Words),
    ("cwd", "cwd", Kind::Str),
    ("env", "env", Kind::Env),
    ("namespace", "namespace", Kind::Str),
    ("instances", "instances", Kind::Instances),
    ("exec_mode", "exec_mode", Kind::ExecMode),
    ("instance_var", "instance_var", Kind::Str),
    ("watch", "watch", Kind::Watch),
    ("ignore_watch", "ignore_watch", Kind::Words),
    ("watch_delay", "watch_delay", Kind::Count),
    ("watch_options", "watch_options", Kind::Ignored),
    ("max_memory_restart", "max_memory_restart", Kind::Size),
    ("autorestart", "autorestart", Kind::Bool),
    ("autostart", "autostart", Kind::Bool),
    ("restart_delay", "restart_delay", Kind::Count),
    (
        "exp_backoff_restart_delay",
        "exp_backoff_restart_delay",
        Kind::Count,
    ),
    ("max_restarts", "max_restarts", Kind::Count),
    ("min_uptime", "min_uptime", Kind::Duration),
    ("kill_timeout", "kill_timeout", Kind::Count),
    ("kill_retry_time", "kill_retry_time", Kind::Count),
    ("kill_signal", "kill_signal", Kind::Signal),
    ("listen_timeout", "listen_timeout", Kind::Count),
    ("wait_ready", "wait_ready", Kind::Bool),
    ("cron_restart", "cron_restart", Kind::Cron),
    ("cron", "cron_restart", Kind::Cron),
    ("out_file", "out_file", Kind::Str),
    ("out", "out_file", Kind::Str),
    ("output", "out_file", Kind::Str),
    ("out_log", "out_file", Kind::Str),
    ("error_file", "error_file", Kind::Str),
    ("error", "error_file", Kind::Str),
    ("err", "error_file", Kind::Str),
    ("err_file", "error_file", Kind::Str),
    ("err_log", "error_file", Kind::Str),
    ("log_file", "log_file", Kind::LogFile),
    ("log", "log_file", Kind::LogFile),
    ("log_date_format", "log_date_format", Kind::Str),
    ("log_type", "log_type", Kind::Str),
    ("time", "time", Kind::Bool),
    ("merge_logs", "merge_logs", Kind::Bool),
    ("combine_logs", "merge_logs", Kind::Bool),
    ("disable_logs", "disable_logs", Kind::Bool),
    ("max_log_size", "max_log_size", Kind::Size),
    ("log_retain", "log_retain", Kind::Count),
    ("stop_exit_codes", "stop_exit_codes", Kind::ExitCodes),
    ("port", "port", Kind::Port),
    ("uid", "uid", Kind::Owner),
    ("user", "uid", Kind::Owner),
    ("gid", "gid", Kind::Owner),
    ("pid_file", "pid_file", Kind::Str),
    ("pid", "pid_file", Kind::Str),
    ("treekill", "treekill", Kind::Bool),
    ("force", "force", Kind::Ignored),
    ("shutdown_with_message", "shutdown_with_message", Kind::Bool),
    ("increment_var", "increment_var", Kind::Str),
    ("filter_env", "filter_env", Kind::Ignored),
    // Read by ecosystem.rs (`--env NAME` renames the app NAME-ENV).
    ("append_env_to_name", "append_env_to_name", Kind::Bool),
    ("name_prefix", "name_prefix", Kind::Ignored),
    ("source_map_support", "source_map_support", Kind::Ignored),
    (
        "disable_source_map_support",
        "disable_source_map_support",
        Kind::Ignored,
    ),
    ("vizion", "vizion", Kind::Ignored),
    ("pmx", "pmx", Kind::Ignored),
    ("automation", "automation", Kind::Ignored),
    ("trace", "trace", Kind::Ignored),
    ("disable_trace", "disable_trace", Kind::Ignored),
    ("v8", "v8", Kind::Ignored),
    (
        "event_loop_inspector",
        "event_loop_inspector",
        Kind::Ignored,
    ),
    ("deep_monitoring", "deep_monitoring", Kind::Ignored),
    ("windowsHide", "windowsHide", Kind::Ignored),
    ("io", "io", Kind::Ignored),
    ("post_update", "post_update", Kind::Ignored),
    ("install_url", "install_url", Kind::Ignored),
    ("execute_command", "execute_command", Kind::Ignored),
    ("write", "write", Kind::Ignored),
    ("username", "username", Kind::Ignored),
];

struct Checker<'a> {
    file: &'a str,
    positions: &'a HashMap<String, (usize, usize)>,
    errors: Vec<String>,
    warnings: Vec<String>,
}

impl Checker<'_> {
    fn at(&self, path: &str) -> String {
        match self.positions.get(path) {
            Some((l, c)) => format!("{}:{l}:{c}: ", self.file),
            None => format!("{}: ", self.file),
        }
    }

    fn error(&mut self, path: &str, msg: String) {
        let line = format!("{}{msg}", self.at(path));
        self.errors.push(line);
    }

    fn warn(&mut self, path: &str, msg: String) {
        let line = format!("{}{msg}", self.at(path));
        self.warnings.push(line);
    }

    fn fail(&mut self) -> Error {
        let mut msg = self.errors.join("\nward: ");
        msg.push_str(&format!("\nward: {}: nothing was done", self.file));
        Error::new(msg)
    }

    fn file(&mut self, root: &Value) -> Vec<EcoApp> {
        let (list, base): (Vec<&Value>, &str) = match root {
            Value::Array(a) => (a.iter().collect(), ""),
            Value::Object(m) => match m.get("apps") {
                Some(Value::Array(a)) => {
                    for k in m.keys() {
                        if k != "apps" && k != "deploy" {
                            self.warn(k, format!("unknown top-level key {k:?} ignored"));
                        }
                    }
                    (a.iter().collect(), "apps")
                }
                Some(one @ Value::Object(_)) => (vec![one], "apps"),
                Some(other) => {
                    self.error(
                        "apps",
                        format!(
                            "key \"apps\": expected a list of apps, got {}",
                            kind_of(other)
                        ),
                    );
                    return Vec::new();
                }
                // A file holding one app, as pm2 also accepts.
                None if m.contains_key("script") || m.contains_key("name") => (vec![root], ""),
                None => {
                    self.error(
                        "",
                        "no \"apps\" key: expected { \"apps\": [ { \"name\": ..., \"script\": ... } ] }"
                            .into(),
                    );
                    return Vec::new();
                }
            },
            other => {
                self.error(
                    "",
                    format!(
                        "expected an object {{ apps: [...] }} or a list of apps, got {}",
                        kind_of(other)
                    ),
                );
                return Vec::new();
            }
        };
        if list.is_empty() {
            self.error(base, "the file lists no apps".into());
            return Vec::new();
        }
        let single = base.is_empty() && matches!(root, Value::Object(_));
        let mut apps = Vec::new();
        for (i, v) in list.iter().enumerate() {
            let path = if single {
                String::new()
            } else if base.is_empty() {
                i.to_string()
            } else {
                format!("{base}/{i}")
            };
            if let Some(app) = self.app(i, &path, v) {
                apps.push(app);
            }
        }
        let mut seen: HashMap<String, usize> = HashMap::new();
        for a in &apps {
            if let Some(first) = seen.insert(a.name.clone(), a.index) {
                let path = format!("{base}/{}", a.index);
                self.error(
                    path.trim_start_matches('/'),
                    format!(
                        "apps[{first}] and apps[{}] are both named {:?}; give each app its own \
                         name (use \"instances\" for several copies of one app)",
                        a.index, a.name
                    ),
                );
            }
        }
        apps
    }

    fn app(&mut self, index: usize, path: &str, v: &Value) -> Option<EcoApp> {
        let Value::Object(m) = v else {
            self.error(
                path,
                format!(
                    "apps[{index}]: expected an object {{ name, script, ... }}, got {}",
                    kind_of(v)
                ),
            );
            return None;
        };
        let key_path = |k: &str| {
            if path.is_empty() {
                k.to_string()
            } else {
                format!("{path}/{k}")
            }
        };
        let given_name = m.get("name").and_then(Value::as_str).map(str::to_string);
        let who = label(index, given_name.as_deref());
        let errors_before = self.errors.len();
        let mut app = EcoApp {
            index,
            name: String::new(),
            script: String::new(),
            interpreter: None,
            cwd: None,
            env: BTreeMap::new(),
            env_named: BTreeMap::new(),
            instances: None,
            merge_logs: None,
            cluster: false,
            fork: false,
            port: None,
            append_env_to_name: false,
            log_default: false,
            spec: AppSpec::default(),
            script_at: String::new(),
            cwd_at: self.at(&key_path("cwd")),
            keys: Vec::new(),
            nulls: Vec::new(),
            uid: None,
            gid: None,
        };
        let mut time = false;
        let mut script_keys: Vec<&str> = Vec::new();
        for (key, val) in m {
            let kp = key_path(key);
            let bad =
                |what: &str| format!("{who}: key {key:?}: expected {what}, got {}", show(val));
            if let Some(name) = key.strip_prefix("env_") {
                match env_map(val) {
                    Ok(e) => {
                        app.env_named.insert(name.to_string(), e);
                    }
                    Err(msg) => self.error(&kp, format!("{who}: key {key:?}: {msg}")),
                }
                continue;
            }
            let Some(&(_, canon, kind)) = KEYS.iter().find(|(k, _, _)| k == key) else {
                let hint = suggest(key)
                    .map(|s| format!(" (did you mean {s:?}?)"))
                    .unwrap_or_default();
                self.warn(&kp, format!("{who}: unknown key {key:?} ignored{hint}"));
                continue;
            };
            if canon == "script" {
                script_keys.push(key);
            }
            if val.as_str() == Some("null") && !matches!(canon, "name" | "script") {
                app.nulls.push(canon);
                continue;
            }
            if !val.is_null() {
                app.keys.push(canon);
            }
            if val.is_null() && kind != Kind::Str {
                continue; // `undefined` / null: as if not written, as pm2 reads it
            }
            let s = &mut app.spec;
            let res: std::result::Result<(), String> = match kind {
                Kind::Str => match val {
                    Value::String(x) => {
                        match canon {
                            "name" => {
                                if let Err(e) = config::check_name(x) {
                                    self.error(&kp, format!("{who}: key \"name\": {e}"));
                                }
                                app.name = x.clone();
                            }
                            "script" => {
                                if x.trim().is_empty() {
                                    self.error(
                                        &kp,
                                        format!("{who}: key {key:?}: the script is empty"),
                                    );
                                }
                                app.script = x.clone();
                                app.script_at = self.at(&kp);
                            }
                            "interpreter" => {
                                app.interpreter = Some(x.clone()).filter(|i| !i.is_empty())
                            }
                            "cwd" => app.cwd = Some(x.clone()),
                            "namespace" => {
                                if x.is_empty() {
                                    self.error(
                                        &kp,
                                        format!("{who}: key \"namespace\": it is empty"),
                                    );
                                }
                                s.namespace = x.clone();
                            }
                            "instance_var" => s.instance_var = x.clone(),
                            "increment_var" => s.increment_var = Some(x.clone()),
                            "out_file" => s.out_file = x.clone(),
                            "error_file" => s.error_file = x.clone(),
                            "pid_file" => s.pid_file = x.clone(),
                            "log_date_format" => s.log_date_format = Some(x.clone()),
                            "log_type" => s.log_type = Some(x.clone()),
                            _ => {}
                        }
                        Ok(())
                    }
                    Value::Null => Ok(()),
                    _ => Err(bad("a string")),
                },
                Kind::Bool => match val {
                    Value::Bool(b) => {
                        let b = *b;
                        match canon {
                            "autorestart" => s.autorestart = b,
                            "autostart" => s.autostart = b,
                            "wait_ready" => s.wait_ready = b,
                            "shutdown_with_message" => s.shutdown_with_message = b,
                            "time" => time = b,
                            "merge_logs" => app.merge_logs = Some(b),
                            "disable_logs" => s.disable_logs = b,
                            "treekill" => s.treekill = b,
                            _ => {}
                        }
                        Ok(())
                    }
                    _ => Err(bad("true or false")),
                },
                Kind::Count => match count(val) {
                    Some(n) if n > config::MAX_DELAY_MS && is_delay(canon) => Err(bad(&format!(
                        "at most {} ms (about 24.8 days)",
                        config::MAX_DELAY_MS
                    ))),
                    Some(n) => {
                        match canon {
                            "watch_delay" => s.watch_delay = n,
                            "restart_delay" => s.restart_delay = n,
                            "exp_backoff_restart_delay" => s.exp_backoff_restart_delay = n,
                            "max_restarts" => s.max_restarts = n.min(u32::MAX as u64) as u32,
                            "kill_timeout" => s.kill_timeout = n,
                            "listen_timeout" => s.listen_timeout = n,
                            "log_retain" => s.log_retain = Some(n.min(u32::MAX as u64) as u32),
                            _ => {}
                        }
                        Ok(())
                    }
                    None if is_negative(val) => Err(bad("a number, 0 or more")),
                    None => Err(bad("a whole number of milliseconds")),
                },
                Kind::Words => match words(val) {
                    Some(w) => {
                        match canon {
                            "args" => s.args = w,
                            "interpreter_args" => s.interpreter_args = w,
                            "ignore_watch" => s.ignore_watch = w,
                            _ => {}
                        }
                        Ok(())
                    }
                    None => Err(bad("a string or a list of strings")),
                },
                Kind::Env => match env_map(val) {
                    Ok(e) => {
                        app.env = e;
                        Ok(())
                    }
                    Err(msg) => Err(format!("{who}: key {key:?}: {msg}")),
                },
                Kind::Instances => match instances(val) {
                    Some(n) => {
                        app.instances = Some(n);
                        Ok(())
                    }
                    None => Err(bad("a whole number or \"max\"")),
                },
                Kind::ExecMode => match val.as_str() {
                    Some("fork" | "fork_mode") => {
                        app.fork = true;
                        Ok(())
                    }
                    Some("cluster" | "cluster_mode") => {
                        app.cluster = true;
                        Ok(())
                    }
                    _ => Err(bad("\"fork\" or \"cluster\"")),
                },
                Kind::Size => match parse_size(val) {
                    Some(n) => {
                        match canon {
                            "max_log_size" => s.max_log_size = Some(n),
                            _ => s.max_memory_restart = Some(n),
                        }
                        Ok(())
                    }
                    None => Err(bad("a size such as 300M, 1G, 512K or a number of bytes")),
                },
                Kind::Duration => match parse_duration(val) {
                    Some(n) if n > config::MAX_DELAY_MS => Err(bad(&format!(
                        "at most {} ms (about 24.8 days)",
                        config::MAX_DELAY_MS
                    ))),
                    Some(n) => {
                        s.min_uptime = n;
                        Ok(())
                    }
                    None => Err(bad(
                        "milliseconds, or a duration such as \"10s\", \"2m\", \"1h\"",
                    )),
                },
                Kind::Cron => match cron_value(val) {
                    Ok(c) => {
                        s.cron_restart = c;
                        Ok(())
                    }
                    Err(why) => Err(format!("{who}: key {key:?}: {why}")),
                },
                Kind::ExitCodes => match exit_codes(val) {
                    Some(c) => {
                        s.stop_exit_codes = c;
                        Ok(())
                    }
                    None => Err(bad("an exit code or a list of exit codes (0-255)")),
                },
                Kind::Watch => match val {
                    Value::Bool(true) => {
                        s.watch = vec![".".into()];
                        Ok(())
                    }
                    Value::Bool(false) => {
                        s.watch.clear();
                        Ok(())
                    }
                    other => match words(other) {
                        Some(w) => {
                            s.watch = w;
                            Ok(())
                        }
                        None => Err(bad("true, false, a path or a list of paths")),
                    },
                },
                Kind::Signal => {
                    let text = match val {
                        Value::String(x) => Some(x.clone()),
                        Value::Number(n) => Some(n.to_string()),
                        _ => None,
                    };
                    match text.map(|t| config::parse_signal(&t)) {
                        Some(Ok(sig)) => {
                            s.kill_signal = sig;
                            Ok(())
                        }
                        Some(Err(e)) => Err(format!("{who}: key {key:?}: {e}")),
                        None => Err(bad("a signal name such as \"SIGTERM\"")),
                    }
                }
                Kind::LogFile => match val {
                    Value::Bool(b) => {
                        app.log_default = *b;
                        Ok(())
                    }
                    Value::String(x) => {
                        s.log_file = x.clone();
                        Ok(())
                    }
                    _ => Err(bad("a path, or true")),
                },
                Kind::Port => match count(val) {
                    Some(p) if p > 0 && p < 65536 => {
                        app.port = Some(p);
                        Ok(())
                    }
                    _ => Err(bad("a port number, 1-65535")),
                },
                Kind::Owner => {
                    let v = match val {
                        Value::String(x) if !x.is_empty() => Some(x.clone()),
                        Value::Number(n) if n.as_u64().is_some() => Some(n.to_string()),
                        _ => None,
                    };
                    match (v, canon) {
                        (Some(v), "gid") => {
                            app.gid = Some(v);
                            Ok(())
                        }
                        (Some(v), _) => {
                            app.uid = Some(v);
                            Ok(())
                        }
                        (None, _) => Err(bad("a user or group name, or a number")),
                    }
                }
                Kind::Ignored => Ok(()),
            };
            if let Err(msg) = res {
                self.error(&kp, msg);
            }
        }
        if script_keys.len() > 1 {
            self.error(
                &key_path(script_keys[1]),
                format!("{who}: keys {script_keys:?} all name the script; keep one"),
            );
        }
        if app.script.is_empty() && script_keys.is_empty() {
            self.error(
                path,
                format!("{who}: key \"script\" is missing (the program to run)"),
            );
        }
        if time && app.spec.log_date_format.is_none() {
            app.spec.log_date_format = Some("YYYY-MM-DDTHH:mm:ss".into());
        }
        if app.name.is_empty() {
            app.name = config::default_name(&app.script);
        }
        if self.errors.len() > errors_before {
            return None;
        }
        Some(app)
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// A value as a message shows it: short, and typed (`"12"` vs `12`).
fn show(v: &Value) -> String {
    match v {
        Value::Array(_) | Value::Object(_) => kind_of(v).to_string(),
        other => {
            let s = other.to_string();
            if s.chars().count() > 40 {
                format!("{}…", s.chars().take(40).collect::<String>())
            } else {
                s
            }
        }
    }
}

fn is_negative(v: &Value) -> bool {
    v.as_f64().is_some_and(|f| f < 0.0)
}

/// A whole number, 0 or more. pm2 also takes numbers written as strings ("1000").
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < 1e18)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse::<u64>().ok(),
        _ => None,
    }
}

fn instances(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && f.abs() < 1e9)
                .map(|f| f as i64)
        }),
        Value::String(s) if s.trim() == "max" => Some(0),
        Value::String(s) => s.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// `args: "--port 80 --name 'my app'"` → words, honouring quotes as a shell would.
pub fn split_words(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut any = false;
    let mut quote: Option<char> = None;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                }
            }
            (Some(_), c) => cur.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                any = true;
            }
            (None, '\\') => {
                if let Some(n) = chars.next() {
                    cur.push(n);
                    any = true;
                }
            }
            (None, c) if c.is_whitespace() => {
                if any || !cur.is_empty() {
                    out.push(std::mem::take(&mut cur));
                    any = false;
                }
            }
            (None, c) => cur.push(c),
        }
    }
    if any || !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn words(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::String(s) => Some(split_words(s)),
        Value::Array(a) => a
            .iter()
            .map(|x| match x {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// An `env` block: scalars become strings as node's `process.env` makes them, objects
/// become JSON (pm2's `mergeEnvironmentVariables`), null leaves the variable out.
fn env_map(v: &Value) -> std::result::Result<BTreeMap<String, String>, String> {
    let Value::Object(m) = v else {
        return Err(format!(
            "expected an object of variables {{ NAME: \"value\" }}, got {}",
            show(v)
        ));
    };
    let mut out = BTreeMap::new();
    for (k, val) in m {
        if k.is_empty() || k.contains('=') || k.contains('\0') {
            return Err(format!("{k:?} is not a valid variable name"));
        }
        let s = match val {
            Value::Null => continue,
            Value::String(s) => s.clone(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => n.to_string(),
            other => other.to_string(),
        };
        if s.contains('\0') {
            return Err(format!("the value of {k} contains a NUL byte"));
        }
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// pm2's `max_memory_restart`: bytes, or a number with K, M or G (powers of 1024).
pub fn parse_size(v: &Value) -> Option<u64> {
    if let Some(n) = count(v) {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let upper = s.to_ascii_uppercase();
    let t = upper.strip_suffix('B').unwrap_or(&upper);
    let (num, mult) = match t.chars().last()? {
        'K' => (&t[..t.len() - 1], 1u64 << 10),
        'M' => (&t[..t.len() - 1], 1 << 20),
        'G' => (&t[..t.len() - 1], 1 << 30),
        _ => (t, 1),
    };
    let num = num.trim();
    if num.is_empty() || !num.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let f: f64 = num.parse().ok()?;
    let bytes = (f * mult as f64).round();
    (1.0..1e19).contains(&bytes).then_some(bytes as u64)
}

/// `min_uptime`: milliseconds, or "500ms", "10s", "2m", "1h".
pub fn parse_duration(v: &Value) -> Option<u64> {
    if let Some(n) = count(v) {
        return Some(n);
    }
    let s = v.as_str()?.trim();
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3_600_000)
    } else {
        return None;
    };
    let n: u64 = num.trim().parse().ok()?;
    n.checked_mul(mult)
}

/// The count keys that are delays or timeouts in ms (capped at `MAX_DELAY_MS`).
fn is_delay(canon: &str) -> bool {
    matches!(
        canon,
        "watch_delay"
            | "restart_delay"
            | "exp_backoff_restart_delay"
            | "kill_timeout"
            | "kill_retry_time"
            | "listen_timeout"
    )
}

fn exit_codes(v: &Value) -> Option<Vec<i32>> {
    let one = |x: &Value| count(x).filter(|&c| c <= 255).map(|c| c as i32);
    match v {
        Value::Array(a) => a.iter().map(one).collect(),
        other => one(other).map(|c| vec![c]),
    }
}

/// `cron_restart`: a cron pattern (5 fields, or 6 with seconds first), `@daily` and
/// friends; `0` turns it off, as in pm2.
fn cron_value(v: &Value) -> std::result::Result<Option<String>, String> {
    let s = match v {
        Value::Number(n) if n.as_u64() == Some(0) => return Ok(None),
        Value::String(s) if s.trim() == "0" || s.trim().is_empty() => return Ok(None),
        Value::String(s) => s.trim().to_string(),
        other => {
            return Err(format!(
                "expected a cron pattern such as \"0 3 * * *\", got {}",
                show(other)
            ));
        }
    };
    check_cron(&s)?;
    // What the scheduler runs (it has no L, W or #; it refuses a date that never comes).
    crate::spec::cron::Schedule::parse(&s).map_err(|e| format!("{s:?}: {e}"))?;
    Ok(Some(s))
}

pub fn check_cron(s: &str) -> std::result::Result<(), String> {
    const NICK: &[&str] = &[
        "@yearly",
        "@annually",
        "@monthly",
        "@weekly",
        "@daily",
        "@midnight",
        "@hourly",
    ];
    if s.starts_with('@') {
        return if NICK.contains(&s.to_ascii_lowercase().as_str()) {
            Ok(())
        } else {
            Err(format!(
                "{s:?} is not a cron nickname (@hourly, @daily, @weekly, @monthly, @yearly)"
            ))
        };
    }
    let fields: Vec<&str> = s.split_whitespace().collect();
    const NAMES5: [&str; 5] = ["minute", "hour", "day of month", "month", "day of week"];
    const RANGES5: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    let (names, ranges): (Vec<&str>, Vec<(u32, u32)>) = match fields.len() {
        5 => (NAMES5.to_vec(), RANGES5.to_vec()),
        6 => (
            std::iter::once("second").chain(NAMES5).collect(),
            std::iter::once((0, 59)).chain(RANGES5).collect(),
        ),
        n => {
            return Err(format!(
                "{s:?} has {n} fields; a cron pattern has 5 (minute hour day month weekday) \
                 or 6 (with seconds first)"
            ));
        }
    };
    const MONTHS: [&str; 12] = [
        "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
    ];
    const DAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
    for ((field, name), (lo, hi)) in fields.iter().zip(&names).zip(&ranges) {
        let month = *name == "month";
        let dow = *name == "day of week";
        let value = |t: &str| -> Option<u32> {
            let up = t.to_ascii_uppercase();
            if month {
                if let Some(i) = MONTHS.iter().position(|m| *m == up) {
                    return Some(i as u32 + 1);
                }
            }
            if dow {
                if let Some(i) = DAYS.iter().position(|d| *d == up) {
                    return Some(i as u32);
                }
            }
            t.parse::<u32>().ok().filter(|v| v >= lo && v <= hi)
        };
        let bad = || format!("{s:?}: {field:?} is not a valid {name} ({lo}-{hi})");
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((r, st)) => (r, Some(st)),
                None => (item, None),
            };
            if let Some(st) = step {
                if st.parse::<u32>().ok().filter(|&n| n > 0).is_none() {
                    return Err(bad());
                }
            }
            if range == "*" || range == "?" && (*name == "day of month" || dow) {
                continue;
            }
            // croner's extras: last day (L), nearest weekday (15W), nth weekday (5#2).
            let up = range.to_ascii_uppercase();
            if (*name == "day of month"
                && (up == "L" || up.ends_with('W') && value(&up[..up.len() - 1]).is_some()))
                || (dow
                    && (up.ends_with('L') && value(&up[..up.len() - 1]).is_some()
                        || up.split_once('#').is_some_and(|(d, n)| {
                            value(d).is_some() && matches!(n, "1" | "2" | "3" | "4" | "5")
                        })))
            {
                continue;
            }
            match range.split_once('-') {
                Some((a, b)) => match (value(a), value(b)) {
                    (Some(x), Some(y)) if x <= y => {}
                    _ => return Err(bad()),
                },
                None => {
                    if value(range).is_none() {
                        return Err(bad());
                    }
                }
            }
        }
    }
    Ok(())
}

/// The closest known key, for "did you mean".
fn suggest(key: &str) -> Option<&'static str> {
    let lower = key.to_ascii_lowercase();
    KEYS.iter()
        .map(|(k, _, _)| (distance(&lower, &k.to_ascii_lowercase()), *k))
        .filter(|(d, k)| *d <= 2.max(k.len() / 4))
        .min()
        .map(|(_, k)| k)
}

fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut cur = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn check_value(v: Value) -> std::result::Result<(Vec<EcoApp>, Vec<String>), Vec<String>> {
        let pos = HashMap::new();
        check("eco.json", &pos, &v).map_err(|e| {
            e.to_string()
                .lines()
                .filter(|l| !l.contains("nothing was done"))
                .map(|l| l.trim_start_matches("ward: ").to_string())
                .collect()
        })
    }

    #[test]
    fn keys_are_applied() {
        let (apps, warnings) = check_value(json!({"apps": [{
            "name": "api", "exec": "srv.js", "args": "--a 'b c'", "node_args": ["--x"],
            "instances": "max", "exec_mode": "cluster_mode", "max_memory_restart": "1.5G",
            "min_uptime": "2m", "cron": "*/5 * * * *", "stop_exit_codes": 3,
            "kill_signal": "SIGTERM", "time": true, "combine_logs": false,
            "max_log_size": "10M", "log_retain": 5,
            "env": {"A": 1, "B": true, "C": {"x": 1}, "D": null}, "env_prod": {"A": "2"},
            "watch": true, "port": 8080, "bogus_key": 1, "instanses": 2
        }]}))
        .unwrap();
        let a = &apps[0];
        assert_eq!(a.script, "srv.js");
        assert_eq!(a.spec.args, vec!["--a", "b c"]);
        assert_eq!(a.spec.interpreter_args, vec!["--x"]);
        assert_eq!(a.instances, Some(0));
        assert!(a.cluster);
        assert_eq!(a.spec.max_memory_restart, Some(1610612736));
        assert_eq!(a.spec.min_uptime, 120_000);
        assert_eq!(a.spec.cron_restart.as_deref(), Some("*/5 * * * *"));
        assert_eq!(a.spec.stop_exit_codes, vec![3]);
        assert_eq!(a.spec.kill_signal, libc::SIGTERM);
        assert_eq!(
            a.spec.log_date_format.as_deref(),
            Some("YYYY-MM-DDTHH:mm:ss")
        );
        assert_eq!(a.merge_logs, Some(false));
        assert_eq!(
            (a.spec.max_log_size, a.spec.log_retain),
            (Some(10 << 20), Some(5))
        );
        assert_eq!(a.env["A"], "1");
        assert_eq!(a.env["B"], "true");
        assert_eq!(a.env["C"], r#"{"x":1}"#);
        assert!(!a.env.contains_key("D"));
        assert_eq!(a.env_named["prod"]["A"], "2");
        assert_eq!(a.port, Some(8080));
        assert_eq!(a.spec.watch, vec!["."]);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(
            warnings[1].contains("did you mean \"instances\""),
            "{warnings:?}"
        );
    }

    #[test]
    fn shapes() {
        assert_eq!(
            check_value(json!([{"script": "a.js"}])).unwrap().0[0].name,
            "a"
        );
        assert_eq!(
            check_value(json!({"script": "b.sh"})).unwrap().0[0].name,
            "b"
        );
        assert_eq!(
            check_value(json!({"apps": {"script": "c"}}))
                .unwrap()
                .0
                .len(),
            1
        );
        assert!(check_value(json!({"apps": []})).unwrap_err()[0].contains("no apps"));
        assert!(check_value(json!({"foo": 1})).unwrap_err()[0].contains("no \"apps\""));
        assert!(check_value(json!("x")).is_err());
        let e = check_value(json!([{"script": "a"}, {"script": "b", "name": "a"}])).unwrap_err();
        assert!(e[0].contains("both named"), "{e:?}");
    }

    #[test]
    fn errors_name_app_and_key() {
        let e = check_value(
            json!({"apps": [{"name": "api", "script": "a", "instances": "lots",
            "kill_timeout": -5, "autorestart": "yes"}, {"args": 3}]}),
        )
        .unwrap_err();
        assert_eq!(e.len(), 5, "{e:?}");
        assert!(
            e.iter()
                .any(|m| m.contains("app \"api\": key \"instances\""))
        );
        assert!(
            e.iter()
                .any(|m| m.contains("key \"kill_timeout\": expected a number, 0 or more, got -5"))
        );
        assert!(
            e.iter()
                .any(|m| m.contains("apps[1]: key \"script\" is missing"))
        );
    }

    #[test]
    fn sizes_durations_instances() {
        assert_eq!(parse_size(&json!("300M")), Some(300 << 20));
        assert_eq!(parse_size(&json!("512k")), Some(512 << 10));
        assert_eq!(parse_size(&json!("1GB")), Some(1 << 30));
        assert_eq!(parse_size(&json!(1000)), Some(1000));
        assert_eq!(parse_size(&json!("lots")), None);
        assert_eq!(parse_size(&json!("-3M")), None);
        assert_eq!(parse_duration(&json!("10s")), Some(10_000));
        assert_eq!(parse_duration(&json!("1h")), Some(3_600_000));
        assert_eq!(parse_duration(&json!("250ms")), Some(250));
        assert_eq!(parse_duration(&json!(5)), Some(5));
        assert_eq!(parse_duration(&json!("soon")), None);
    }

    #[test]
    fn cron_patterns() {
        for ok in [
            "0 3 * * *",
            "*/15 * * * *",
            "0 0 1 JAN,jul MON-FRI",
            "30 */2 * * * *",
            "@daily",
            "0 0 L * *",
            "0 0 * * 5#2",
        ] {
            assert!(check_cron(ok).is_ok(), "{ok}");
        }
        for bad in [
            "0 3 * *",
            "61 * * * *",
            "* 24 * * *",
            "* * 0 * *",
            "* * * 13 *",
            "*/0 * * * *",
            "@sometimes",
            "a b c d e",
        ] {
            assert!(check_cron(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn words_split_like_a_shell() {
        assert_eq!(
            split_words("a  'b c' \"d\\\"e\" f\\ g ''"),
            vec!["a", "b c", "d\"e", "f g", ""]
        );
    }
}
