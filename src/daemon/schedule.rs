//! The daemon's policy timers: each app's next `cron_restart`, and the periodic memory
//! check for apps with `max_memory_restart`.
//!
//! Nothing is armed for an app without these keys, so a daemon without them never wakes.
//! Deadlines are monotonic milliseconds, as every timer of the loop; a cron time is found
//! in local wall time and turned into a monotonic deadline, and the fire time is
//! remembered so that a timer that fires a millisecond early does not fire twice.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::os::sys;
use crate::spec::config::AppSpec;
use crate::spec::cron::Schedule;

/// pm2 checks memory every 30 s (`PM2_WORKER_INTERVAL`); ward every second by default: a
/// leaking app is caught before it takes the machine, and one pass over /proc is cheap.
pub const MEMORY_INTERVAL_MS: u64 = 1000;

struct Cron {
    schedule: Schedule,
    /// Epoch second of the armed firing.
    fire_at: i64,
    deadline: u64,
}

pub struct Schedules {
    crons: HashMap<u32, Cron>,
    queue: BTreeSet<(u64, u32)>,
    memory_apps: HashSet<u32>,
    memory_interval: u64,
    memory_next: Option<u64>,
}

/// The first firing strictly after `after_s` (epoch seconds): its epoch second.
fn next_fire(schedule: &Schedule, after_s: i64) -> Option<i64> {
    let mut from = after_s;
    // A time that repeats when daylight saving time ends can map before `after_s`; step on.
    for _ in 0..4 {
        let civil = sys::civil_local(from)?;
        let next = schedule.next_after(civil)?;
        let t = sys::civil_to_epoch(next)?;
        if t > after_s {
            return Some(t);
        }
        from += 3600;
    }
    None
}

impl Schedules {
    /// `memory_interval` from `WARD_WORKER_INTERVAL` (ms), else `MEMORY_INTERVAL_MS`.
    pub fn new(memory_interval: u64) -> Schedules {
        Schedules {
            crons: HashMap::new(),
            queue: BTreeSet::new(),
            memory_apps: HashSet::new(),
            memory_interval: memory_interval.max(10),
            memory_next: None,
        }
    }

    /// `WARD_WORKER_INTERVAL`, or pm2's `PM2_WORKER_INTERVAL` in pm2 mode.
    pub fn interval_from_env() -> u64 {
        let pm2 = std::env::var_os("WARD_MODE").is_some_and(|m| m == "pm2");
        std::env::var("WARD_WORKER_INTERVAL")
            .ok()
            .or_else(|| {
                pm2.then(|| std::env::var("PM2_WORKER_INTERVAL").ok())
                    .flatten()
            })
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|&v| v > 0)
            .unwrap_or(MEMORY_INTERVAL_MS)
    }

    /// Arms (or disarms) an app's timers from its spec. An invalid cron expression (one
    /// that got past the client) is returned as an error and arms nothing.
    pub fn set_app(&mut self, id: u32, spec: &AppSpec, now: u64) -> Result<(), String> {
        self.remove_app(id);
        if spec.max_memory_restart.is_some() {
            self.memory_apps.insert(id);
            if self.memory_next.is_none() {
                self.memory_next = Some(now + self.memory_interval);
            }
        }
        // pm2 reads `0` as no cron (`Common.sink.determineCron`).
        if let Some(expr) = spec.cron_restart.as_ref().filter(|c| c.trim() != "0") {
            let schedule =
                Schedule::parse(expr).map_err(|e| format!("invalid cron_restart {expr:?}: {e}"))?;
            let wall = sys::wall_ms();
            if let Some(fire_at) = next_fire(&schedule, (wall / 1000) as i64) {
                let deadline = now + (fire_at as u64 * 1000).saturating_sub(wall);
                self.queue.insert((deadline, id));
                self.crons.insert(
                    id,
                    Cron {
                        schedule,
                        fire_at,
                        deadline,
                    },
                );
            }
        }
        Ok(())
    }

    pub fn remove_app(&mut self, id: u32) {
        if let Some(c) = self.crons.remove(&id) {
            self.queue.remove(&(c.deadline, id));
        }
        self.memory_apps.remove(&id);
        if self.memory_apps.is_empty() {
            self.memory_next = None;
        }
    }

    pub fn memory_apps(&self) -> impl Iterator<Item = u32> + '_ {
        self.memory_apps.iter().copied()
    }

    pub fn next_deadline(&self) -> Option<u64> {
        let cron = self.queue.first().map(|&(d, _)| d);
        match (cron, self.memory_next) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Apps whose cron came due, and whether the memory check is due; re-arms both.
    pub fn due(&mut self, now: u64) -> (Vec<u32>, bool) {
        let mut fired = Vec::new();
        while let Some(&(d, id)) = self.queue.first() {
            if d > now {
                break;
            }
            self.queue.remove(&(d, id));
            let Some(c) = self.crons.get_mut(&id) else {
                continue;
            };
            let wall = sys::wall_ms();
            let wall_s = (wall / 1000) as i64;
            if wall_s < c.fire_at && c.fire_at - wall_s > 1 {
                // The wall clock went back: wait for the firing time again.
                c.deadline = now + (c.fire_at as u64 * 1000).saturating_sub(wall);
                self.queue.insert((c.deadline, id));
                continue;
            }
            fired.push(id);
            match next_fire(&c.schedule, wall_s.max(c.fire_at)) {
                Some(t) => {
                    c.fire_at = t;
                    c.deadline = now + (t as u64 * 1000).saturating_sub(wall).max(1);
                    self.queue.insert((c.deadline, id));
                }
                None => {
                    self.crons.remove(&id);
                }
            }
        }
        let memory = match self.memory_next {
            Some(at) if at <= now => {
                self.memory_next = Some(now + self.memory_interval);
                true
            }
            _ => false,
        };
        (fired, memory)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_armed_without_the_keys() {
        let mut s = Schedules::new(1000);
        s.set_app(1, &AppSpec::default(), 0).unwrap();
        assert_eq!(s.next_deadline(), None);
        assert_eq!(s.due(u64::MAX / 2), (vec![], false));
    }

    #[test]
    fn memory_check_is_periodic_while_an_app_has_a_limit() {
        let mut s = Schedules::new(500);
        let spec = AppSpec {
            max_memory_restart: Some(1 << 20),
            ..AppSpec::default()
        };
        s.set_app(1, &spec, 100).unwrap();
        s.set_app(2, &spec, 200).unwrap();
        assert_eq!(s.next_deadline(), Some(600));
        assert_eq!(s.due(599), (vec![], false));
        assert_eq!(s.due(600), (vec![], true));
        assert_eq!(s.next_deadline(), Some(1100));
        s.remove_app(1);
        assert_eq!(s.next_deadline(), Some(1100));
        s.remove_app(2);
        assert_eq!(s.next_deadline(), None);
    }

    #[test]
    fn cron_fires_on_the_second_and_rearms() {
        let mut s = Schedules::new(1000);
        let spec = AppSpec {
            cron_restart: Some("* * * * * *".into()),
            ..AppSpec::default()
        };
        s.set_app(7, &spec, 0).unwrap();
        let d = s.next_deadline().unwrap();
        assert!((1..=1000).contains(&d), "{d}");
        assert_eq!(s.due(d.saturating_sub(1)).0, Vec::<u32>::new());
        let bad = AppSpec {
            cron_restart: Some("61 * * * *".into()),
            ..AppSpec::default()
        };
        assert!(s.set_app(8, &bad, 0).unwrap_err().contains("minute field"));
        s.remove_app(7);
        assert_eq!(s.next_deadline(), None);
        let off = AppSpec {
            cron_restart: Some("0".into()),
            ..AppSpec::default()
        };
        s.set_app(9, &off, 0).unwrap();
        assert_eq!(s.next_deadline(), None);
    }
}
