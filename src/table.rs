//! The process table: apps by id, by name, `all`, and `/regex/` targets.
//!
//! No syscalls. Target resolution is all-or-nothing: one unknown target fails the whole
//! request before anything is applied.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::lifecycle::Run;
use crate::spec::config::AppSpec;

#[derive(Serialize, Deserialize, Clone, Debug)]
pub struct App {
    pub id: u32,
    pub spec: AppSpec,
    pub run: Run,
}

#[derive(Default, Debug)]
pub struct Table {
    apps: BTreeMap<u32, App>,
    by_name: HashMap<String, Vec<u32>>,
    next_id: u32,
    /// The last distinct environments seen, for sharing (see `insert`).
    envs: Vec<crate::spec::config::Env>,
}

const ENVS_KEPT: usize = 8;

impl Table {
    pub fn from_apps(apps: Vec<App>, next_id: u32) -> Table {
        let mut t = Table::default();
        for app in apps {
            t.next_id = t.next_id.max(app.id + 1);
            t.insert(app);
        }
        t.next_id = t.next_id.max(next_id);
        t
    }

    pub fn next_id(&self) -> u32 {
        self.next_id
    }

    pub fn len(&self) -> usize {
        self.apps.len()
    }

    pub fn is_empty(&self) -> bool {
        self.apps.is_empty()
    }

    pub fn get(&self, id: u32) -> Option<&App> {
        self.apps.get(&id)
    }

    pub fn get_mut(&mut self, id: u32) -> Option<&mut App> {
        self.apps.get_mut(&id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &App> {
        self.apps.values()
    }

    pub fn ids(&self) -> Vec<u32> {
        self.apps.keys().copied().collect()
    }

    pub fn by_name(&self, name: &str) -> &[u32] {
        self.by_name.get(name).map(|v| v.as_slice()).unwrap_or(&[])
    }

    /// Registers a new app under the next free id.
    pub fn add(&mut self, spec: AppSpec, run: Run) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.insert(App { id, spec, run });
        id
    }

    fn insert(&mut self, mut app: App) {
        app.spec.env = self.share(std::mem::take(&mut app.spec.env));
        self.by_name
            .entry(app.spec.name.clone())
            .or_default()
            .push(app.id);
        self.apps.insert(app.id, app);
    }

    /// Gives app `id` new settings; a new name is indexed under that name.
    /// Apps started from one shell have equal environments: one copy of each, the copy of
    /// an equal one of the last few seen.
    fn share(&mut self, env: crate::spec::config::Env) -> crate::spec::config::Env {
        if let Some(e) = self.envs.iter().find(|e| ***e == *env) {
            return e.clone();
        }
        if self.envs.len() == ENVS_KEPT {
            self.envs.remove(0);
        }
        self.envs.push(env.clone());
        env
    }

    /// Every app's environment, in the order of `iter`.
    pub fn envs_mut(
        &mut self,
    ) -> impl ExactSizeIterator<Item = &mut crate::spec::config::Env> + '_ {
        self.apps.values_mut().map(|a| &mut a.spec.env)
    }

    /// Merges `vars` over app `id`'s environment, as pm2 extends it (nothing is removed);
    /// the apps whose environments were equal still share one after the same merge.
    pub fn extend_env(&mut self, id: u32, vars: &BTreeMap<String, String>) {
        let Some(old) = self.apps.get(&id).map(|a| a.spec.env.clone()) else {
            return;
        };
        let mut env = (*old).clone();
        env.extend(vars.iter().map(|(k, v)| (k.clone(), v.clone())));
        let env = self.share(std::sync::Arc::new(env));
        if let Some(a) = self.apps.get_mut(&id) {
            a.spec.env = env;
        }
    }

    pub fn set_spec(&mut self, id: u32, spec: AppSpec) {
        let Some(app) = self.apps.get_mut(&id) else {
            return;
        };
        if app.spec.name != spec.name {
            if let Some(ids) = self.by_name.get_mut(&app.spec.name) {
                ids.retain(|&i| i != id);
                if ids.is_empty() {
                    self.by_name.remove(&app.spec.name);
                }
            }
            self.by_name.entry(spec.name.clone()).or_default().push(id);
        }
        app.spec = spec;
    }

    pub fn remove(&mut self, id: u32) -> Option<App> {
        let app = self.apps.remove(&id)?;
        if let Some(ids) = self.by_name.get_mut(&app.spec.name) {
            ids.retain(|&i| i != id);
            if ids.is_empty() {
                self.by_name.remove(&app.spec.name);
            }
        }
        // pm2 starts counting from 0 again once the table is empty.
        if self.apps.is_empty() {
            self.next_id = 0;
        }
        Some(app)
    }

    /// Resolves one target: `all`, an id, a name, a namespace or `/regex/` (on names).
    pub fn resolve(&self, target: &str) -> Result<Vec<u32>> {
        self.resolve_in(target, None)
    }

    /// pm2's order (API.js `_operate`, Client.js `getProcessIdByName`): `all`, `/regex/`,
    /// then apps named so or whose script is the target resolved against `cwd` (the
    /// client's folder), then a namespace, and only then an id: an all-digit name wins
    /// over the id.
    pub fn resolve_in(&self, target: &str, cwd: Option<&str>) -> Result<Vec<u32>> {
        if target == "all" {
            // pm2 refuses an `all` that names nothing (`No process found`, exit 1).
            return match self.apps.is_empty() {
                true => Err(Error::new(NO_PROCESS)),
                false => Ok(self.ids()),
            };
        }
        if let Some(pattern) = regex_target(target) {
            let re = regex_lite::Regex::new(pattern)
                .map_err(|e| Error::new(format!("invalid regular expression {target}: {e}")))?;
            let ids: Vec<u32> = self
                .apps
                .values()
                .filter(|a| re.is_match(&a.spec.name))
                .map(|a| a.id)
                .collect();
            return match ids.is_empty() {
                true => Err(Error::new(format!("no app name matches {target}"))),
                false => Ok(ids),
            };
        }
        let named = self.named(target, cwd);
        if !named.is_empty() {
            return Ok(named);
        }
        let ns: Vec<u32> = self
            .apps
            .values()
            .filter(|a| a.spec.namespace == target)
            .map(|a| a.id)
            .collect();
        if !ns.is_empty() {
            return Ok(ns);
        }
        if let Ok(id) = target.parse::<u32>() {
            return match self.apps.contains_key(&id) {
                true => Ok(vec![id]),
                false => Err(Error::new(format!("no app with id {id}"))),
            };
        }
        Err(Error::new(format!(
            "Process or Namespace {target} not found"
        )))
    }

    /// Apps named `target`, or whose script is `target` resolved against `cwd` (pm2's
    /// `getProcessIdByName`, Client.js:697).
    pub fn named(&self, target: &str, cwd: Option<&str>) -> Vec<u32> {
        let script = cwd.map(|c| {
            crate::spec::config::normalize(&std::path::Path::new(c).join(target))
                .to_string_lossy()
                .into_owned()
        });
        self.apps
            .values()
            .filter(|a| a.spec.name == target || script.as_deref() == Some(&*a.spec.script))
            .map(|a| a.id)
            .collect()
    }

    /// Resolves several targets; the ids come back in table order, each once.
    pub fn resolve_all(&self, targets: &[String]) -> Result<Vec<u32>> {
        self.resolve_all_in(targets, None)
    }

    pub fn resolve_all_in(&self, targets: &[String], cwd: Option<&str>) -> Result<Vec<u32>> {
        if targets.is_empty() {
            return Err(Error::new(
                "no target given (a name, an id, all, or /regex/)",
            ));
        }
        let mut ids = Vec::new();
        for t in targets {
            ids.extend(self.resolve_in(t, cwd)?);
        }
        ids.sort_unstable();
        ids.dedup();
        Ok(ids)
    }
}

/// pm2's words when `all` names no app.
pub const NO_PROCESS: &str = "No process found";

/// `/api/` → `api`
pub fn regex_target(t: &str) -> Option<&str> {
    if t.len() >= 2 && t.starts_with('/') && t.ends_with('/') {
        Some(&t[1..t.len() - 1])
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(names: &[&str]) -> Table {
        let mut t = Table::default();
        for n in names {
            t.add(
                AppSpec {
                    name: n.to_string(),
                    ..AppSpec::default()
                },
                Run::new(0),
            );
        }
        t
    }

    #[test]
    fn targets() {
        let t = table(&["api", "worker", "api-admin", "api"]);
        assert_eq!(t.resolve("all").unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(t.resolve("api").unwrap(), vec![0, 3]);
        assert_eq!(t.resolve("2").unwrap(), vec![2]);
        assert_eq!(t.resolve("/^api/").unwrap(), vec![0, 2, 3]);
        assert_eq!(t.resolve("default").unwrap(), vec![0, 1, 2, 3]);
        assert!(t.resolve("9").is_err());
        assert!(t.resolve("nope").is_err());
        assert!(
            t.resolve("/(/")
                .unwrap_err()
                .to_string()
                .contains("invalid regular")
        );
        assert_eq!(
            t.resolve_all(&["worker".into(), "0".into(), "api".into()])
                .unwrap(),
            vec![0, 1, 3]
        );
        assert!(t.resolve_all(&["worker".into(), "nope".into()]).is_err());
    }

    #[test]
    fn pm2s_order_name_script_namespace_id() {
        let mut t = table(&["455", "web", "x"]);
        t.get_mut(1).unwrap().spec.script = "/srv/echo.js".into();
        t.get_mut(2).unwrap().spec.namespace = "0".into();
        // A digit name wins over the id; a namespace over an id too.
        assert_eq!(t.resolve("455").unwrap(), vec![0]);
        assert_eq!(t.resolve("0").unwrap(), vec![2]);
        assert_eq!(t.resolve("1").unwrap(), vec![1]);
        assert_eq!(t.resolve_in("echo.js", Some("/srv")).unwrap(), vec![1]);
        assert_eq!(
            t.resolve_in("../srv/echo.js", Some("/srv")).unwrap(),
            vec![1]
        );
        assert!(t.resolve_in("echo.js", Some("/tmp")).is_err());
        assert!(Table::default().resolve("all").is_err());
    }

    #[test]
    fn ids_restart_from_zero_when_empty() {
        let mut t = table(&["a", "b"]);
        t.remove(0);
        assert_eq!(t.add(AppSpec::default(), Run::new(0)), 2);
        t.remove(1);
        t.remove(2);
        assert_eq!(t.next_id(), 0);
        assert!(t.by_name("a").is_empty());
    }

    /// `--update-env` on many apps of one environment leaves them sharing one.
    #[test]
    fn extended_environments_stay_shared() {
        let mut t = Table::default();
        let env: crate::spec::config::Env =
            std::sync::Arc::new([("A".to_string(), "1".to_string())].into());
        let ids: Vec<u32> = (0..3)
            .map(|i| {
                let spec = AppSpec {
                    name: format!("a{i}"),
                    env: std::sync::Arc::new((*env).clone()),
                    ..AppSpec::default()
                };
                t.add(spec, Run::new(0))
            })
            .collect();
        let env_at = |t: &Table, i: u32| t.get(i).unwrap().spec.env.clone();
        assert!(
            std::sync::Arc::ptr_eq(&env_at(&t, 0), &env_at(&t, 2)),
            "shared on insert"
        );
        let vars = [("B".to_string(), "2".to_string())].into();
        for &i in &ids {
            t.extend_env(i, &vars);
        }
        assert_eq!(env_at(&t, 1).get("B").map(String::as_str), Some("2"));
        assert_eq!(env_at(&t, 1).get("A").map(String::as_str), Some("1"));
        assert!(std::sync::Arc::ptr_eq(&env_at(&t, 0), &env_at(&t, 1)));
        assert!(std::sync::Arc::ptr_eq(&env_at(&t, 0), &env_at(&t, 2)));
    }
}
