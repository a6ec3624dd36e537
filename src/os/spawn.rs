//! Starting an app: its command line, environment, process group, and output pipes.
//!
//! std's `Command` does the careful part (argv and envp built before the fork, signal mask
//! and SIGPIPE reset in the child, exec errno sent back over a close-on-exec pipe), and with
//! no `pre_exec` hook it uses posix_spawn (vfork-like: the daemon's memory is not copied,
//! however many apps it holds). The file limit the daemon raised for itself is given back
//! to the child right after exec, with prlimit. The `Child` is never waited: the daemon
//! reaps with `waitpid(-1)`.

use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use crate::os::forker::Refused;
use crate::spec::config::AppSpec;

pub struct Spawned {
    pub pid: u32,
    /// The write end of the app's stdin, kept open by the daemon (`ward send`).
    pub stdin: OwnedFd,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
}

/// The program and arguments pm2 would run for this spec.
pub fn command_line(spec: &AppSpec) -> (String, Vec<String>) {
    match &spec.interpreter {
        Some(interp) => {
            let mut args = spec.interpreter_args.clone();
            args.push(spec.script.clone());
            args.extend(spec.args.iter().cloned());
            (interp.clone(), args)
        }
        None => (spec.script.clone(), spec.args.clone()),
    }
}

/// Starts the app. `extra_env` holds the variables pm2 sets for its apps (pm_id, name, …).
/// `nofile` is the RLIMIT_NOFILE the child gets (the daemon's own limit before it raised it).
/// `channel`, when given, becomes the app's fd 3: the one descriptor beyond 0, 1 and 2 an
/// app gets (Node's IPC channel, `NODE_CHANNEL_FD=3`).
pub fn spawn(
    spec: &AppSpec,
    extra_env: &[(&str, String)],
    nofile: Option<(u64, u64)>,
    forker: &mut Option<crate::os::forker::Forker>,
    channel: Option<&OwnedFd>,
) -> Result<Spawned, String> {
    let cwd = std::path::Path::new(&spec.cwd);
    if let Err(e) = std::fs::metadata(cwd).and_then(|m| {
        if m.is_dir() {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::ENOTDIR))
        }
    }) {
        return Err(format!("chdir {}: {}", spec.cwd, crate::error::os(&e)));
    }
    let (program, args) = command_line(spec);
    let python = spec
        .interpreter
        .as_deref()
        .is_some_and(|i| i.contains("python"));
    // An app run as another user goes through std's Command, which sets the ids between
    // fork and exec; the fork server runs everything as the daemon's user.
    let as_other = spec.uid.is_some() || spec.gid.is_some();
    if let Some(f) = forker.as_mut().filter(|_| !as_other) {
        use std::borrow::Cow::Borrowed;
        let mut env: Vec<_> = spec
            .env
            .iter()
            .filter(|(k, _)| !extra_env.iter().any(|(x, _)| x == k))
            .map(|(k, v)| (Borrowed(k.as_str()), Borrowed(v.as_str())))
            .collect();
        env.extend(
            extra_env
                .iter()
                .map(|(k, v)| (Borrowed(*k), Borrowed(v.as_str()))),
        );
        if python {
            env.retain(|(k, _)| k != "PYTHONUNBUFFERED");
            env.push((Borrowed("PYTHONUNBUFFERED"), Borrowed("1")));
        }
        let req = crate::os::forker::Req {
            program: Borrowed(&program),
            args: args.iter().map(|a| Borrowed(a.as_str())).collect(),
            env,
            cwd: Borrowed(&spec.cwd),
            nofile,
        };
        let pipe = || {
            nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC).map_err(|e| match e {
                nix::errno::Errno::EMFILE => out_of_fds(),
                e => format!("unable to create a pipe: {}", e.desc()),
            })
        };
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        use std::os::fd::AsRawFd;
        let mut fds = vec![in_r.as_raw_fd(), out_w.as_raw_fd(), err_w.as_raw_fd()];
        fds.extend(channel.map(|c| c.as_raw_fd()));
        match f.spawn(&req, &fds) {
            Ok(pid) => {
                return Ok(Spawned {
                    pid,
                    stdin: in_w,
                    stdout: out_r,
                    stderr: err_r,
                });
            }
            Err(Refused::Failed(why)) => return Err(why),
            // Too large for one message: this app alone is started directly.
            Err(Refused::TooLarge) => {}
            // The fork server is gone: start the app ourselves, as before it existed.
            Err(Refused::Gone) => *forker = None,
        }
    }
    let mut cmd = Command::new(&program);
    cmd.args(&args)
        .current_dir(cwd)
        .env_clear()
        .envs(spec.env.iter())
        .envs(extra_env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    if python {
        cmd.env("PYTHONUNBUFFERED", "1");
    }
    if let Some(c) = channel {
        use std::os::fd::AsRawFd;
        let raw = c.as_raw_fd();
        // SAFETY: runs in the forked child before exec and calls only dup2 and fcntl,
        // which are async-signal-safe. Only this fallback (no fork server) pays for the
        // fork that a pre_exec hook costs.
        unsafe {
            cmd.pre_exec(move || {
                let r = if raw == 3 {
                    libc::fcntl(3, libc::F_SETFD, 0)
                } else {
                    libc::dup2(raw, 3)
                };
                if r < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    if let Some(g) = spec.gid {
        cmd.gid(g);
    }
    if let Some(u) = spec.uid {
        cmd.uid(u);
    }
    let mut child = cmd.spawn().map_err(|e| match e.raw_os_error() {
        // EMFILE comes from the daemon's own pipes, not from the program: say so,
        // and what to do (each app keeps about five fds open in the daemon).
        Some(libc::EMFILE) => out_of_fds(),
        _ => format!("exec {program}: {}", crate::error::os(&e)),
    })?;
    if let Some((soft, hard)) = nofile {
        // Given back right after exec, with prlimit: a `pre_exec` hook would make std fork
        // (copying the daemon's page tables) instead of using posix_spawn, which costs
        // more with every app the daemon holds.
        crate::os::sys::set_nofile(child.id(), soft, hard);
    }
    let (Some(inp), Some(out), Some(err)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err("the pipes were not created".into());
    };
    Ok(Spawned {
        pid: child.id(),
        stdin: inp.into(),
        stdout: out.into(),
        stderr: err.into(),
    })
}

fn out_of_fds() -> String {
    "the daemon is out of file descriptors (its RLIMIT_NOFILE); raise the limit: \
     LimitNOFILE=infinity in its unit, or `ulimit -Hn` before it starts"
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpreter_comes_first() {
        let spec = AppSpec {
            script: "/srv/a.js".into(),
            interpreter: Some("node".into()),
            interpreter_args: vec!["--inspect".into()],
            args: vec!["--port".into(), "8080".into()],
            ..AppSpec::default()
        };
        assert_eq!(
            command_line(&spec),
            (
                "node".to_string(),
                vec![
                    "--inspect".into(),
                    "/srv/a.js".into(),
                    "--port".into(),
                    "8080".into()
                ]
            )
        );
        let direct = AppSpec {
            script: "/bin/sleep".into(),
            args: vec!["5".into()],
            ..AppSpec::default()
        };
        assert_eq!(
            command_line(&direct),
            ("/bin/sleep".to_string(), vec!["5".into()])
        );
    }
}
