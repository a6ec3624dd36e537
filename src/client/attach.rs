//! `ward attach`: the terminal's lines go to an app's stdin (through `send`), and what the
//! app writes comes back from its log files, until Ctrl-C.
//!
//! A client-side loop: poll stdin with a short timeout, then look at the log files' sizes.
//! The daemon streams nothing; it only takes `Send` requests.

use std::io::{Read, Seek, SeekFrom};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use crate::client::output::out;
use crate::client::talk::request;
use crate::error::{Error, Result};
use crate::home::Home;
use crate::protocol::{Reply, Request};

/// A file followed from an offset; re-opened from the start when it is replaced or
/// truncated (rotation, flush).
struct Follow {
    path: PathBuf,
    ino: u64,
    pos: u64,
}

impl Follow {
    fn at_end(path: PathBuf) -> Follow {
        let (ino, pos) = std::fs::metadata(&path)
            .map(|m| (m.ino(), m.len()))
            .unwrap_or((0, 0));
        Follow { path, ino, pos }
    }

    fn read_new(&mut self) -> Vec<u8> {
        let Ok(m) = std::fs::metadata(&self.path) else {
            return Vec::new();
        };
        if m.ino() != self.ino || m.len() < self.pos {
            self.ino = m.ino();
            self.pos = 0;
        }
        if m.len() == self.pos {
            return Vec::new();
        }
        let mut buf = Vec::new();
        if let Ok(mut f) = std::fs::File::open(&self.path) {
            if f.seek(SeekFrom::Start(self.pos)).is_ok() {
                let _ = f.read_to_end(&mut buf);
            }
        }
        self.pos += buf.len() as u64;
        buf
    }
}

pub fn run(home: &Home, target: &str) -> Result<i32> {
    let apps = crate::client::talk::fetch(home, false)?;
    let table = crate::table::Table::from_apps(apps.into_iter().map(|v| v.app).collect(), 0);
    let ids = table.resolve(target)?;
    let [id] = ids.as_slice() else {
        return Err(Error::new(format!(
            "{target} names {} apps; attach to one (use its id)",
            ids.len()
        )));
    };
    let Some(app) = table.get(*id) else {
        return Err(Error::new(format!("no app with id {id}")));
    };
    let mut files: Vec<Follow> = [&app.spec.out_file, &app.spec.error_file]
        .into_iter()
        .filter(|p| !p.is_empty())
        .map(|p| Follow::at_end(PathBuf::from(p)))
        .collect();
    if files.len() == 2 && files[0].path == files[1].path {
        files.pop();
    }
    let note = format!(
        "[ward] attached to {} (id {id}): lines you type go to its stdin; Ctrl-C detaches",
        app.spec.name
    );
    eprintln!("{}", crate::client::output::speak(&note));
    let stdin = std::io::stdin();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let ready = {
            let mut fds = [PollFd::new(stdin.as_fd(), PollFlags::POLLIN)];
            matches!(poll(&mut fds, PollTimeout::from(100u16)), Ok(n) if n > 0)
        };
        if ready {
            let n = stdin.lock().read(&mut buf).unwrap_or(0);
            if n == 0 {
                return Ok(0); // end of input: detach
            }
            pending.extend_from_slice(&buf[..n]);
            while let Some(nl) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=nl).collect();
                let line = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
                let req = Request::Send {
                    target: id.to_string(),
                    line,
                };
                match request(home, &req, Duration::from_secs(10), false)? {
                    Reply::Done { .. } => {}
                    Reply::Error { message } => eprintln!("ward: {message}"),
                    _ => {}
                }
            }
        }
        for f in &mut files {
            let data = f.read_new();
            if !data.is_empty() {
                out(&String::from_utf8_lossy(&data));
            }
        }
    }
}
