//! pm2's record of one app: the object `pm2 jlist` prints and `pm2 save` writes to
//! dump.pm2 (`pm2_env` with its keys, `monit`, `pid`). A format, like pm2dump.rs reads:
//! the client prints it, the daemon saves it.
//!
//! One definition, two outputs. `settings` lists what ward puts in `pm2_env`, `pm2_env`
//! merges the app's environment under it, and the tables below give pm2's key order.
//! `entry` turns that into a JSON value (the daemon's `save`); `write_list` writes the
//! text of `jlist` straight from it, keys in pm2's order. Building a value per app and
//! then a reordered tree of it was 70% of `ward jlist`'s time with 100 apps.
//!
//! Pure: apps in, a JSON value or text out.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::protocol::AppView;
use crate::spec::jsontext::{
    write_array, write_key, write_num, write_object, write_str, write_value,
};

/// pm2's order for an entry of `jlist` and for its `pm2_env` (what `pm2 jlist` prints):
/// keys pm2 knows come in its order, ward's own keys after them, the app's environment
/// variables (which pm2 copies into `pm2_env`) next, and pm2's runtime keys last.
///
/// In full, `pm2_env`'s keys go: HEAD in its order; every `env_*` key by name; the keys
/// none of the tables names and no variable of the environment names, by name; MIDDLE;
/// the other keys that name a variable (or the app, which `env` holds too), by name; TAIL.
/// An entry's keys go in PM2_ENTRY's order, any other by name after them.
pub const PM2_ENTRY: &[&str] = &["pid", "name", "pm2_env", "pm_id", "monit"];
pub const PM2_ENV_HEAD: &[&str] = &[
    "name",
    "filter_env",
    "namespace",
    "env",
    "instances",
    "merge_logs",
    "vizion",
    "autostart",
    "autorestart",
    "watch",
    "append_env_to_name",
    "instance_var",
    "pmx",
    "automation",
    "treekill",
    "username",
    "windowsHide",
    "kill_retry_time",
];
pub const PM2_ENV_MIDDLE: &[&str] = &[
    "node_args",
    "pm_exec_path",
    "pm_cwd",
    "exec_interpreter",
    "exec_mode",
    "pm_out_log_path",
    "pm_err_log_path",
    "pm_pid_path",
    "km_link",
    "vizion_running",
    "NODE_APP_INSTANCE",
];
pub const PM2_ENV_TAIL: &[&str] = &[
    "status",
    "pm_uptime",
    "axm_actions",
    "axm_monitor",
    "axm_options",
    "axm_dynamic",
    "created_at",
    "pm_id",
    "restart_time",
    "unstable_restarts",
    "_pm2_version",
    "version",
    "node_version",
];

/// A key's place in `pm2_env`: HEAD's keys take 0.., MIDDLE's `MIDDLE`.., TAIL's `TAIL`..
/// (the tables are shorter than 64); the keys of one group (`NAMED`, `OTHER`, `VAR`) go
/// by name.
const NAMED: u64 = 64;
const OTHER: u64 = 128;
const MIDDLE: u64 = 192;
const VAR: u64 = 256;
const TAIL: u64 = 320;

/// A value in the record, borrowed from the app where it can be: the text is written from
/// these without copying the app's strings.
enum Val<'a> {
    Null,
    Bool(bool),
    U64(u64),
    I64(i64),
    F64(f64),
    Str(&'a str),
    Text(String),
    Strs(&'a [String]),
    Ints(&'a [i32]),
    /// A map of strings: an `env_<name>` block.
    Vars(&'a BTreeMap<String, String>),
    /// `env`: the environment, with `{}` under the app's name unless a variable has it.
    Env(&'a crate::spec::config::AppSpec),
    /// The value of the environment's variable number `.1`, copied into `pm2_env`.
    Var(&'a str, usize),
    Map(&'a Map<String, Value>),
    List(&'a [Value]),
    Json(Value),
    /// An object of fixed keys. A `Value` keeps its keys sorted, so they are written sorted
    /// whatever the order here.
    Obj(Vec<(&'static str, Val<'a>)>),
}

/// How many keys `settings` has.
const SETTINGS: usize = 58;

/// ward's keys of `pm2_env`, each with this app's value, or none where pm2 leaves the key
/// out. They replace the app's variables of the same names (pm2 merges the app's settings
/// over its environment); the `env_<name>` blocks come from `env_blocks`, beside them.
///
/// Always the same keys in the same places, so that `plan` sorts them once for all apps.
/// None may start with `env_` (a block's key could then be one of them).
fn settings<'a>(
    v: &'a AppView,
    home: &str,
    user: &'a str,
) -> [(&'static str, Option<Val<'a>>); SETTINGS] {
    use Val::*;
    let a = &v.app;
    let s = &a.spec;
    let r = &a.run;
    let pid_path = if s.pid_file.is_empty() {
        let stem = crate::spec::config::log_stem(&s.name);
        Text(format!("{home}/pids/{stem}-{}.pid", a.id))
    } else {
        Str(&s.pid_file)
    };
    // pm2 shows `true` for the app's own folder, else the paths, `false` when off.
    let watch = if s.watch.is_empty() {
        Bool(false)
    } else if s.watch.len() == 1 && s.watch[0] == s.cwd {
        Bool(true)
    } else {
        Strs(&s.watch)
    };
    // ward's own: the last exits with their reasons (`ward describe` shows them). Through
    // a value, as serde writes them: its keys come sorted, as pm2's tree had them.
    let exits = if r.exits.is_empty() {
        List(&[])
    } else {
        Json(serde_json::to_value(&r.exits).unwrap_or_default())
    };
    // What pm2's in-app agent reports for a Node app; pm2 names its own package there.
    let axm_options = if s.interpreter_name().ends_with("node") {
        node_axm_options(&s.name)
    } else {
        Obj(Vec::new())
    };
    // pm2 keeps the code of the last exit (`exit_code`) once the app has exited.
    let exit_code = match r.exits.back().map(|e| e.exit) {
        Some(crate::lifecycle::Exit::Code(c)) => Some(I64(c.into())),
        _ => None,
    };
    [
        ("name", Some(Str(&s.name))),
        ("namespace", Some(Str(&s.namespace))),
        ("pm_id", Some(U64(a.id.into()))),
        ("status", Some(Str(r.status.as_str()))),
        ("restart_time", Some(U64(r.restarts.into()))),
        ("unstable_restarts", Some(U64(r.unstable_restarts.into()))),
        ("pm_uptime", Some(U64(r.pm_uptime))),
        ("created_at", Some(U64(r.created_at))),
        ("pm_exec_path", Some(Str(&s.script))),
        ("pm_cwd", Some(Str(&s.cwd))),
        ("exec_interpreter", Some(Str(s.interpreter_name()))),
        ("interpreter", Some(Str(s.interpreter_name()))),
        ("node_args", Some(Strs(&s.interpreter_args))),
        ("args", Some(Strs(&s.args))),
        ("pm_out_log_path", Some(Str(&s.out_file))),
        ("pm_err_log_path", Some(Str(&s.error_file))),
        ("pm_pid_path", Some(pid_path)),
        ("exec_mode", Some(Str(s.exec_mode()))),
        ("instances", Some(U64(s.instances.into()))),
        ("instance_var", Some(Str(&s.instance_var))),
        ("NODE_APP_INSTANCE", Some(U64(s.instance.into()))),
        ("merge_logs", Some(Bool(s.merge_logs))),
        ("autorestart", Some(Bool(s.autorestart))),
        ("autostart", Some(Bool(s.autostart))),
        ("max_restarts", Some(U64(s.max_restarts.into()))),
        ("min_uptime", Some(U64(s.min_uptime))),
        ("kill_timeout", Some(U64(s.kill_timeout))),
        ("restart_delay", Some(U64(s.restart_delay))),
        (
            "exp_backoff_restart_delay",
            Some(U64(s.exp_backoff_restart_delay)),
        ),
        ("stop_exit_codes", Some(Ints(&s.stop_exit_codes))),
        ("treekill", Some(Bool(s.treekill))),
        ("username", Some(Str(user))),
        ("version", Some(Str("N/A"))),
        // pm2 files the app's own settings under its name in `env` (API.js:871-872): an
        // empty object for a command-line start; an ecosystem start carries `NAME: '{}'`
        // in its environment already (spec/ecosystem.rs), so it shows in both places.
        ("env", Some(Env(s))),
        ("watch", Some(watch)),
        ("ignore_watch", Some(Strs(&s.ignore_watch))),
        ("watch_delay", Some(U64(s.watch_delay))),
        (
            "max_memory_restart",
            Some(s.max_memory_restart.map_or(Null, U64)),
        ),
        (
            "cron_restart",
            Some(s.cron_restart.as_deref().map_or(Null, Str)),
        ),
        (
            "kill_signal",
            Some(Text(crate::spec::config::signal_name(s.kill_signal))),
        ),
        ("exits", Some(exits)),
        // Fields pm2's dashboards read; axm_monitor and axm_actions are what the app
        // reported with @pm2/io over its IPC channel.
        ("vizion_running", Some(Bool(false))),
        // pm2's defaults (API/schema.json); ward acts on none of them.
        ("vizion", Some(Bool(true))),
        ("pmx", Some(Bool(true))),
        ("automation", Some(Bool(true))),
        ("km_link", Some(Bool(false))),
        ("windowsHide", Some(Bool(true))),
        ("kill_retry_time", Some(U64(100))),
        ("filter_env", Some(Strs(&[]))),
        ("axm_actions", Some(List(&r.axm_actions))),
        ("axm_monitor", Some(Map(&r.axm_monitor))),
        ("axm_options", Some(axm_options)),
        ("axm_dynamic", Some(Obj(Vec::new()))),
        ("uid", s.uid.map(|x| U64(x.into()))),
        ("gid", s.gid.map(|x| U64(x.into()))),
        ("increment_var", s.increment_var.as_deref().map(Str)),
        // Only with `-l` / `log_file`, as pm2 (Common.js:203-232).
        (
            "pm_log_path",
            (!s.log_file.is_empty()).then_some(Str(&s.log_file)),
        ),
        ("exit_code", exit_code),
    ]
}

/// pm2's `axm_options` of a Node app, as its agent (@pm2/io) reports them.
fn node_axm_options(name: &str) -> Val<'_> {
    use Val::*;
    Obj(vec![
        ("error", Bool(true)),
        ("heapdump", Bool(true)),
        ("feature.profiler.heapsnapshot", Bool(false)),
        ("feature.profiler.heapsampling", Bool(true)),
        ("feature.profiler.cpu_js", Bool(true)),
        ("latency", Bool(true)),
        ("catchExceptions", Bool(true)),
        ("profiling", Bool(true)),
        (
            "metrics",
            Obj(vec![
                ("v8", Bool(true)),
                ("network", Bool(false)),
                ("eventLoop", Bool(true)),
                ("runtime", Bool(true)),
                ("http", Bool(true)),
            ]),
        ),
        ("standalone", Bool(false)),
        (
            "tracing",
            Obj(vec![("enabled", Bool(false)), ("outbound", Bool(false))]),
        ),
        ("module_conf", Obj(Vec::new())),
        (
            "apm",
            Obj(vec![("type", Str("node")), ("version", Str("8.0.0"))]),
        ),
        ("module_name", Str(name)),
        ("module_version", Str(env!("CARGO_PKG_VERSION"))),
    ])
}

/// A key `pm2_env` may hold besides the app's variables and blocks: one of `settings`, or
/// one of pm2's tables (a variable may be named as one that ward does not set).
struct Slot {
    key: &'static str,
    /// Its place in `settings`.
    setting: Option<usize>,
    /// Its place in pm2's order, for a key of the tables.
    rank: Option<u64>,
}

/// The slots in key order, the order in which `pm2_env` merges them with the app's
/// variables and blocks. Made once, from the keys `settings` always puts in the same places.
fn plan(keys: impl Iterator<Item = &'static str>) -> &'static [Slot] {
    static PLAN: std::sync::OnceLock<Vec<Slot>> = std::sync::OnceLock::new();
    PLAN.get_or_init(|| {
        let mut slots: Vec<Slot> = keys
            .enumerate()
            .map(|(i, key)| Slot {
                key,
                setting: Some(i),
                rank: None,
            })
            .collect();
        for (base, table) in [
            (0, PM2_ENV_HEAD),
            (MIDDLE, PM2_ENV_MIDDLE),
            (TAIL, PM2_ENV_TAIL),
        ] {
            for (i, key) in table.iter().enumerate() {
                let rank = Some(base + i as u64);
                match slots.iter_mut().find(|s| s.key == *key) {
                    Some(s) => s.rank = rank,
                    None => slots.push(Slot {
                        key,
                        setting: None,
                        rank,
                    }),
                }
            }
        }
        slots.sort_unstable_by_key(|s| s.key);
        slots
    })
}

/// One key of `pm2_env` with its value and its place in pm2's order.
struct Key<'a> {
    name: Cow<'a, str>,
    val: Val<'a>,
    rank: u64,
}

/// `pm2_env` whole, in key order, appended to `out`: the app's variables, its `env_<name>`
/// blocks over them and ward's settings over both, each with its place in pm2's order:
/// HEAD's keys, then every `env_*` key, then the keys no table names and no variable names,
/// MIDDLE's keys, the other keys that name a variable (or the app, which `env` holds too),
/// and TAIL's keys.
fn pm2_env<'a>(v: &'a AppView, home: &str, user: &'a str, out: &mut Vec<Key<'a>>) {
    let s = &v.app.spec;
    let mut set = settings(v, home, user);
    let plan = plan(set.iter().map(|(k, _)| *k));
    // Three lists in key order, merged in one pass.
    let mut vars = s.vars().enumerate().peekable();
    let mut blocks = s
        .env_blocks
        .iter()
        .map(|(name, b)| (format!("env_{name}"), b))
        .peekable();
    for slot in plan {
        blocks_and_vars(&mut blocks, &mut vars, Some(slot.key), out);
        let var = vars.next_if(|(_, (k, _))| *k == slot.key);
        let own = slot.setting.and_then(|i| set[i].1.take());
        match (own, var) {
            (Some(val), var) => {
                let named = var.is_some() || slot.key == s.name;
                let rank = slot.rank.unwrap_or(if named { VAR } else { OTHER });
                out.push(Key {
                    name: Cow::Borrowed(slot.key),
                    val,
                    rank,
                });
            }
            (None, Some((i, (k, x)))) => out.push(Key {
                name: Cow::Borrowed(k),
                val: Val::Var(x, i),
                rank: slot.rank.unwrap_or(VAR),
            }),
            (None, None) => {}
        }
    }
    blocks_and_vars(&mut blocks, &mut vars, None, out);
}

type Vars<'a> = std::iter::Peekable<std::iter::Enumerate<crate::spec::config::Vars<'a>>>;

/// The blocks and variables before `until` (all that are left without it), in key order;
/// a block replaces the variable of its name.
fn blocks_and_vars<'a, I>(
    blocks: &mut std::iter::Peekable<I>,
    vars: &mut Vars<'a>,
    until: Option<&str>,
    out: &mut Vec<Key<'a>>,
) where
    I: Iterator<Item = (String, &'a BTreeMap<String, String>)>,
{
    let before = |k: &str| until.is_none_or(|u| k < u);
    loop {
        let b = blocks.peek().map(|(k, _)| k.as_str()).filter(|k| before(k));
        let x = vars.peek().map(|(_, (k, _))| *k).filter(|k| before(k));
        match (b, x) {
            (None, None) => return,
            (Some(b), x) if x.is_none_or(|x| b <= x) => {
                if x == Some(b) {
                    vars.next();
                }
                if let Some((k, block)) = blocks.next() {
                    out.push(Key {
                        name: Cow::Owned(k),
                        val: Val::Vars(block),
                        rank: NAMED,
                    });
                }
            }
            _ => {
                if let Some((i, (k, x))) = vars.next() {
                    let rank = if k.starts_with("env_") { NAMED } else { VAR };
                    out.push(Key {
                        name: Cow::Borrowed(k),
                        val: Val::Var(x, i),
                        rank,
                    });
                }
            }
        }
    }
}

/// One app as pm2's `jlist` shows it (`ActionMethods.js getMonitorData`), as a value
/// (its keys sorted, as every `Value` here keeps them).
pub fn entry(v: &AppView, home: &str, user: &str) -> Value {
    let mut keys = Vec::new();
    pm2_env(v, home, user, &mut keys);
    let pm2_env: Map<String, Value> = keys
        .into_iter()
        .map(|k| (k.name.into_owned(), k.val.into_value()))
        .collect();
    let mut top: Map<String, Value> = top(v)
        .into_iter()
        .map(|(k, x)| (k.to_string(), x.into_value()))
        .collect();
    top.insert("pm2_env".into(), Value::Object(pm2_env));
    Value::Object(top)
}

/// The entry's keys but `pm2_env`.
fn top(v: &AppView) -> [(&'static str, Val<'_>); 4] {
    use Val::*;
    [
        ("pid", U64(v.app.run.pid.unwrap_or(0).into())),
        ("name", Str(&v.app.spec.name)),
        ("pm_id", U64(v.app.id.into())),
        // In key order: the writer need not sort them.
        (
            "monit",
            Obj(vec![("cpu", F64(v.cpu)), ("memory", U64(v.memory))]),
        ),
    ]
}

/// `jlist`'s text for these apps, appended to `out`: the entries `entry` makes, keys in
/// pm2's order (what `JSON.stringify` of pm2's list prints).
pub fn write_list(apps: &[AppView], home: &str, user: &str, out: &mut String) {
    out.reserve(size_hint(apps));
    write_list_in_parts(apps, home, user, out, usize::MAX, &mut |_| {});
}

/// `write_list`, handing `part` the text whenever it holds more than `part_len` bytes (at
/// the end of an app) and at the end; `part` takes what it wants out of it. `jlist` of
/// 100 apps is 1.3 MB under `cargo run`: written out 64 kB at a time, it touches a tenth
/// of the memory (each new page costs a fault).
pub fn write_list_in_parts(
    apps: &[AppView],
    home: &str,
    user: &str,
    out: &mut String,
    part_len: usize,
    part: &mut dyn FnMut(&mut String),
) {
    let mut w = Writer {
        keys: Vec::new(),
        order: Vec::new(),
        env: EnvText::default(),
    };
    out.push('[');
    for (i, v) in apps.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        w.entry(v, home, user, out);
        if out.len() > part_len {
            part(out);
        }
    }
    out.push(']');
    part(out);
}

/// About the length of `write_list`'s text, so that it is written into one allocation: the
/// environment twice, and some 2 kB of settings per app (and room for a newline after).
fn size_hint(apps: &[AppView]) -> usize {
    apps.iter()
        .map(|v| {
            let env: usize = v
                .app
                .spec
                .env
                .iter()
                .map(|(k, x)| k.len() + x.len() + 6)
                .sum();
            2 * env + 2048 + 2 * v.app.spec.name.len()
        })
        .sum::<usize>()
        + 16
}

/// What `write_list` keeps from app to app: room for the keys of one `pm2_env` and their
/// order, and the text of the last environment written.
struct Writer<'a> {
    keys: Vec<Key<'a>>,
    order: Vec<u32>,
    env: EnvText<'a>,
}

impl<'a> Writer<'a> {
    fn entry(&mut self, v: &'a AppView, home: &str, user: &'a str, out: &mut String) {
        let top = top(v);
        out.push('{');
        let mut first = true;
        for k in PM2_ENTRY {
            if *k == "pm2_env" {
                write_key(k, &mut first, out);
                self.pm2_env(v, home, user, out);
            } else if let Some((_, x)) = top.iter().find(|(t, _)| t == k) {
                write_key(k, &mut first, out);
                x.write(out);
            }
        }
        // Any key pm2's table does not name goes after its keys, by name (none today).
        let mut rest: Vec<&(&str, Val)> =
            top.iter().filter(|(t, _)| !PM2_ENTRY.contains(t)).collect();
        rest.sort_by_key(|(t, _)| *t);
        for (k, x) in rest {
            write_key(k, &mut first, out);
            x.write(out);
        }
        out.push('}');
    }

    fn pm2_env(&mut self, v: &'a AppView, home: &str, user: &'a str, out: &mut String) {
        self.keys.clear();
        pm2_env(v, home, user, &mut self.keys);
        self.env.load(&v.app.spec);
        order(&self.keys, &mut self.order);
        out.push('{');
        for (n, &i) in self.order.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            let k = &self.keys[i as usize];
            match &k.val {
                // Copied whole, key with value, as escaped once for the environment.
                Val::Var(_, i) => out.push_str(self.env.pair(*i)),
                Val::Env(s) => {
                    let name = &s.name;
                    write_str(&k.name, out);
                    out.push(':');
                    self.env.write_with(name, out);
                }
                x => {
                    write_str(&k.name, out);
                    out.push(':');
                    x.write(out);
                }
            }
        }
        out.push('}');
    }
}

/// Ranks are below this.
const RANKS: usize = TAIL as usize + 64;
const _: () = assert!(
    PM2_ENV_HEAD.len() < 64 && PM2_ENV_MIDDLE.len() < 64 && PM2_ENV_TAIL.len() < 64,
    "a table's ranks would run into the next group's"
);

/// Positions of `keys` (in key order) in the order they are written, into `out`: by rank,
/// and keys of one rank in key order. Counted into place: one pass, no comparisons.
fn order(keys: &[Key], out: &mut Vec<u32>) {
    let mut start = [0u32; RANKS + 1];
    for k in keys {
        start[k.rank as usize + 1] += 1;
    }
    for r in 0..RANKS {
        start[r + 1] += start[r];
    }
    out.clear();
    out.resize(keys.len(), 0);
    for (i, k) in keys.iter().enumerate() {
        let at = &mut start[k.rank as usize];
        out[*at as usize] = i as u32;
        *at += 1;
    }
}

/// An environment as JSON text, `"NAME":"value"` by `"NAME":"value"` joined by commas:
/// escaped once, then copied into `env` and into `pm2_env`, and for the next app too when
/// it shares the environment (apps started from one shell do, see config::Env). The
/// variables the next app's environment has alike (apps of one ecosystem file differ in
/// their names only) are copied from this text rather than escaped again.
#[derive(Default)]
struct EnvText<'a> {
    /// The environment and the name of `name_var`'s variable (config::AppSpec::vars).
    of: Option<(&'a crate::spec::config::Env, Option<&'a str>)>,
    text: String,
    /// Where each variable's pair ends in `text`.
    ends: Vec<usize>,
    names: Vec<&'a str>,
    values: Vec<&'a str>,
    /// The text of the environment before, while the next is made from it.
    before: EnvTextBefore<'a>,
}

#[derive(Default)]
struct EnvTextBefore<'a> {
    text: String,
    ends: Vec<usize>,
    names: Vec<&'a str>,
    values: Vec<&'a str>,
}

impl<'a> EnvText<'a> {
    fn load(&mut self, spec: &'a crate::spec::config::AppSpec) {
        let extra = spec.name_var().map(|(k, _)| k);
        if self
            .of
            .is_some_and(|(of, x)| std::sync::Arc::ptr_eq(of, &spec.env) && x == extra)
        {
            return;
        }
        self.of = Some((&spec.env, extra));
        let b = &mut self.before;
        std::mem::swap(&mut self.text, &mut b.text);
        std::mem::swap(&mut self.ends, &mut b.ends);
        std::mem::swap(&mut self.names, &mut b.names);
        std::mem::swap(&mut self.values, &mut b.values);
        self.text.clear();
        self.ends.clear();
        self.names.clear();
        self.values.clear();
        // Both in key order: one walk finds the variables of the environment before. The
        // apps of one ecosystem file share one environment and differ only in their
        // `NAME={}` variable: their other variables are the very same strings, and
        // comparing addresses first spares comparing the bytes (musl's memcmp goes one
        // byte at a time).
        let same = |a: &str, b: &str| std::ptr::eq(a, b) || a == b;
        let mut j = 0;
        for (k, x) in spec.vars() {
            if !self.text.is_empty() {
                self.text.push(',');
            }
            while j < b.names.len() && !std::ptr::eq(b.names[j], k) && b.names[j] < k {
                j += 1;
            }
            if j < b.names.len() && same(b.names[j], k) && same(b.values[j], x) {
                let start = if j == 0 { 0 } else { b.ends[j - 1] + 1 };
                self.text.push_str(&b.text[start..b.ends[j]]);
            } else {
                write_str(k, &mut self.text);
                self.text.push(':');
                write_str(x, &mut self.text);
            }
            self.ends.push(self.text.len());
            self.names.push(k);
            self.values.push(x);
        }
    }

    fn start(&self, i: usize) -> usize {
        if i == 0 { 0 } else { self.ends[i - 1] + 1 }
    }

    /// Variable `i`'s `"NAME":"value"`.
    fn pair(&self, i: usize) -> &str {
        &self.text[self.start(i)..self.ends[i]]
    }

    /// The `env` object: the variables, and `{}` under `name` in its place unless one of
    /// them has that name.
    fn write_with(&self, name: &str, out: &mut String) {
        out.push('{');
        match self.names.binary_search(&name) {
            Ok(_) => out.push_str(&self.text),
            Err(at) => {
                if at > 0 {
                    out.push_str(&self.text[..self.ends[at - 1]]);
                    out.push(',');
                }
                write_str(name, out);
                out.push_str(":{}");
                if at < self.names.len() {
                    out.push(',');
                    out.push_str(&self.text[self.start(at)..]);
                }
            }
        }
        out.push('}');
    }
}

impl Val<'_> {
    fn into_value(self) -> Value {
        match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::U64(n) => Value::from(n),
            Val::I64(n) => Value::from(n),
            // Not a number (NaN, infinite) is null, as serde_json makes it.
            Val::F64(n) => Value::from(n),
            Val::Str(s) | Val::Var(s, _) => Value::String(s.to_string()),
            Val::Text(s) => Value::String(s),
            Val::Strs(a) => Value::Array(a.iter().map(|s| Value::String(s.clone())).collect()),
            Val::Ints(a) => Value::Array(a.iter().map(|n| Value::from(*n)).collect()),
            Val::Vars(m) => Value::Object(
                m.iter()
                    .map(|(k, x)| (k.clone(), Value::String(x.clone())))
                    .collect(),
            ),
            Val::Env(s) => {
                let mut o: Map<String, Value> = s
                    .vars()
                    .map(|(k, x)| (k.to_string(), Value::String(x.to_string())))
                    .collect();
                if !o.contains_key(&s.name) {
                    o.insert(s.name.clone(), Value::Object(Map::new()));
                }
                Value::Object(o)
            }
            Val::Map(m) => Value::Object(m.clone()),
            Val::List(a) => Value::Array(a.to_vec()),
            Val::Json(v) => v,
            Val::Obj(o) => Value::Object(
                o.into_iter()
                    .map(|(k, x)| (k.to_string(), x.into_value()))
                    .collect(),
            ),
        }
    }

    /// The JSON text of `into_value`'s value, keys in its (sorted) order.
    fn write(&self, out: &mut String) {
        match self {
            Val::Null => out.push_str("null"),
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::U64(n) => write_num(*n as f64, out),
            Val::I64(n) => write_num(*n as f64, out),
            Val::F64(n) if n.is_finite() => write_num(*n, out),
            Val::F64(_) => out.push_str("null"),
            Val::Str(s) | Val::Var(s, _) => write_str(s, out),
            Val::Text(s) => write_str(s, out),
            Val::Strs(a) => write_array(a.iter(), out, |s, out| write_str(s, out)),
            Val::Ints(a) => write_array(a.iter(), out, |n, out| write_num(*n as f64, out)),
            Val::Vars(m) => write_object(m.iter(), out, |s, out| write_str(s, out)),
            Val::Env(s) => {
                let name = s.name.as_str();
                out.push('{');
                let mut first = true;
                let mut named = s.name_var().is_some() || s.env.contains_key(name);
                for (k, x) in s.vars() {
                    if !named && k > name {
                        write_key(name, &mut first, out);
                        out.push_str("{}");
                        named = true;
                    }
                    write_key(k, &mut first, out);
                    write_str(x, out);
                }
                if !named {
                    write_key(name, &mut first, out);
                    out.push_str("{}");
                }
                out.push('}');
            }
            Val::Map(m) => write_object(m.iter(), out, write_value),
            Val::List(a) => write_array(a.iter(), out, write_value),
            Val::Json(v) => write_value(v, out),
            Val::Obj(o) => {
                if o.is_sorted_by(|a, b| a.0 <= b.0) {
                    write_object(o.iter().map(|(k, x)| (k, x)), out, |x, out| x.write(out));
                } else {
                    let mut sorted: Vec<&(&str, Val)> = o.iter().collect();
                    sorted.sort_by_key(|(k, _)| *k);
                    write_object(sorted.into_iter().map(|(k, x)| (k, x)), out, |x, out| {
                        x.write(out)
                    });
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    //! The record as ward built it before `settings` (a `Value` per app, through `json!`),
    //! kept to hold the new code to it, and apps of every shape to do it with, also for
    //! client/inspect.rs, which holds `write_list` to the old way of writing the text.

    use std::collections::{BTreeMap, VecDeque};

    use serde_json::{Map, Value, json};

    use crate::lifecycle::{Exit, ExitRecord, Reason, Run, Status};
    use crate::protocol::AppView;
    use crate::spec::config::AppSpec;
    use crate::table::App;

    use super::{SETTINGS, entry, settings};

    /// One app as pm2's `jlist` shows it (`ActionMethods.js getMonitorData`).
    pub(crate) fn legacy(v: &AppView, home: &str, user: &str) -> Value {
        let a = &v.app;
        let s = &a.spec;
        let r = &a.run;
        let mut env = Map::new();
        let mut pm2_env = Map::new();
        for (k, val) in s.vars() {
            env.insert(k.to_string(), Value::String(val.to_string()));
            pm2_env.insert(k.to_string(), Value::String(val.to_string()));
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
            pm2_env.insert("axm_options".into(), legacy_axm_options(&s.name));
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
    fn legacy_axm_options(name: &str) -> Value {
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

    /// xorshift64*: the same apps on every run, no crate needed.
    pub(crate) struct Rng(u64);

    impl Rng {
        pub(crate) fn new(seed: u64) -> Rng {
            Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
        }
        pub(crate) fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
        fn pick<T: Clone>(&mut self, xs: &[T]) -> T {
            xs[self.below(xs.len())].clone()
        }
        fn chance(&mut self, percent: u64) -> bool {
            self.next() % 100 < percent
        }
    }

    /// Names that collide with pm2's keys and ward's, start with `env_`, look like array
    /// indices, or need escaping.
    const NAMES: &[&str] = &[
        "PATH",
        "HOME",
        "name",
        "status",
        "env",
        "env_prod",
        "env_",
        "env_x",
        "envy",
        "NODE_APP_INSTANCE",
        "version",
        "args",
        "exits",
        "watch",
        "append_env_to_name",
        "_pm2_version",
        "node_version",
        "axm_options",
        "axm_monitor",
        "pm_id",
        "pid",
        "uid",
        "gid",
        "exit_code",
        "pm_log_path",
        "increment_var",
        "interpreter",
        "kill_signal",
        "filter_env",
        "monit",
        "pm2_env",
        "a0",
        "api",
        "0",
        "10",
        "\u{670d}\u{52a1}",
        "\u{e9}",
        "tab\there",
        "ctl\u{1}x",
        "quote\"d",
        "back\\slash",
        "del\u{7f}",
        "nl\nx",
        "zzz",
        "",
        "Z",
        "_",
        "~",
    ];
    const TEXTS: &[&str] = &[
        "",
        "x",
        "{}",
        "production",
        "a\"b",
        "\\",
        "\u{0}\u{8}\u{c}\u{1f}\u{7f}",
        "\u{65e5}\u{672c} \u{2713} \u{1f389}",
        "line\r\nnext\t",
        "/srv/app",
        "\u{2028}\u{2029}",
    ];
    const BIG: &[u64] = &[
        0,
        1,
        42,
        1_700_000_000_000,
        (1 << 53) - 1,
        1 << 53,
        (1 << 53) + 1,
        8_999_999_999_999_999,
        9_000_000_000_000_000,
        9_000_000_000_000_001,
        u64::MAX / 2,
        u64::MAX,
    ];
    const INTS: &[i32] = &[0, 1, -1, 2, 9, 15, 64, 99, i32::MAX, i32::MIN];
    const FLOATS: &[f64] = &[
        0.0,
        -0.0,
        1.5,
        0.30000000000000004,
        100.0,
        1e21,
        1e-7,
        123.456,
        9.0e15,
        f64::NAN,
        f64::INFINITY,
        f64::MAX,
    ];

    fn words(rng: &mut Rng, from: &[&str], most: usize) -> Vec<String> {
        (0..rng.below(most + 1))
            .map(|_| rng.pick(from).to_string())
            .collect()
    }

    fn vars(rng: &mut Rng, most: usize) -> BTreeMap<String, String> {
        (0..rng.below(most + 1))
            .map(|_| (rng.pick(NAMES).to_string(), rng.pick(TEXTS).to_string()))
            .collect()
    }

    fn json(rng: &mut Rng, depth: u32) -> Value {
        match rng.below(if depth > 2 { 4 } else { 6 }) {
            0 => Value::Null,
            1 => Value::Bool(rng.chance(50)),
            2 => match rng.below(3) {
                0 => json!(rng.pick(BIG)),
                1 => json!(rng.pick(INTS)),
                _ => json!(rng.pick(FLOATS)),
            },
            3 => json!(rng.pick(TEXTS)),
            4 => Value::Array((0..rng.below(4)).map(|_| json(rng, depth + 1)).collect()),
            _ => Value::Object(
                (0..rng.below(4))
                    .map(|_| (rng.pick(NAMES).to_string(), json(rng, depth + 1)))
                    .collect::<Map<String, Value>>(),
            ),
        }
    }

    /// An app of any shape the record can meet.
    pub(crate) fn random_view(rng: &mut Rng) -> AppView {
        let name = rng.pick(NAMES).to_string();
        let cwd = rng.pick(&["/srv/app", "", "/\u{e9}t\u{e9}"]).to_string();
        let mut env = vars(rng, 12);
        if rng.chance(30) {
            // An ecosystem start puts the app's name in its environment.
            env.insert(name.clone(), "{}".into());
        }
        let spec = AppSpec {
            name,
            script: rng.pick(TEXTS).to_string(),
            args: words(rng, TEXTS, 3),
            interpreter: rng
                .pick(&[
                    None,
                    Some("node"),
                    Some("/usr/bin/node"),
                    Some("nodejs"),
                    Some("python3"),
                    Some("bun"),
                ])
                .map(str::to_string),
            interpreter_args: words(rng, TEXTS, 2),
            cwd: cwd.clone(),
            env: std::sync::Arc::new(env),
            namespace: rng.pick(&["default", "ns", "\u{1}"]).to_string(),
            autorestart: rng.chance(50),
            max_restarts: rng.next() as u32,
            min_uptime: rng.pick(BIG),
            restart_delay: rng.pick(BIG),
            exp_backoff_restart_delay: rng.pick(BIG),
            kill_timeout: rng.pick(BIG),
            kill_signal: rng.pick(INTS),
            stop_exit_codes: (0..rng.below(4)).map(|_| rng.pick(INTS)).collect(),
            out_file: rng.pick(TEXTS).to_string(),
            error_file: rng.pick(TEXTS).to_string(),
            pid_file: rng.pick(&["", "/run/x.pid"]).to_string(),
            env_blocks: (0..rng.below(3))
                .map(|_| (rng.pick(NAMES).to_string(), vars(rng, 3)))
                .collect(),
            instances: rng.next() as u32,
            instance: rng.pick(&[0, 1, u32::MAX]),
            instance_var: rng
                .pick(&["NODE_APP_INSTANCE", "INSTANCE_ID", ""])
                .to_string(),
            merge_logs: rng.chance(50),
            watch: match rng.below(4) {
                0 => Vec::new(),
                1 => vec![cwd.clone()],
                2 => vec![cwd.clone(), "lib".into()],
                _ => words(rng, TEXTS, 3),
            },
            ignore_watch: words(rng, TEXTS, 2),
            watch_delay: rng.pick(BIG),
            max_memory_restart: rng.chance(50).then(|| rng.pick(BIG)),
            cron_restart: rng.chance(50).then(|| rng.pick(TEXTS).to_string()),
            log_file: rng.pick(&["", "/var/log/a.log"]).to_string(),
            cluster: rng.chance(30),
            autostart: rng.chance(50),
            treekill: rng.chance(50),
            increment_var: rng.chance(30).then(|| rng.pick(NAMES).to_string()),
            uid: rng.chance(30).then(|| rng.next() as u32),
            gid: rng.chance(30).then(|| rng.next() as u32),
            ..AppSpec::default()
        };
        let exits: VecDeque<ExitRecord> = (0..rng.below(4))
            .map(|_| ExitRecord {
                at: rng.pick(BIG),
                exit: match rng.below(3) {
                    0 => Exit::Code(rng.pick(INTS)),
                    1 => Exit::Signal(rng.pick(INTS)),
                    _ => Exit::Unknown,
                },
                uptime: rng.pick(BIG),
                reason: rng.pick(&[Reason::Crashed, Reason::Exited, Reason::Watch, Reason::Cron]),
                detail: rng.chance(50).then(|| rng.pick(TEXTS).to_string()),
            })
            .collect();
        let run = Run {
            status: rng.pick(&[
                Status::Online,
                Status::Stopped,
                Status::Errored,
                Status::WaitingRestart,
                Status::OneLaunch,
            ]),
            pid: rng.chance(70).then(|| rng.next() as u32),
            restarts: rng.next() as u32,
            unstable_restarts: rng.pick(&[0, 1, u32::MAX]),
            pm_uptime: rng.pick(BIG),
            created_at: rng.pick(BIG),
            exits,
            axm_monitor: (0..rng.below(3))
                .map(|_| (rng.pick(NAMES).to_string(), json(rng, 0)))
                .collect(),
            axm_actions: (0..rng.below(3)).map(|_| json(rng, 0)).collect(),
            ..Run::default()
        };
        AppView {
            app: App {
                id: rng.pick(&[0, 1, 7, u32::MAX]),
                spec,
                run,
            },
            cpu: rng.pick(FLOATS),
            memory: rng.pick(BIG),
            cpu_time: 0.0,
        }
    }

    /// Hand-picked apps, each with one trait the record must keep exactly.
    pub(crate) fn samples() -> Vec<AppView> {
        let base = || AppView {
            app: App {
                id: 3,
                spec: AppSpec {
                    name: "api".into(),
                    script: "/srv/app/api.js".into(),
                    cwd: "/srv/app".into(),
                    out_file: "/h/logs/api-out.log".into(),
                    error_file: "/h/logs/api-error.log".into(),
                    ..AppSpec::default()
                },
                run: Run {
                    status: Status::Online,
                    pid: Some(4242),
                    restarts: 2,
                    pm_uptime: 1_700_000_000_123,
                    created_at: 1_700_000_000_000,
                    ..Run::default()
                },
            },
            cpu: 0.0,
            memory: 42 * 1024 * 1024,
            cpu_time: 0.0,
        };
        let with = |f: &dyn Fn(&mut AppView)| {
            let mut v = base();
            f(&mut v);
            v
        };
        let env = |pairs: &[(&str, &str)]| {
            std::sync::Arc::new(
                pairs
                    .iter()
                    .map(|(k, x)| (k.to_string(), x.to_string()))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        let exit = |exit, detail: Option<&str>| ExitRecord {
            at: 1_700_000_000_500,
            exit,
            uptime: 12,
            reason: Reason::Crashed,
            detail: detail.map(str::to_string),
        };
        vec![
            base(),
            // Variables named as ward's keys lose to them; `NODE_ENV` stays.
            with(&|v| {
                v.app.spec.env = env(&[
                    ("name", "impostor"),
                    ("status", "x"),
                    ("NODE_APP_INSTANCE", "9"),
                    ("version", "1"),
                    ("env", "e"),
                    ("args", "a"),
                    ("exits", "[]"),
                    ("NODE_ENV", "production"),
                ])
            }),
            // Variables starting with `env_`, one replaced by a block of that name.
            with(&|v| {
                v.app.spec.env = env(&[("env_prod", "var"), ("env_zz", "z"), ("envy", "y")]);
                v.app.spec.env_blocks = [
                    (
                        "prod".to_string(),
                        [("A".to_string(), "1".to_string())].into(),
                    ),
                    ("dev".to_string(), BTreeMap::new()),
                ]
                .into();
            }),
            // Keys pm2 knows that ward does not set, from the environment.
            with(&|v| {
                v.app.spec.env = env(&[
                    ("append_env_to_name", "1"),
                    ("_pm2_version", "5"),
                    ("node_version", "20"),
                ])
            }),
            // An ecosystem start: the name in the environment already.
            with(&|v| v.app.spec.env = env(&[("api", "{}"), ("PORT", "3000")])),
            // An app named as one of ward's keys, which `env` then holds.
            with(&|v| v.app.spec.name = "exits".into()),
            with(&|v| v.app.spec.name = "kill_signal".into()),
            with(&|v| v.app.spec.name = "env_x".into()),
            with(&|v| v.app.spec.watch = vec!["/srv/app".into()]),
            with(&|v| v.app.spec.watch = vec!["/srv/app".into(), "/etc".into()]),
            with(&|v| v.app.spec.watch = vec!["lib".into()]),
            with(&|v| {
                v.app.spec.uid = Some(1000);
                v.app.spec.gid = Some(0);
                v.app.spec.increment_var = Some("PORT".into());
                v.app.spec.log_file = "/h/logs/api.log".into();
            }),
            with(&|v| v.app.spec.interpreter = Some("node".into())),
            with(&|v| v.app.spec.interpreter = Some("/usr/local/bin/node".into())),
            with(&|v| v.app.spec.interpreter = Some("python3".into())),
            with(&|v| {
                v.app.run.status = Status::Errored;
                v.app.run.pid = None;
                v.app.run.exits = [
                    exit(Exit::Signal(9), None),
                    exit(Exit::Code(-1), Some("/srv/app/x.js")),
                    exit(Exit::Code(2), None),
                ]
                .into();
            }),
            with(&|v| v.app.run.exits = [exit(Exit::Signal(15), None)].into()),
            with(&|v| v.app.run.exits = [exit(Exit::Unknown, Some("\u{1}"))].into()),
            with(&|v| {
                v.app.spec.name = "t\u{1}\"\\\n\u{e9}\u{1f389}".into();
                v.app.spec.env = env(&[("k\u{7f}", "\u{0}\u{1f}"), ("\u{670d}", "\u{2028}")]);
            }),
            with(&|v| v.app.spec.env = env(&[])),
            with(&|v| {
                v.memory = u64::MAX;
                v.cpu = 0.1 + 0.2;
                v.app.run.pm_uptime = (1 << 53) + 1;
                v.app.run.created_at = 9_000_000_000_000_000;
                v.app.spec.max_memory_restart = Some(u64::MAX / 2);
                v.app.spec.stop_exit_codes = vec![0, -1, i32::MIN];
                v.app.spec.kill_signal = 99;
                v.app.id = u32::MAX;
            }),
            with(&|v| v.cpu = f64::NAN),
            with(&|v| {
                v.app.run.axm_monitor = json!({"Heap": {"value": 1.5, "unit": "MiB"}, "b": 2})
                    .as_object()
                    .cloned()
                    .unwrap_or_default();
                v.app.run.axm_actions = vec![json!({"action_name": "km:heapdump", "arity": 2})];
            }),
        ]
    }

    const HOME: &str = "/h\u{e9}/\"q\"";
    const USER: &str = "r\u{f6}ot";

    #[test]
    fn entry_is_the_value_it_always_was() {
        for v in samples() {
            assert_eq!(entry(&v, HOME, USER), legacy(&v, HOME, USER), "{v:?}");
        }
        let mut rng = Rng::new(1);
        for _ in 0..2000 {
            let v = random_view(&mut rng);
            assert_eq!(entry(&v, HOME, USER), legacy(&v, HOME, USER), "{v:?}");
        }
    }

    /// `plan` merges blocks (`env_<name>`) with the settings by key: no setting may have
    /// such a key, nor two the same.
    #[test]
    fn settings_keys_are_unique_and_none_is_a_blocks() {
        let v = &samples()[0];
        let set = settings(v, HOME, USER);
        let mut keys: Vec<&str> = set.iter().map(|(k, _)| *k).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), SETTINGS);
        assert!(keys.iter().all(|k| !k.starts_with("env_")), "{keys:?}");
    }
}
