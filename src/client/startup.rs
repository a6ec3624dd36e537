//! `ward startup` / `unstartup`: the init-system unit that runs the daemon at boot and
//! resurrects the saved list.
//!
//! The systemd unit is `Type=notify`: the daemon itself is the service's main process and
//! says `READY=1` once the dump is resurrected, so units ordered after it start after the
//! apps (pm2's `Type=forking` + PIDFile unit races, pm2 issue #3924). Pure text generation
//! here, plus writing the file and calling the init system's enable command.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result, os};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Init {
    Systemd,
    SystemdUser,
    Openrc,
    Runit,
    Sysv,
}

impl Init {
    pub fn as_str(self) -> &'static str {
        match self {
            Init::Systemd => "systemd",
            Init::SystemdUser => "systemd-user",
            Init::Openrc => "openrc",
            Init::Runit => "runit",
            Init::Sysv => "sysv",
        }
    }

    pub fn parse(s: &str) -> Result<Init> {
        Ok(match s {
            "systemd" | "ubuntu" | "centos" | "arch" | "oracle" | "debian" => Init::Systemd,
            "systemd-user" | "user" => Init::SystemdUser,
            "openrc" | "alpine" | "gentoo" => Init::Openrc,
            "runit" | "void" => Init::Runit,
            // pm2's upstart names write an init.d script too (API/Startup.js:253-263).
            "sysv" | "systemv" | "sysvinit" | "initd" | "amazon" | "centos6" | "upstart"
            | "ubuntu14" | "ubuntu12" => Init::Sysv,
            _ => {
                return Err(Error::new(format!(
                    "unknown init system {s:?}: systemd, systemd-user, openrc, runit or sysv"
                )));
            }
        })
    }

    /// pm2's detection order: the first init system whose tool exists.
    pub fn detect(path_var: Option<&str>) -> Result<Init> {
        let has = |t: &str| crate::spec::config::find_in_path(t, path_var).is_some();
        if has("systemctl") {
            Ok(Init::Systemd)
        } else if has("rc-update") {
            Ok(Init::Openrc)
        } else if has("sv") || Path::new("/etc/runit").is_dir() {
            Ok(Init::Runit)
        } else if has("update-rc.d") || has("chkconfig") || Path::new("/etc/init.d").is_dir() {
            Ok(Init::Sysv)
        } else {
            Err(Error::new(
                "no known init system found; name one: ward startup systemd|openrc|runit|sysv",
            ))
        }
    }
}

pub struct Target {
    pub init: Init,
    pub user: String,
    /// The user's home; WARD_HOME is `<home>/.ward` unless the environment says otherwise.
    pub home: String,
    pub ward_home: String,
    pub exe: String,
    pub path_var: String,
    pub service: String,
    /// pm2 mode: the daemon keeps pm2's files (dump.pm2) in `ward_home`.
    pub pm2: bool,
}

impl Target {
    /// Where the unit goes, relative to the root of the file system.
    pub fn unit_path(&self) -> PathBuf {
        match self.init {
            Init::Systemd => PathBuf::from(format!("/etc/systemd/system/{}.service", self.service)),
            Init::SystemdUser => PathBuf::from(format!(
                "{}/.config/systemd/user/{}.service",
                self.home, self.service
            )),
            Init::Openrc | Init::Sysv => PathBuf::from(format!("/etc/init.d/{}", self.service)),
            Init::Runit => PathBuf::from(format!("/etc/sv/{}/run", self.service)),
        }
    }

    pub fn unit(&self) -> String {
        let Target {
            user,
            ward_home,
            exe,
            path_var,
            ..
        } = self;
        // A pm2-mode daemon reads the home from WARD_HOME and the mode from WARD_MODE.
        let mode = if self.pm2 { "pm2" } else { "ward" };
        match self.init {
            Init::Systemd | Init::SystemdUser => {
                let (user_line, wanted) = if self.init == Init::Systemd {
                    (format!("User={user}\n"), "multi-user.target")
                } else {
                    (String::new(), "default.target")
                };
                format!(
                    "[Unit]\n\
                     Description=ward process manager ({user})\n\
                     Documentation=man:ward(1)\n\
                     After=network.target\n\
                     \n\
                     [Service]\n\
                     Type=notify\n\
                     NotifyAccess=main\n\
                     {user_line}\
                     Environment=WARD_HOME={ward_home}\n\
                     Environment=WARD_MODE={mode}\n\
                     Environment=PATH={path_var}\n\
                     LimitNOFILE=infinity\n\
                     LimitNPROC=infinity\n\
                     LimitCORE=infinity\n\
                     ExecStart={exe} daemon --resurrect\n\
                     ExecReload={exe} reload all\n\
                     # SIGTERM to the daemon alone: it stops every app with its own stop signal.\n\
                     KillMode=mixed\n\
                     TimeoutStopSec=60\n\
                     Restart=on-failure\n\
                     \n\
                     [Install]\n\
                     WantedBy={wanted}\n"
                )
            }
            Init::Openrc => format!(
                "#!/sbin/openrc-run\n\
                 # ward process manager ({user}), generated by `ward startup openrc`\n\
                 name=\"ward\"\n\
                 description=\"ward process manager ({user})\"\n\
                 command=\"{exe}\"\n\
                 command_args=\"daemon --resurrect\"\n\
                 command_user=\"{user}\"\n\
                 command_background=true\n\
                 pidfile=\"/run/{service}.pid\"\n\
                 export WARD_HOME=\"{ward_home}\"\n\
                 export WARD_MODE=\"{mode}\"\n\
                 export PATH=\"{path_var}\"\n\
                 \n\
                 depend() {{\n\
                 \tneed net\n\
                 }}\n",
                service = self.service
            ),
            Init::Runit => format!(
                "#!/bin/sh\n\
                 # ward process manager ({user}), generated by `ward startup runit`\n\
                 export WARD_HOME=\"{ward_home}\"\n\
                 export WARD_MODE=\"{mode}\"\n\
                 export PATH=\"{path_var}\"\n\
                 exec chpst -u {user} {exe} daemon --resurrect 2>&1\n"
            ),
            Init::Sysv => format!(
                "#!/bin/sh\n\
                 ### BEGIN INIT INFO\n\
                 # Provides:          {service}\n\
                 # Required-Start:    $local_fs $remote_fs $network\n\
                 # Required-Stop:     $local_fs $remote_fs $network\n\
                 # Default-Start:     2 3 4 5\n\
                 # Default-Stop:      0 1 6\n\
                 # Short-Description: ward process manager ({user})\n\
                 ### END INIT INFO\n\
                 # generated by `ward startup sysv`\n\
                 export WARD_HOME=\"{ward_home}\"\n\
                 export PATH=\"{path_var}\"\n\
                 run() {{ su {user} -s /bin/sh -c \"WARD_HOME='{ward_home}' WARD_MODE={mode} {exe} $*\"; }}\n\
                 case \"$1\" in\n\
                 \tstart) run resurrect ;;\n\
                 \tstop) run kill ;;\n\
                 \trestart) run kill; run resurrect ;;\n\
                 \treload) run reload all ;;\n\
                 \tstatus) run ping ;;\n\
                 \t*) echo \"Usage: $0 {{start|stop|restart|reload|status}}\"; exit 1 ;;\n\
                 esac\n",
                service = self.service
            ),
        }
    }

    /// The commands that enable (or, with `on == false`, disable) the unit.
    pub fn enable_commands(&self, on: bool) -> Vec<Vec<String>> {
        let s = self.service.clone();
        let v = |a: &[&str]| a.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        match (self.init, on) {
            (Init::Systemd, true) => vec![
                v(&["systemctl", "daemon-reload"]),
                v(&["systemctl", "enable", &s]),
            ],
            (Init::Systemd, false) => vec![
                v(&["systemctl", "disable", &s]),
                v(&["systemctl", "daemon-reload"]),
            ],
            (Init::SystemdUser, true) => vec![
                v(&["systemctl", "--user", "daemon-reload"]),
                v(&["systemctl", "--user", "enable", &s]),
            ],
            (Init::SystemdUser, false) => vec![v(&["systemctl", "--user", "disable", &s])],
            (Init::Openrc, true) => vec![v(&["rc-update", "add", &s, "default"])],
            (Init::Openrc, false) => vec![v(&["rc-update", "delete", &s, "default"])],
            (Init::Runit, true) => {
                vec![v(&["ln", "-sf", &format!("/etc/sv/{s}"), "/var/service/"])]
            }
            (Init::Runit, false) => vec![v(&["rm", "-f", &format!("/var/service/{s}")])],
            (Init::Sysv, true) => vec![v(&["update-rc.d", &s, "defaults"])],
            (Init::Sysv, false) => vec![v(&["update-rc.d", "-f", &s, "remove"])],
        }
    }
}

/// Writes the unit under `dest` (the real root, or a staging folder) and enables it when
/// `dest` is the real root. Returns what was done, one line each.
pub fn install(t: &Target, dest: Option<&Path>) -> Result<Vec<String>> {
    let rel = t.unit_path();
    let path = match dest {
        Some(d) => d.join(rel.strip_prefix("/").unwrap_or(&rel)),
        None => rel.clone(),
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::unable(format_args!("create {}", dir.display()), os(&e)))?;
    }
    crate::store::write_atomic(&path, t.unit().as_bytes())?;
    if t.init != Init::Systemd && t.init != Init::SystemdUser {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
    }
    let mut done = vec![format!("wrote {}", path.display())];
    if dest.is_none() {
        done.extend(run_all(&t.enable_commands(true)));
    }
    Ok(done)
}

pub fn uninstall(t: &Target, dest: Option<&Path>) -> Result<Vec<String>> {
    let rel = t.unit_path();
    let path = match dest {
        Some(d) => d.join(rel.strip_prefix("/").unwrap_or(&rel)),
        None => rel.clone(),
    };
    let mut done = Vec::new();
    if dest.is_none() {
        done.extend(run_all(&t.enable_commands(false)));
    }
    match std::fs::remove_file(&path) {
        Ok(()) => done.push(format!("removed {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(format!(
                "{} does not exist: no {} startup unit to remove",
                path.display(),
                t.service
            )));
        }
        Err(e) => {
            return Err(Error::unable(
                format_args!("remove {}", path.display()),
                os(&e),
            ));
        }
    }
    if t.init == Init::Runit {
        if let Some(dir) = path.parent() {
            let _ = std::fs::remove_dir(dir);
        }
    }
    Ok(done)
}

fn run_all(cmds: &[Vec<String>]) -> Vec<String> {
    let mut out = Vec::new();
    for c in cmds {
        let status = std::process::Command::new(&c[0]).args(&c[1..]).status();
        out.push(match status {
            Ok(s) if s.success() => format!("ran {}", c.join(" ")),
            Ok(s) => format!("{} failed ({s})", c.join(" ")),
            Err(e) => format!("could not run {}: {}", c.join(" "), os(&e)),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(init: Init) -> Target {
        Target {
            init,
            user: "alice".into(),
            home: "/home/alice".into(),
            ward_home: "/home/alice/.ward".into(),
            exe: "/usr/bin/ward".into(),
            path_var: "/usr/bin:/bin".into(),
            service: "ward-alice".into(),
            pm2: false,
        }
    }

    #[test]
    fn systemd_unit_is_notify_and_resurrects() {
        let u = target(Init::Systemd).unit();
        assert!(u.contains("Type=notify\n"));
        assert!(u.contains("User=alice\n"));
        assert!(u.contains("ExecStart=/usr/bin/ward daemon --resurrect\n"));
        assert!(u.contains("Environment=WARD_HOME=/home/alice/.ward\n"));
        assert!(u.contains("Environment=WARD_MODE=ward\n"));
        assert!(u.contains("WantedBy=multi-user.target\n"));
        let user = target(Init::SystemdUser).unit();
        assert!(!user.contains("User="));
        assert!(user.contains("WantedBy=default.target\n"));
        assert_eq!(
            target(Init::SystemdUser).unit_path(),
            PathBuf::from("/home/alice/.config/systemd/user/ward-alice.service")
        );
    }

    #[test]
    fn other_inits() {
        assert!(
            target(Init::Openrc)
                .unit()
                .starts_with("#!/sbin/openrc-run\n")
        );
        assert!(
            target(Init::Runit)
                .unit()
                .contains("exec chpst -u alice /usr/bin/ward daemon")
        );
        assert!(target(Init::Sysv).unit().contains("start) run resurrect"));
        assert_eq!(Init::parse("ubuntu").unwrap(), Init::Systemd);
        for up in ["upstart", "ubuntu14", "ubuntu12"] {
            assert_eq!(Init::parse(up).unwrap(), Init::Sysv);
        }
        assert!(Init::parse("launchd").is_err());
    }
}
