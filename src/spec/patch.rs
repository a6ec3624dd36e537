//! Settings given to an app that already exists: `pm2 restart api --node-args=--harmony`,
//! `pm2 restart 0 --name new`, `pm2 restart ecosystem.config.js`. pm2 merges the given
//! keys over the app's (Utility.js `extendMix`) and deletes a key given as `'null'`.
//!
//! A patch is a JSON object keyed by `AppSpec`'s field names; `null` puts a field back to
//! its default. Pure: the daemon applies it, the client builds it.

use serde_json::{Map, Value};

use crate::spec::config::AppSpec;

pub type Patch = Map<String, Value>;

/// Fields a patch may not touch: what the daemon decides per copy (slot, log and pid
/// paths made per id), and the environment, which has its own merge (`--update-env`).
const FIXED: &[&str] = &[
    "instance",
    "instances",
    "out_file",
    "error_file",
    "log_file",
    "pid_file",
    "env",
    "env_blocks",
    "merge_logs",
];

/// The app's spec with `patch` applied, or why it cannot be (nothing is applied then).
pub fn apply(spec: &AppSpec, patch: &Patch) -> Result<AppSpec, String> {
    if patch.is_empty() {
        return Ok(spec.clone());
    }
    let encode = |s: &AppSpec| serde_json::to_value(s).map_err(|e| e.to_string());
    let mut v = encode(&AppSpec {
        env: Default::default(),
        ..spec.clone()
    })?;
    let defaults = encode(&AppSpec::default())?;
    for (k, x) in patch {
        if FIXED.contains(&k.as_str()) || v.get(k).is_none() {
            return Err(format!("{k} cannot be changed on an existing app"));
        }
        v[k] = if x.is_null() {
            defaults[k].clone()
        } else {
            x.clone()
        };
    }
    // Through bytes, not `from_value`: one reader per type (json.rs); a patch is applied
    // once per request.
    let bytes = serde_json::to_vec(&v).map_err(|e| e.to_string())?;
    let mut out: AppSpec =
        crate::json::from_bytes(&bytes).map_err(|e| format!("invalid setting: {e}"))?;
    out.env = spec.env.clone();
    if out.name != spec.name {
        crate::spec::config::check_name(&out.name).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_overwrite_and_null_resets() {
        let spec = AppSpec {
            name: "api".into(),
            interpreter_args: vec!["--harmony".into()],
            max_restarts: 3,
            ..AppSpec::default()
        };
        let p: Patch =
            serde_json::from_str(r#"{"name": "new", "interpreter_args": null}"#).unwrap();
        let out = apply(&spec, &p).unwrap();
        assert_eq!(out.name, "new");
        assert!(out.interpreter_args.is_empty());
        assert_eq!(out.max_restarts, 3);
        let bad: Patch = serde_json::from_str(r#"{"max_restarts": "x"}"#).unwrap();
        assert!(apply(&spec, &bad).is_err());
        let fixed: Patch = serde_json::from_str(r#"{"instance": 3}"#).unwrap();
        assert!(apply(&spec, &fixed).is_err());
        let name: Patch = serde_json::from_str(r#"{"name": "a/b"}"#).unwrap();
        assert!(apply(&spec, &name).is_err());
    }
}
