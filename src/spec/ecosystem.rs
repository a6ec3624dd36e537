//! Ecosystem files: finding and reading them (JSON, or JavaScript through node or through
//! the literal reader in jsonish.rs), selecting apps (`--only`), and turning each app into
//! an `AppSpec` (paths, environment, instances). The keys themselves are checked in
//! appkeys.rs, before anything starts.
//!
//! An error names the file, the line and column where they are known, the app and the key.
//! This module runs in the client; it spawns only node.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::spec::appkeys;
use crate::spec::config::{self, AppSpec};
use crate::spec::jsonish;

/// How long node may take to evaluate a configuration file.
const NODE_PATIENCE: Duration = Duration::from_secs(30);

/// Does this `start` argument name an ecosystem file rather than a script? pm2's rule
/// (`Common.isConfigFile`): any `.json`, and `*.config.js` / `.cjs` / `.mjs`.
pub fn is_ecosystem(target: &str) -> bool {
    let base = Path::new(target)
        .file_name()
        .and_then(|b| b.to_str())
        .unwrap_or("");
    target == "-"
        || base.ends_with(".json")
        || base.ends_with(".config.js")
        || base.ends_with(".config.cjs")
        || base.ends_with(".config.mjs")
        || base.ends_with(".yml")
        || base.ends_with(".yaml")
}

/// The file `ward start` uses when given nothing, as pm2 does.
pub const DEFAULT_FILES: &[&str] = &[
    "ecosystem.config.js",
    "ecosystem.config.cjs",
    "ecosystem.config.mjs",
    "ecosystem.json",
];

pub use crate::spec::appkeys::EcoApp;

#[derive(Debug)]
pub struct Ecosystem {
    /// The path as the user typed it, for messages.
    pub shown: String,
    pub dir: PathBuf,
    pub apps: Vec<EcoApp>,
    pub warnings: Vec<String>,
}

/// What turning an app into a spec needs from the client.
pub struct Ctx<'a> {
    pub shell_env: &'a BTreeMap<String, String>,
    /// `--env NAME`: merge `env_NAME` over `env`.
    pub env_name: Option<&'a str>,
    pub cpus: u32,
}

/// Reads and checks an ecosystem file; `Err` carries every error found, one per line.
pub fn load(shown: &str, here: &Path, path_var: Option<&str>) -> Result<Ecosystem> {
    let path = here.join(shown);
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| here.to_path_buf());
    let lower = shown.to_ascii_lowercase();
    // `-`: the app list as JSON on stdin (`cat ecosystem.json | ward start -`).
    let (shown, dir, src) = if shown == "-" {
        let mut src = String::new();
        std::io::stdin()
            .read_to_string(&mut src)
            .map_err(|e| Error::unable("read the app list from stdin", crate::error::os(&e)))?;
        ("<stdin>", here.to_path_buf(), src)
    } else {
        let src = std::fs::read_to_string(&path)
            .map_err(|e| Error::unable(format_args!("read {shown}"), crate::error::os(&e)))?;
        (shown, dir, src)
    };
    let parsed = if lower.ends_with(".yml") || lower.ends_with(".yaml") {
        let value = crate::spec::yaml::parse(&src)
            .map_err(|e| Error::new(format!("{shown}:{}: {}", e.line, e.message)))?;
        jsonish::Parsed {
            value,
            positions: HashMap::new(),
        }
    } else if lower.ends_with(".json") || shown == "<stdin>" {
        read_json(shown, &src, path_var)?
    } else {
        read_js(shown, &path, &src, path_var)?
    };
    let mut value = parsed.value;
    // pm2 reads a top-level `pm2` list like `apps` (API.js:947-950).
    if let Value::Object(m) = &mut value {
        if !m.contains_key("apps") {
            if let Some(list) = m.remove("pm2") {
                m.insert("apps".into(), list);
            }
        }
    }
    let (mut apps, warnings) = appkeys::check(shown, &parsed.positions, &value)?;
    merge_deploy_env(&value, &mut apps);
    Ok(Ecosystem {
        shown: shown.to_string(),
        dir: config::normalize(&dir),
        apps,
        warnings,
    })
}

/// The app objects of a file, in order: `{apps: [...]}`, `{apps: {...}}` or `[...]`.
fn raw_apps(root: &Value) -> Vec<&Value> {
    match root {
        Value::Array(a) => a.iter().collect(),
        Value::Object(m) => match m.get("apps") {
            Some(Value::Array(a)) => a.iter().collect(),
            Some(one) => vec![one],
            None => Vec::new(),
        },
        _ => Vec::new(),
    }
}

/// pm2 merges a file's `deploy.<env>.env` block like `env_<env>` (an app's own
/// `env_<env>` wins), and reads `append_env_to_name` per app.
fn merge_deploy_env(root: &Value, apps: &mut [EcoApp]) {
    let raw = raw_apps(root);
    for app in apps.iter_mut() {
        app.append_env_to_name = raw
            .get(app.index)
            .and_then(|a| a.get("append_env_to_name"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
    }
    let Some(Value::Object(deploy)) = root.get("deploy") else {
        return;
    };
    for (env_name, d) in deploy {
        let Some(Value::Object(vars)) = d.get("env") else {
            continue;
        };
        for app in apps.iter_mut() {
            let block = app.env_named.entry(env_name.clone()).or_default();
            for (k, v) in vars {
                let v = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                block.entry(k.clone()).or_insert(v);
            }
        }
    }
}

/// `--env NAME` with `append_env_to_name: true` registers the app as `NAME-ENV`, as pm2
/// does, so that one file can run each environment side by side.
pub fn apply_env_name(eco: &mut Ecosystem, env_name: Option<&str>) {
    let Some(env) = env_name else { return };
    for app in eco.apps.iter_mut().filter(|a| a.append_env_to_name) {
        app.name = format!("{}-{env}", app.name);
        app.spec.name = app.name.clone();
    }
}

fn at_failure(f: &jsonish::Failure) -> String {
    match f {
        jsonish::Failure::Syntax(l, c, m) | jsonish::Failure::Code(l, c, m) => {
            format!("{l}:{c}: {m}")
        }
    }
}

/// A `.js` file: node evaluates it when there is one; otherwise the literal reader does,
/// and says that node is needed when the file holds code.
fn read_js(shown: &str, path: &Path, src: &str, path_var: Option<&str>) -> Result<jsonish::Parsed> {
    let literal = jsonish::parse_module(src);
    let Some(node) = config::find_in_path("node", path_var) else {
        return literal.map_err(|f| match f {
            jsonish::Failure::Code(l, c, m) => Error::new(format!(
                "{shown}:{l}:{c}: {m}: this file is JavaScript code, which needs node to \
                 evaluate, and node is not in PATH; install node, or write the file as plain \
                 data (`module.exports = {{ apps: [...] }}` or JSON)"
            )),
            jsonish::Failure::Syntax(l, c, m) => Error::new(format!("{shown}:{l}:{c}: {m}")),
        });
    };
    let value = eval_with_node(shown, &node, NODE_SCRIPT, Some(path), None)?;
    // Positions come from the literal reader when it reads the same thing node did.
    let positions = match literal {
        Ok(p) if p.value == value => p.positions,
        _ => HashMap::new(),
    };
    Ok(jsonish::Parsed { value, positions })
}

/// A `.json` file or a piped list: pm2 evaluates it as a JavaScript expression
/// (Common.js:285-296), so comments, single quotes and computed values work there. JSON
/// is read as it is; anything else goes to node when there is one.
fn read_json(shown: &str, src: &str, path_var: Option<&str>) -> Result<jsonish::Parsed> {
    let failure = match jsonish::parse_json(src) {
        Ok(p) => return Ok(p),
        Err(f) => f,
    };
    // Nesting beyond the reader's limit is refused as it is: node would only overflow its
    // own stack on it (and ecosystem files nest a handful of levels).
    let too_deep = at_failure(&failure).contains("nested more than");
    let Some(node) = config::find_in_path("node", path_var).filter(|_| !too_deep) else {
        return Err(Error::new(format!("{shown}:{}", at_failure(&failure))));
    };
    let value = eval_with_node(shown, &node, NODE_EXPR, None, Some(src.as_bytes()))?;
    Ok(jsonish::Parsed {
        value,
        positions: HashMap::new(),
    })
}

/// pm2's own reading of a `.json` file: `vm.runInThisContext('(' + text + ')')`.
const NODE_EXPR: &str = r#"
let s = '';
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => { s += d; });
process.stdin.on('end', () => {
  try {
    const v = require('vm').runInThisContext('(' + s + ')', { timeout: 1000 });
    process.stdout.write(JSON.stringify(v === undefined ? null : v));
  } catch (e) {
    console.error(String(e && e.message || e));
    process.exit(2);
  }
});
"#;

const NODE_SCRIPT: &str = r#"
const url = require('url');
import(url.pathToFileURL(process.argv[1]).href).then((m) => {
  let v = m.default !== undefined ? m.default : Object.assign({}, m);
  if (typeof v === 'function') {
    console.error('module.exports is a function; ward, like pm2, expects an object { apps: [...] }');
    process.exit(3);
  }
  if (v && typeof v.then === 'function') {
    console.error('module.exports is a promise; ward, like pm2, expects an object { apps: [...] }');
    process.exit(3);
  }
  process.stdout.write(JSON.stringify(v === undefined ? null : v));
}, (e) => {
  console.error(String(e && e.stack || e));
  process.exit(2);
});
"#;

fn set_nonblocking(fd: &impl std::os::fd::AsRawFd) {
    use nix::fcntl::{FcntlArg, OFlag, fcntl};
    let _ = fcntl(fd.as_raw_fd(), FcntlArg::F_SETFL(OFlag::O_NONBLOCK));
}

/// Runs `script` in node (with `path` as its argument, `input` on its stdin) and reads
/// the JSON it prints.
fn eval_with_node(
    shown: &str,
    node: &Path,
    script: &str,
    path: Option<&Path>,
    input: Option<&[u8]>,
) -> Result<Value> {
    let mut cmd = std::process::Command::new(node);
    cmd.arg("-e").arg(script).args(path);
    let mut child = cmd
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .map_err(|e| Error::unable(format_args!("run {}", node.display()), crate::error::os(&e)))?;
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // node reads all of it before it writes anything: no deadlock with its output.
        use std::io::Write;
        let _ = stdin.write_all(input);
    }
    // Both pipes are drained together, without blocking, so that neither can fill up while
    // the other is read, and a file that never finishes evaluating hits the deadline.
    let deadline = Instant::now() + NODE_PATIENCE;
    let mut pipes: Vec<(Box<dyn Read>, Vec<u8>, bool)> = Vec::new();
    if let Some(so) = child.stdout.take() {
        set_nonblocking(&so);
        pipes.push((Box::new(so), Vec::new(), false));
    }
    if let Some(se) = child.stderr.take() {
        set_nonblocking(&se);
        pipes.push((Box::new(se), Vec::new(), false));
    }
    let mut chunk = [0u8; 8192];
    let status = loop {
        let mut progress = false;
        for (pipe, buf, eof) in pipes.iter_mut().filter(|p| !p.2) {
            match pipe.read(&mut chunk) {
                Ok(0) => *eof = true,
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    progress = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => *eof = true,
            }
        }
        if pipes.iter().all(|p| p.2) {
            if let Ok(Some(st)) = child.try_wait() {
                break st;
            }
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Err(Error::new(format!(
                "unable to read {shown}: node did not finish evaluating it within {} s",
                NODE_PATIENCE.as_secs()
            )));
        }
        if !progress {
            std::thread::sleep(Duration::from_millis(2));
        }
    };
    let err = pipes.get(1).map(|p| p.1.clone()).unwrap_or_default();
    let out = pipes.first().map(|p| p.1.clone()).unwrap_or_default();
    if !status.success() {
        let msg = String::from_utf8_lossy(&err);
        // The error and where it is, without node's own stack frames.
        let lines: Vec<&str> = msg
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with("at "))
            .take(6)
            .collect();
        return Err(Error::new(format!(
            "unable to read {shown}: node failed to evaluate it:\n  {}",
            lines.join("\n  ")
        )));
    }
    crate::json::from_bytes(&out)
        .map_err(|e| Error::unable(format_args!("read what node made of {shown}"), e))
}

/// The apps `--only` selects (all of them without it).
pub fn select<'a>(eco: &'a Ecosystem, only: &[String]) -> Result<Vec<&'a EcoApp>> {
    if only.is_empty() {
        return Ok(eco.apps.iter().collect());
    }
    for o in only {
        if !eco.apps.iter().any(|a| &a.name == o) {
            let names: Vec<&str> = eco.apps.iter().map(|a| a.name.as_str()).collect();
            return Err(Error::new(format!(
                "--only {o}: {} has no app of that name (it has: {})",
                eco.shown,
                names.join(", ")
            )));
        }
    }
    Ok(eco.apps.iter().filter(|a| only.contains(&a.name)).collect())
}

/// The variables the file gives an app: `env`, then `env_NAME` over it, then `PORT`.
pub fn file_env(app: &EcoApp, env_name: Option<&str>) -> BTreeMap<String, String> {
    let mut env = app.env.clone();
    if let Some(n) = env_name {
        if let Some(e) = app.env_named.get(n) {
            env.extend(e.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    if let Some(p) = app.port {
        env.insert("PORT".into(), p.to_string());
    }
    env
}

/// pm2's `instances`: 0 (or `max`) is one per CPU, a negative number that many fewer.
pub fn resolve_instances(n: i64, cpus: u32) -> u32 {
    let cpus = cpus.max(1) as i64;
    let n = if n == 0 {
        cpus
    } else if n < 0 {
        cpus + n
    } else {
        n
    };
    n.clamp(1, u32::MAX as i64) as u32
}

/// The complete spec of an app: script resolved from its `cwd` (itself relative to the
/// file's folder), environment = the shell's + the file's.
pub fn to_spec(eco: &Ecosystem, app: &EcoApp, ctx: &Ctx) -> Result<AppSpec> {
    let cwd = match &app.cwd {
        Some(c) => config::normalize(&eco.dir.join(c)),
        None => eco.dir.clone(),
    };
    if !cwd.is_dir() {
        return Err(Error::new(format!(
            "{}{}: key \"cwd\": {} is not a folder",
            app.cwd_at,
            appkeys::label(app.index, Some(&app.name)),
            cwd.display()
        )));
    }
    let path_var = ctx.shell_env.get("PATH").map(String::as_str);
    let shell = config::command_string(&app.script, &cwd, path_var);
    let (script, interpreter) = match &shell {
        Some((sh, _)) => Ok((sh.clone(), None)),
        None => config::resolve_script(&app.script, &cwd, app.interpreter.as_deref(), path_var),
    }
    .map_err(|e| {
        Error::new(format!(
            "{}{}: key \"script\": {e}",
            app.script_at,
            appkeys::label(app.index, Some(&app.name))
        ))
    })?;
    let mut env = ctx.shell_env.clone();
    env.extend(file_env(app, ctx.env_name));
    let in_cwd = |p: &str| -> String {
        if p.is_empty() || p == "NULL" || p == "/dev/null" {
            if p.is_empty() {
                String::new()
            } else {
                "/dev/null".into()
            }
        } else {
            config::normalize(&cwd.join(p))
                .to_string_lossy()
                .into_owned()
        }
    };
    let instances = app
        .instances
        .map(|n| resolve_instances(n, ctx.cpus))
        .unwrap_or(1);
    let mut spec = app.spec.clone();
    spec.name = app.name.clone();
    spec.script = script;
    spec.interpreter = interpreter;
    // pm2's `determineExecMode`: cluster when asked, or with `instances` and a Node
    // interpreter unless fork was written out. Cluster mode needs Node (see `is_node`).
    spec.cluster = (app.cluster || (app.instances.is_some() && !app.fork)) && spec.is_node();
    if let Some((_, args)) = shell {
        spec.args = args;
    }
    spec.cwd = cwd.to_string_lossy().into_owned();
    spec.env = std::sync::Arc::new(env);
    // pm2 puts `NAME: '{}'` in an ecosystem app's environment (API.js:871-872).
    spec.name_var = true;
    // Kept as pm2 keeps them, for jlist/prettylist and dumps (`env_production: {...}`).
    spec.env_blocks = app.env_named.clone();
    spec.out_file = in_cwd(&spec.out_file);
    spec.pid_file = in_cwd(&spec.pid_file);
    spec.error_file = in_cwd(&spec.error_file);
    spec.log_file = if app.log_default {
        // Relative: the daemon puts it in its logs folder.
        format!("{}.log", config::log_stem(&app.name))
    } else {
        in_cwd(&spec.log_file)
    };
    spec.watch = spec
        .watch
        .iter()
        .map(|w| {
            config::normalize(&cwd.join(w))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    spec.instances = instances;
    // pm2 merges the logs of a fork-mode app unless it asked for instances.
    spec.merge_logs = app
        .merge_logs
        .unwrap_or(app.instances.is_none() && !app.cluster);
    Ok(spec)
}

/// pm2's `ecosystem simple` template (lib/templates/ecosystem-simple.tpl), byte for byte.
pub const SAMPLE_SIMPLE: &str = "module.exports = {
  apps : [{
    name   : \"app1\",
    script : \"./app.js\"
  }]
}
";

/// What `ward ecosystem` writes: pm2's sample, with the keys ward users reach for first.
pub const SAMPLE: &str = r#"// ward (and pm2) ecosystem file: `ward start ecosystem.config.js`.
// Every key is optional but `script`. `man ward` (ECOSYSTEM FILE) lists them all.
module.exports = {
  apps: [
    {
      name: 'api',               // the name ward commands use (default: script's file name)
      script: './server.js',     // the program; .js runs with node, .py python, .sh bash...
      args: '--port 3000',       // a string or a list: ['--port', '3000']
      cwd: '.',                  // relative to this file's folder
      // instances: 4,           // copies ('max': one per CPU), each with NODE_APP_INSTANCE
      //                         // 0..3 and its own log, NAME-out-ID.log
      autorestart: true,
      max_restarts: 16,          // unstable restarts in a row before `errored`
      min_uptime: '1s',          // a run shorter than this is unstable
      restart_delay: 0,          // ms to wait before each restart
      kill_timeout: 1600,        // ms between the stop signal and SIGKILL
      // max_memory_restart: '300M',
      // cron_restart: '0 3 * * *',
      // watch: ['src'],
      env: {                     // always set
        NODE_ENV: 'development',
      },
      env_production: {          // merged over env with `--env production`
        NODE_ENV: 'production',
      },
    },
  ],
};
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_ecosystem_files() {
        assert!(is_ecosystem("ecosystem.config.js"));
        assert!(is_ecosystem("./conf/prod.json"));
        assert!(is_ecosystem("x.config.cjs"));
        assert!(!is_ecosystem("server.js"));
        assert!(!is_ecosystem("config.js"));
    }

    #[test]
    fn instances_follow_the_cpus() {
        assert_eq!(resolve_instances(0, 4), 4);
        assert_eq!(resolve_instances(-1, 4), 3);
        assert_eq!(resolve_instances(-9, 4), 1);
        assert_eq!(resolve_instances(3, 4), 3);
    }

    #[test]
    fn sample_reads_without_node() {
        let p = jsonish::parse_module(SAMPLE).unwrap();
        let (apps, warnings) = appkeys::check("eco.js", &p.positions, &p.value).unwrap();
        assert_eq!(apps[0].name, "api");
        assert!(warnings.is_empty(), "{warnings:?}");
    }
}
