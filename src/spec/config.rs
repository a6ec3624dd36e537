//! What an app is: `AppSpec`, its defaults (pm2's), interpreters by extension, and the
//! resolution of a `start` argument into a spec.
//!
//! Pure but for looking at the file system (does the script exist, is it executable, where
//! is it in PATH); it spawns nothing.

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// pm2's defaults (`constants.js`, `schema.json`).
pub const KILL_TIMEOUT_MS: u64 = 1600;
pub const MIN_UPTIME_MS: u64 = 1000;
pub const MAX_RESTARTS: u32 = 16;
pub const LISTEN_TIMEOUT_MS: u64 = 3000;
/// The longest delay or timeout ward accepts, in ms: 2^31 - 1 (about 24.8 days), Node's
/// own limit for a timer, which pm2 inherits. Larger values are refused, not wrapped: an
/// unchecked `now + 18446744073709551000` wraps to the past and fires at once.
pub const MAX_DELAY_MS: u64 = 2_147_483_647;

/// Refuses a delay or timeout above `MAX_DELAY_MS`, naming where it came from.
pub fn check_delay(ms: u64, what: &str) -> Result<u64> {
    if ms > MAX_DELAY_MS {
        return Err(Error::new(format!(
            "invalid value {ms} for {what}: at most {MAX_DELAY_MS} ms (about 24.8 days)"
        )));
    }
    Ok(ms)
}
pub const INSTANCE_VAR: &str = "NODE_APP_INSTANCE";

/// An app's environment; `Arc::make_mut` before changing it.
pub type Env = std::sync::Arc<BTreeMap<String, String>>;

thread_local! {
    /// The environment `read_env` read last, to share with the next equal one.
    static LAST_ENV: std::cell::RefCell<Env> = std::cell::RefCell::default();
}

/// Reads an environment as `BTreeMap`'s own `Deserialize` does, but shares the one read
/// last when this one equals it: a list of apps started from one shell then holds one
/// copy, as the daemon's table does (table.rs), and reading it allocates nothing while it
/// matches. A `jlist` of 100 apps started from one shell built the same environment a
/// hundred times; with the writer escaping a shared environment once (spec/pm2record.rs),
/// sharing takes 29% off the client's instructions.
fn read_env<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Env, D::Error> {
    struct Reader;
    impl<'de> serde::de::Visitor<'de> for Reader {
        type Value = Env;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a map")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> std::result::Result<Env, A::Error> {
            let last = LAST_ENV.with(|l| l.borrow().clone());
            let mut theirs = last.iter();
            // How many variables so far were the last environment's, in its order; once
            // one differs, `own` holds them and every variable from there on.
            let mut alike = 0;
            let mut own: Option<BTreeMap<String, String>> = None;
            while let Some(k) = map.next_key::<Text>()? {
                let x: Text = map.next_value()?;
                let own = match &mut own {
                    Some(own) => own,
                    None => {
                        if theirs.next().is_some_and(|(a, b)| *a == *k.0 && *b == *x.0) {
                            alike += 1;
                            continue;
                        }
                        let prefix = last.iter().take(alike);
                        own.insert(prefix.map(|(a, b)| (a.clone(), b.clone())).collect())
                    }
                };
                own.insert(k.0.into_owned(), x.0.into_owned());
            }
            let env = match own {
                None if alike == last.len() => return Ok(last),
                None => Env::new(
                    last.iter()
                        .take(alike)
                        .map(|(a, b)| (a.clone(), b.clone()))
                        .collect(),
                ),
                Some(own) => Env::new(own),
            };
            LAST_ENV.with(|l| *l.borrow_mut() = env.clone());
            Ok(env)
        }
    }
    d.deserialize_map(Reader)
}

/// A string of the input, borrowed where it needs no unescaping (to be compared before
/// anything is copied).
struct Text<'de>(std::borrow::Cow<'de, str>);

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct Reader;
        impl<'de> serde::de::Visitor<'de> for Reader {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(s.into()))
            }
            fn visit_str<E>(self, s: &str) -> std::result::Result<Text<'de>, E> {
                Ok(Text(s.to_string().into()))
            }
            fn visit_string<E>(self, s: String) -> std::result::Result<Text<'de>, E> {
                Ok(Text(s.into()))
            }
            // As `String` reads bytes: valid UTF-8 or an error.
            fn visit_bytes<E: serde::de::Error>(
                self,
                b: &[u8],
            ) -> std::result::Result<Text<'de>, E> {
                match std::str::from_utf8(b) {
                    Ok(s) => Ok(Text(s.to_string().into())),
                    Err(_) => Err(E::invalid_value(serde::de::Unexpected::Bytes(b), &self)),
                }
            }
        }
        d.deserialize_string(Reader)
    }
}

/// Everything the user asked for about one app. Runtime facts live in `lifecycle::Run`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(default)]
pub struct AppSpec {
    pub name: String,
    /// Absolute path of the script or program.
    pub script: String,
    pub args: Vec<String>,
    /// `None` runs the script itself (pm2's `exec_interpreter: "none"`).
    pub interpreter: Option<String>,
    pub interpreter_args: Vec<String>,
    pub cwd: String,
    /// The complete environment the app runs with (client's environment at start + `env`).
    /// Shared between apps whose environments are equal (most apps are started from one
    /// shell): with 1,000 apps, one copy instead of a thousand. Read so (`read_env`) too.
    /// Not written when empty: in a list whose environments are written apart (see
    /// `take_shared`), each app's is.
    #[serde(deserialize_with = "read_env", skip_serializing_if = "no_vars")]
    pub env: Env,
    /// pm2 gives an app started from an ecosystem file the variable `NAME={}` (its name,
    /// API.js:871-872) unless its environment sets that name itself. Kept as this mark and
    /// added where the variables are used (`vars`), so that the apps of one file share one
    /// `env`: 100 of them were 100 copies differing in that one variable, in the daemon's
    /// memory, in every state.json and in every `jlist`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub name_var: bool,
    pub namespace: String,
    pub autorestart: bool,
    pub max_restarts: u32,
    pub min_uptime: u64,
    pub restart_delay: u64,
    pub exp_backoff_restart_delay: u64,
    pub kill_timeout: u64,
    /// Signal number sent to the process group on stop.
    pub kill_signal: i32,
    pub stop_exit_codes: Vec<i32>,
    /// Log paths; empty means the default under `$WARD_HOME/logs`, filled in by the daemon.
    pub out_file: String,
    pub error_file: String,
    /// pm2's `pid_file`; empty means `$HOME/pids/NAME-ID.pid`.
    pub pid_file: String,
    /// The ecosystem file's `env_NAME` blocks, by NAME (shown as pm2 shows them).
    pub env_blocks: BTreeMap<String, BTreeMap<String, String>>,
    /// How many copies of the app were asked for (`-i`, `instances`); each copy is an app
    /// of its own with the same name.
    pub instances: u32,
    /// This copy's slot, 0..instances, given to the app as `instance_var`.
    pub instance: u32,
    /// pm2's `instance_var`: the variable that carries `instance`.
    pub instance_var: String,
    /// One log file for every copy (`NAME-out.log`) rather than one per id (`NAME-out-ID.log`).
    pub merge_logs: bool,
    /// pm2's keys whose features live elsewhere; kept here so that they round-trip.
    pub watch: Vec<String>,
    pub ignore_watch: Vec<String>,
    pub watch_delay: u64,
    /// Bytes.
    pub max_memory_restart: Option<u64>,
    pub cron_restart: Option<String>,
    /// Combined stdout+stderr file; empty means none.
    pub log_file: String,
    pub log_date_format: Option<String>,
    pub log_type: Option<String>,
    pub disable_logs: bool,
    /// Stay `launching` until the app says it is ready (`process.send('ready')` or
    /// `READY=1` on `NOTIFY_SOCKET`), or `listen_timeout` ms passed.
    pub wait_ready: bool,
    pub listen_timeout: u64,
    /// pm2's `exec_mode: cluster`: the copies run as Node cluster workers with ward as
    /// their primary, sharing the ports they listen on. Only for Node apps.
    pub cluster: bool,
    /// Stop with the IPC message `'shutdown'` rather than the kill signal (Node apps).
    pub shutdown_with_message: bool,
    pub autostart: bool,
    /// Rotate a log file once it passes this many bytes; `None`: the daemon-wide default.
    pub max_log_size: Option<u64>,
    /// Rotated files kept per log file; `None`: the daemon-wide default.
    pub log_retain: Option<u32>,
    /// pm2's `treekill`: stop signals go to the app's whole process group; `false`
    /// (`--no-treekill`) signals the main process only and leaves its children running.
    pub treekill: bool,
    /// pm2's `increment_var`: this variable of the environment counts up from copy to
    /// copy (God.js:629-645).
    pub increment_var: Option<String>,
    /// Run as this user and group (`--uid`, `--gid`, `-u`); the daemon must be root.
    pub uid: Option<u32>,
    pub gid: Option<u32>,
}

impl Default for AppSpec {
    fn default() -> AppSpec {
        AppSpec {
            name: String::new(),
            script: String::new(),
            args: Vec::new(),
            interpreter: None,
            interpreter_args: Vec::new(),
            cwd: String::new(),
            env: Env::default(),
            name_var: false,
            namespace: "default".into(),
            autorestart: true,
            max_restarts: MAX_RESTARTS,
            min_uptime: MIN_UPTIME_MS,
            restart_delay: 0,
            exp_backoff_restart_delay: 0,
            kill_timeout: KILL_TIMEOUT_MS,
            kill_signal: libc::SIGINT,
            stop_exit_codes: Vec::new(),
            out_file: String::new(),
            error_file: String::new(),
            pid_file: String::new(),
            env_blocks: BTreeMap::new(),
            instances: 1,
            instance: 0,
            instance_var: INSTANCE_VAR.into(),
            merge_logs: true,
            watch: Vec::new(),
            ignore_watch: Vec::new(),
            watch_delay: 0,
            max_memory_restart: None,
            cron_restart: None,
            log_file: String::new(),
            log_date_format: None,
            log_type: None,
            disable_logs: false,
            wait_ready: false,
            listen_timeout: LISTEN_TIMEOUT_MS,
            cluster: false,
            shutdown_with_message: false,
            autostart: true,
            max_log_size: None,
            log_retain: None,
            treekill: true,
            increment_var: None,
            uid: None,
            gid: None,
        }
    }
}

impl AppSpec {
    /// The variable `name_var` stands for, when the environment does not set it.
    pub fn name_var(&self) -> Option<(&str, &'static str)> {
        (self.name_var && !self.env.contains_key(&self.name)).then_some((&self.name, "{}"))
    }

    /// The app's variables in key order: its environment, with `name_var`'s in its place.
    pub fn vars(&self) -> Vars<'_> {
        Vars {
            env: self.env.iter().peekable(),
            extra: self.name_var(),
        }
    }

    /// The timestamp format of captured lines, if any (pm2's `time` is turned into
    /// `log_date_format` when the spec is built).
    pub fn date_format(&self) -> Option<&str> {
        self.log_date_format.as_deref().filter(|f| !f.is_empty())
    }

    /// A Node app (run by `node`, `nodejs` or a path to one): it gets Node's IPC channel
    /// and may run in cluster mode.
    pub fn is_node(&self) -> bool {
        self.interpreter.as_deref().is_some_and(is_node_program)
    }

    /// pm2's `exec_mode`: `cluster_mode` or `fork_mode`.
    pub fn exec_mode(&self) -> &'static str {
        if self.cluster {
            "cluster_mode"
        } else {
            "fork_mode"
        }
    }

    /// What pm2 reports as `exec_interpreter`.
    pub fn interpreter_name(&self) -> &str {
        self.interpreter.as_deref().unwrap_or("none")
    }
}

/// Takes the environments out of `slots` (left empty): each distinct one once, by
/// pointer (the table shares equal ones, table.rs), and the index of each slot's. A list
/// of apps is written so (a `jlist` reply, state.json): 100 apps of one shell or one
/// ecosystem file carry their environment once instead of 100 times.
pub fn take_shared<'a>(slots: impl Iterator<Item = &'a mut Env>) -> (Vec<Env>, Vec<u32>) {
    let mut envs: Vec<Env> = Vec::new();
    let mut seen: std::collections::HashMap<*const BTreeMap<String, String>, u32> =
        std::collections::HashMap::new();
    let mut env_of = Vec::new();
    for slot in slots {
        let env = std::mem::take(slot);
        let i = *seen.entry(std::sync::Arc::as_ptr(&env)).or_insert_with(|| {
            envs.push(env.clone());
            envs.len() as u32 - 1
        });
        env_of.push(i);
    }
    (envs, env_of)
}

/// The inverse of `take_shared`: each slot gets its environment back. Without indices
/// (a list written before environments were shared) the slots keep their own.
pub fn put_shared<'a>(
    slots: impl ExactSizeIterator<Item = &'a mut Env>,
    envs: &[Env],
    env_of: &[u32],
) -> std::result::Result<(), String> {
    if env_of.is_empty() {
        return Ok(());
    }
    if env_of.len() != slots.len() {
        return Err(format!(
            "{} environment indices for {} apps",
            env_of.len(),
            slots.len()
        ));
    }
    for (slot, &i) in slots.zip(env_of) {
        *slot = envs
            .get(i as usize)
            .ok_or_else(|| format!("environment {i} of {} is missing", envs.len()))?
            .clone();
    }
    Ok(())
}

fn no_vars(env: &Env) -> bool {
    env.is_empty()
}

/// See `AppSpec::vars`.
pub struct Vars<'a> {
    env: std::iter::Peekable<std::collections::btree_map::Iter<'a, String, String>>,
    extra: Option<(&'a str, &'static str)>,
}

impl<'a> Iterator for Vars<'a> {
    type Item = (&'a str, &'a str);
    fn next(&mut self) -> Option<(&'a str, &'a str)> {
        match (self.extra, self.env.peek()) {
            (Some((k, _)), Some((e, _))) if e.as_str() < k => {}
            (Some(x), _) => {
                self.extra = None;
                return Some(x);
            }
            (None, _) => {}
        }
        self.env.next().map(|(k, v)| (k.as_str(), v.as_str()))
    }
}

/// The variables pm2 sets for its apps on top of their environment (`God.js
/// injectVariables`); `ward env` shows them too.
pub fn pm2_vars(id: u32, spec: &AppSpec, home: &str) -> Vec<(String, String)> {
    let var = if spec.instance_var.is_empty() {
        INSTANCE_VAR
    } else {
        &spec.instance_var
    };
    let mut vars: Vec<(String, String)> = vec![
        ("pm_id".into(), id.to_string()),
        ("name".into(), spec.name.clone()),
        ("namespace".into(), spec.namespace.clone()),
        (var.to_string(), spec.instance.to_string()),
        ("WARD_HOME".into(), home.to_string()),
    ];
    // `name_var`'s variable, unless one of pm2's own (set over the environment) has its
    // name: an app called `name` gets name=name, as from pm2.
    if let Some((k, v)) = spec
        .name_var()
        .filter(|(k, _)| vars.iter().all(|(n, _)| n != k))
    {
        vars.push((k.to_string(), v.to_string()));
    }
    vars
}

/// `node`, `nodejs`, `/usr/bin/node`: a program whose file name says Node.
pub fn is_node_program(program: &str) -> bool {
    let base = Path::new(program)
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("");
    base == "node" || base == "nodejs"
}

/// pm2's table (`lib/API/interpreter.json`), with `.py` falling back to python3.
pub fn interpreter_for(script: &str, path_var: Option<&str>) -> Option<String> {
    let ext = Path::new(script).extension()?.to_str()?;
    let name = match ext {
        "sh" => "bash",
        "py" => {
            if find_in_path("python", path_var).is_some() {
                "python"
            } else {
                "python3"
            }
        }
        "rb" => "ruby",
        "coffee" => "coffee",
        "php" => "php",
        "pl" => "perl",
        "js" | "mjs" | "cjs" => "node",
        "ls" => "lsc",
        "ts" | "tsx" => "bun",
        _ => return None,
    };
    Some(name.to_string())
}

/// pm2's `renderApplicationName`: the file name without its extension.
pub fn default_name(script: &str) -> String {
    let p = Path::new(script);
    let stem = p.file_stem().or(p.file_name()).and_then(|s| s.to_str());
    stem.unwrap_or(script).to_string()
}

/// A name is used in log file names and as a target: it must not escape the logs folder nor
/// be mistaken for `all`. An all-digit name is pm2's too: as a target, a name wins over an
/// id (table.rs).
pub fn check_name(name: &str) -> Result<()> {
    let bad = if name.is_empty() {
        Some("it is empty")
    } else if name.contains('/') {
        Some("it contains '/'")
    } else if name.contains('\0') {
        Some("it contains a NUL byte")
    } else if name.chars().any(char::is_control) {
        // A newline would forge lines of ward.log; ESC would reach the terminal in `ls`.
        Some("it contains a control character (newline, tab, ESC...)")
    } else if name == "." || name == ".." {
        Some("it is a relative folder name")
    } else if name == "all" {
        Some("'all' names every app")
    } else if name.starts_with('-') {
        Some("it starts with '-' and would be taken for an option")
    } else if name.len() > 200 {
        Some("it is longer than 200 bytes")
    } else {
        None
    };
    match bad {
        Some(why) => Err(Error::new(format!("invalid app name {name:?}: {why}"))),
        None => Ok(()),
    }
}

/// pm2 sanitises a name for its log file names with `/[^a-zA-Z0-9.-]/ → -`.
pub fn log_stem(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect()
}

/// Two names that differ but share a log stem (`api v2` and `api-v2`, `服务` and `应用`)
/// would write, flush and rotate the same `logs/STEM-out.log` and pid file. pm2's file names
/// are kept, so the second such name is refused: the error names the app it clashes with.
pub fn check_stem_clash<'a>(name: &str, others: impl IntoIterator<Item = &'a str>) -> Result<()> {
    let stem = log_stem(name);
    for other in others {
        if other != name && log_stem(other) == stem {
            return Err(Error::new(format!(
                "invalid app name {name:?}: its log files would be those of app {other:?} \
                 (logs/{stem}-out.log); choose a name that differs in letters, digits, '.', '-' or '_'"
            )));
        }
    }
    Ok(())
}

pub fn find_in_path(word: &str, path_var: Option<&str>) -> Option<PathBuf> {
    let path_var = path_var?;
    for dir in path_var.split(':').filter(|d| !d.is_empty()) {
        let cand = Path::new(dir).join(word);
        if is_executable_file(&cand) {
            return Some(cand);
        }
    }
    None
}

pub fn is_executable_file(p: &Path) -> bool {
    match std::fs::metadata(p) {
        Ok(m) => m.is_file() && m.permissions().mode() & 0o111 != 0,
        Err(_) => false,
    }
}

/// pm2's command strings (Common.js:740-763): a script with a space that is no file, such
/// as `pm2 start "node -e '...'"` or `"cc hello.c; ./a.out"`, runs as `bash -c STRING`
/// (`sh -c` without bash). Returns the shell's path and its arguments.
pub fn command_string(
    word: &str,
    cwd: &Path,
    path_var: Option<&str>,
) -> Option<(String, Vec<String>)> {
    if !word.contains(' ') || cwd.join(word).exists() {
        return None;
    }
    let sh = find_in_path("bash", path_var)
        .or_else(|| find_in_path("sh", path_var))
        .unwrap_or_else(|| PathBuf::from("/bin/sh"));
    Some((
        sh.to_string_lossy().into_owned(),
        vec!["-c".into(), word.to_string()],
    ))
}

/// Turns the word given to `start` into the program to run.
/// Returns (absolute script path, interpreter) or why it cannot be run.
pub fn resolve_script(
    word: &str,
    cwd: &Path,
    interpreter: Option<&str>,
    path_var: Option<&str>,
) -> Result<(String, Option<String>)> {
    let candidate = if Path::new(word).is_absolute() {
        PathBuf::from(word)
    } else {
        cwd.join(word)
    };
    let explicit = match interpreter {
        Some("none") => Some(None),
        Some(i) => Some(Some(i.to_string())),
        None => None,
    };
    match std::fs::metadata(&candidate) {
        Ok(m) if m.is_dir() => Err(Error::new(format!(
            "script not found: {} is a folder",
            candidate.display()
        ))),
        Ok(m) => {
            let script = normalize(&candidate).to_string_lossy().into_owned();
            let interp = match explicit {
                Some(i) => i,
                None => interpreter_for(word, path_var),
            };
            if let Some(i) = &interp {
                check_interpreter(i, path_var)?;
            }
            if interp.is_none() && m.permissions().mode() & 0o111 == 0 {
                return Err(Error::new(format!(
                    "script not executable: {} (no interpreter is known for it; make it \
                     executable or pass --interpreter)",
                    script
                )));
            }
            Ok((script, interp))
        }
        Err(_) if !word.contains('/') => match find_in_path(word, path_var) {
            Some(found) => {
                let interp = explicit.unwrap_or(None);
                if let Some(i) = &interp {
                    check_interpreter(i, path_var)?;
                }
                Ok((found.to_string_lossy().into_owned(), interp))
            }
            None => Err(Error::new(format!(
                "script not found: {} (not a file, and no program of that name in PATH)",
                candidate.display()
            ))),
        },
        Err(e) => Err(Error::new(format!(
            "script not found: {}: {}",
            candidate.display(),
            crate::error::os(&e)
        ))),
    }
}

/// Refuses, before anything is registered, an interpreter that could not be executed:
/// the app would otherwise fail at spawn, after the request was accepted.
fn check_interpreter(interp: &str, path_var: Option<&str>) -> Result<()> {
    let found = if interp.contains('/') {
        is_executable_file(Path::new(interp))
    } else {
        find_in_path(interp, path_var).is_some()
    };
    match found {
        true => Ok(()),
        false => Err(Error::new(format!(
            "interpreter not found: {interp} (not an executable file{}); install it or \
             pass --interpreter",
            if interp.contains('/') { "" } else { " in PATH" }
        ))),
    }
}

/// Removes `.` and `..` components without touching the file system (symlinks stay as named).
pub fn normalize(p: &Path) -> PathBuf {
    use std::path::Component;
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// Parses a signal name or number: `SIGTERM`, `TERM`, `15`.
pub fn parse_signal(s: &str) -> Result<i32> {
    if let Ok(n) = s.parse::<i32>() {
        if nix::sys::signal::Signal::try_from(n).is_ok() {
            return Ok(n);
        }
    }
    let upper = s.to_ascii_uppercase();
    let full = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    full.parse::<nix::sys::signal::Signal>()
        .map(|sig| sig as i32)
        .map_err(|_| {
            Error::new(format!(
                "unknown signal {s:?} (try SIGTERM, SIGINT, SIGUSR2, …)"
            ))
        })
}

/// pm2's `max_memory_restart`: bytes, or a number with K, M or G (powers of 1024, as pm2
/// counts them); `300M`, `1.5G`, `512K`, `1048576`.
pub fn parse_memory(s: &str) -> Result<u64> {
    let t = s.trim();
    let bad = || {
        Error::new(format!(
            "invalid memory size {s:?}: expected bytes or a number with K, M or G (e.g. 300M)"
        ))
    };
    let upper = t.to_ascii_uppercase();
    let body = upper.strip_suffix('B').unwrap_or(&upper);
    let (num, mult) = match body.chars().last() {
        Some('K') => (&body[..body.len() - 1], 1u64 << 10),
        Some('M') => (&body[..body.len() - 1], 1 << 20),
        Some('G') => (&body[..body.len() - 1], 1 << 30),
        _ => (body, 1),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 || v * mult as f64 > u64::MAX as f64 / 2.0 {
        return Err(bad());
    }
    Ok((v * mult as f64) as u64)
}

/// pm2's `--watch-delay`: seconds (a float), or milliseconds with `ms` (`4`, `0.5`,
/// `4000ms`). Returns milliseconds.
pub fn parse_watch_delay(s: &str) -> Result<u64> {
    let t = s.trim();
    let bad = || {
        Error::new(format!(
            "invalid watch delay {s:?}: expected seconds (e.g. 1.5) or milliseconds with ms \
             (e.g. 1500ms)"
        ))
    };
    let (num, mult) = match t.strip_suffix("ms") {
        Some(n) => (n, 1.0),
        None => (t.strip_suffix('s').unwrap_or(t), 1000.0),
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || !(0.0..=1e9).contains(&v) {
        return Err(bad());
    }
    check_delay((v * mult).round() as u64, "--watch-delay")
}

pub fn signal_name(n: i32) -> String {
    match nix::sys::signal::Signal::try_from(n) {
        Ok(s) => s.as_str().to_string(),
        Err(_) => format!("signal {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `read_env` reads what `BTreeMap` reads, whatever came before, and shares an
    /// environment equal to the last one read.
    #[test]
    fn environments_read_as_maps_and_equal_ones_are_shared() {
        let texts = [
            r#"{}"#,
            r#"{"A":"1","B":"2"}"#,
            r#"{"A":"1","B":"2"}"#,
            r#"{"A":"1"}"#,
            r#"{"A":"1","B":"2","C":"3"}"#,
            r#"{"A":"1","B":"x"}"#,
            r#"{"B":"2","A":"1"}"#,
            r#"{"A":"1","A":"2","B":"2"}"#,
            r#"{"A":"1","B":"2","B":"3"}"#,
            r#"{"A\n":"\u00e9\"","B":"2"}"#,
            r#"{"A\n":"\u00e9\"","B":"2"}"#,
            r#"{}"#,
        ];
        let mut last: Option<Env> = None;
        for _ in 0..2 {
            for t in texts {
                let want: BTreeMap<String, String> = serde_json::from_str(t).unwrap();
                let spec: AppSpec = serde_json::from_str(&format!(r#"{{"env":{t}}}"#)).unwrap();
                assert_eq!(*spec.env, want, "{t}");
                // Through a generic value too (other readers than serde_json's text).
                let v: serde_json::Value =
                    serde_json::from_str(&format!(r#"{{"env":{t}}}"#)).unwrap();
                let spec2: AppSpec = serde_json::from_value(v).unwrap();
                assert_eq!(*spec2.env, want, "{t}");
                if let Some(l) = &last {
                    if **l == want {
                        assert!(std::sync::Arc::ptr_eq(l, &spec2.env), "{t}");
                    }
                }
                last = Some(spec2.env);
            }
        }
        let bad = serde_json::from_str::<AppSpec>(r#"{"env":{"A":1}}"#).unwrap_err();
        let map = serde_json::from_str::<BTreeMap<String, String>>(r#"{"A":1}"#).unwrap_err();
        assert_eq!(
            bad.to_string().split(" at ").next(),
            map.to_string().split(" at ").next()
        );
        assert!(serde_json::from_str::<AppSpec>(r#"{"env":null}"#).is_err());
    }

    #[test]
    fn names() {
        assert_eq!(default_name("/srv/app/api.js"), "api");
        assert_eq!(default_name("worker.py"), "worker");
        assert_eq!(default_name("server"), "server");
        assert!(check_name("api").is_ok());
        assert!(check_name("../x").is_err());
        assert!(check_name("/").is_err());
        assert!(check_name("a\0b").is_err());
        assert!(check_name("a\nb").is_err());
        assert!(check_name("a\x1b[31m").is_err());
        assert!(check_name("a\tb").is_err());
        assert!(check_name("a\u{9b}b").is_err());
        assert!(check_name("服务").is_ok());
        assert!(check_name("..").is_err());
        assert!(check_name("42").is_ok(), "pm2 allows all-digit names");
        assert!(check_name("all").is_err());
        assert!(check_name("").is_err());
        assert_eq!(log_stem("my app@1"), "my-app-1");
        assert!(check_stem_clash("api-v2", ["api v2"]).is_err());
        assert!(check_stem_clash("应用", ["web", "服务"]).is_err());
        assert!(check_stem_clash("api", ["api", "api2"]).is_ok());
    }

    #[test]
    fn interpreters() {
        assert_eq!(interpreter_for("a.sh", None).as_deref(), Some("bash"));
        assert_eq!(interpreter_for("a.py", None).as_deref(), Some("python3"));
        assert_eq!(interpreter_for("a.js", None).as_deref(), Some("node"));
        assert_eq!(interpreter_for("a.mjs", None).as_deref(), Some("node"));
        assert_eq!(interpreter_for("a.rb", None).as_deref(), Some("ruby"));
        assert_eq!(interpreter_for("a.pl", None).as_deref(), Some("perl"));
        assert_eq!(interpreter_for("a.php", None).as_deref(), Some("php"));
        assert_eq!(interpreter_for("a.coffee", None).as_deref(), Some("coffee"));
        assert_eq!(interpreter_for("server", None), None);
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("SIGTERM").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("term").unwrap(), libc::SIGTERM);
        assert_eq!(parse_signal("9").unwrap(), libc::SIGKILL);
        assert!(parse_signal("SIGNOPE").is_err());
        assert_eq!(signal_name(libc::SIGINT), "SIGINT");
    }

    #[test]
    fn memory_sizes() {
        assert_eq!(parse_memory("300M").unwrap(), 300 << 20);
        assert_eq!(parse_memory("300m").unwrap(), 300 << 20);
        assert_eq!(parse_memory("1G").unwrap(), 1 << 30);
        assert_eq!(parse_memory("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_memory("512K").unwrap(), 512 << 10);
        assert_eq!(parse_memory("200MB").unwrap(), 200 << 20);
        assert_eq!(parse_memory("1048576").unwrap(), 1 << 20);
        for bad in ["", "M", "-1M", "0", "12X", "abc", "1e30G"] {
            assert!(parse_memory(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn watch_delays() {
        assert_eq!(parse_watch_delay("4").unwrap(), 4000);
        assert_eq!(parse_watch_delay("0.5").unwrap(), 500);
        assert_eq!(parse_watch_delay("4000ms").unwrap(), 4000);
        assert_eq!(parse_watch_delay("2s").unwrap(), 2000);
        assert_eq!(parse_watch_delay("0").unwrap(), 0);
        assert!(parse_watch_delay("-1").is_err());
        assert!(parse_watch_delay("soon").is_err());
    }

    fn env_of(pairs: &[(&str, &str)]) -> Env {
        Env::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    /// An ecosystem app's variables have `NAME={}` in key order, unless its environment
    /// sets NAME; pm2's own variables (set over it) win over the mark.
    #[test]
    fn the_name_var_mark_is_a_variable_in_its_place() {
        let mut spec = AppSpec {
            name: "b".into(),
            env: env_of(&[("a", "1"), ("c", "3")]),
            ..AppSpec::default()
        };
        let vars = |s: &AppSpec| {
            s.vars()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
        };
        assert_eq!(vars(&spec), ["a=1", "c=3"], "no mark, no variable");
        spec.name_var = true;
        assert_eq!(vars(&spec), ["a=1", "b={}", "c=3"]);
        spec.name = "0".into();
        assert_eq!(vars(&spec), ["0={}", "a=1", "c=3"]);
        spec.name = "z".into();
        assert_eq!(vars(&spec), ["a=1", "c=3", "z={}"]);
        spec.name = "c".into();
        assert_eq!(
            vars(&spec),
            ["a=1", "c=3"],
            "the environment's own value stays"
        );
        assert_eq!(spec.name_var(), None);
        spec.name = "q".into();
        let pm2 = pm2_vars(1, &spec, "/h");
        assert!(pm2.contains(&("q".into(), "{}".into())), "{pm2:?}");
        spec.name = "name".into();
        let pm2 = pm2_vars(1, &spec, "/h");
        let named: Vec<_> = pm2.iter().filter(|(k, _)| k == "name").collect();
        assert_eq!(
            named,
            [&("name".to_string(), "name".to_string())],
            "pm2's `name` wins"
        );
    }

    /// A list's environments are written once each, and read back to the same apps,
    /// shared again; broken indices are an error, not a panic.
    #[test]
    fn shared_environments_go_out_once_and_come_back() {
        let one = env_of(&[("A", "1")]);
        let two = env_of(&[("B", "2")]);
        let mut slots = [one.clone(), two.clone(), one.clone(), Env::default()];
        let (envs, of) = take_shared(slots.iter_mut());
        assert_eq!(envs.len(), 3, "one, two and the empty one");
        assert_eq!(of, [0, 1, 0, 2]);
        assert!(slots.iter().all(|e| e.is_empty()), "taken out");
        put_shared(slots.iter_mut(), &envs, &of).unwrap();
        assert_eq!(slots[0], one);
        assert_eq!(slots[1], two);
        assert!(std::sync::Arc::ptr_eq(&slots[0], &slots[2]), "shared again");
        assert!(slots[3].is_empty());
        // A list written before sharing: no indices, every slot keeps its own.
        put_shared(slots.iter_mut(), &[], &[]).unwrap();
        assert_eq!(slots[1], two);
        assert!(
            put_shared(slots.iter_mut(), &envs, &[0, 1]).is_err(),
            "too few"
        );
        assert!(
            put_shared(slots.iter_mut(), &envs, &[0, 1, 0, 9]).is_err(),
            "no env 9"
        );
    }
}
