//! The libc calls the daemon needs beyond std and spawning: subreaper, file limits, clocks,
//! signalling process groups, reaping.

use nix::errno::Errno;
use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::lifecycle::Exit;

/// Orphaned grandchildren of the apps come back to the daemon, to be reaped and counted.
pub fn become_subreaper() -> bool {
    // SAFETY: prctl with PR_SET_CHILD_SUBREAPER takes integer arguments only.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0 }
}

/// Raises the soft (and, when allowed, hard) RLIMIT_NOFILE: each app costs two pipes, and
/// the default soft limit of 1024 ends at ~500 apps. Returns the limit the daemon had, for
/// its children, and the one it has now.
pub fn raise_nofile() -> Option<((u64, u64), u64)> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
        .unwrap_or(hard);
    let want = nr_open.clamp(hard, 1 << 20);
    let now = if setrlimit(Resource::RLIMIT_NOFILE, want, want).is_ok() {
        want
    } else if setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        hard
    } else {
        soft
    };
    Some(((soft, hard), now))
}

/// Sets another process's RLIMIT_NOFILE (a child's, right after it was spawned).
pub fn set_nofile(pid: u32, soft: u64, hard: u64) {
    let lim = libc::rlimit {
        rlim_cur: soft as libc::rlim_t,
        rlim_max: hard as libc::rlim_t,
    };
    // SAFETY: prlimit reads the struct we pass and writes nothing (old limit: null).
    unsafe {
        libc::prlimit(
            pid as libc::pid_t,
            libc::RLIMIT_NOFILE,
            &lim,
            std::ptr::null_mut(),
        );
    }
}

/// The pid a signal may go to. 0 and 1 would reach the daemon's own group or every
/// process the daemon may signal (`kill(-1)`), and a u32 above i32::MAX turns negative in
/// the kernel's pid_t: none of them is ever an app, whatever state.json says.
fn signal_target(pid: u32) -> Result<Pid, Errno> {
    match i32::try_from(pid) {
        Ok(p) if p > 1 => Ok(Pid::from_raw(p)),
        _ => Err(Errno::EINVAL),
    }
}

/// Sends `sig` to the process group `pgid` (the pid of the app process that leads it). A
/// group that is gone is not an error. The one place that signals groups, so the guard
/// against `kill(-1, ...)`/`kill(0, ...)` lives here.
pub fn kill_group(pgid: u32, sig: i32) -> Result<(), Errno> {
    let Ok(sig) = Signal::try_from(sig) else {
        return Err(Errno::EINVAL);
    };
    match signal::killpg(signal_target(pgid)?, sig) {
        Ok(()) | Err(Errno::ESRCH) => Ok(()),
        Err(e) => Err(e),
    }
}

/// Reaps one exited child without blocking: `None` when no child has exited.
pub fn reap() -> Option<(u32, Exit)> {
    loop {
        match waitpid(Pid::from_raw(-1), Some(WaitPidFlag::WNOHANG)) {
            Ok(WaitStatus::Exited(pid, code)) => {
                return Some((pid.as_raw() as u32, Exit::Code(code)));
            }
            Ok(WaitStatus::Signaled(pid, sig, _)) => {
                return Some((pid.as_raw() as u32, Exit::Signal(sig as i32)));
            }
            Ok(WaitStatus::StillAlive) => return None,
            Ok(_) => continue,
            Err(Errno::EINTR) => continue,
            Err(_) => return None,
        }
    }
}

/// Monotonic milliseconds (CLOCK_MONOTONIC is system-wide, so it means the same in a
/// daemon started after a crash).
pub fn mono_ms() -> u64 {
    match nix::time::clock_gettime(nix::time::ClockId::CLOCK_MONOTONIC) {
        Ok(t) => t.tv_sec() as u64 * 1000 + t.tv_nsec() as u64 / 1_000_000,
        Err(_) => 0,
    }
}

/// Wall-clock milliseconds since the epoch.
pub fn wall_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 64 random bits from the kernel (getrandom, else /dev/urandom): request ids and client
/// socket names another user cannot guess.
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: getrandom writes at most `b.len()` bytes into the buffer we own.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), b.len(), 0) };
    if n != b.len() as isize {
        use std::io::Read;
        let ok = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut b));
        if ok.is_err() {
            // No randomness at all: still unique, though guessable.
            return wall_ms() ^ ((std::process::id() as u64) << 40) ^ mono_ms().rotate_left(20);
        }
    }
    u64::from_ne_bytes(b)
}

pub fn uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

pub fn user_name() -> String {
    super::users::name_of(uid()).unwrap_or_else(|| uid().to_string())
}

/// The broken-down local time of an epoch second (localtime_r): the one call behind the
/// daemon's log stamps, log line stamps and cron schedules.
fn localtime(epoch: i64) -> Option<libc::tm> {
    // `as _`: time_t is i64 on every 64-bit target, but the libc crate marks its musl
    // alias deprecated.
    let t = epoch as _;
    // SAFETY: localtime_r writes only into the struct we pass; both pointers are valid.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    if unsafe { libc::localtime_r(&t, &mut tm) }.is_null() {
        return None;
    }
    Some(tm)
}

/// Local time as `YYYY-MM-DDTHH:MM:SS`, for the daemon's log.
pub fn local_timestamp() -> String {
    let now = wall_ms() / 1000;
    let Some(tm) = localtime(now as i64) else {
        return now.to_string();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// The broken-down local time of `secs` since the epoch, for log timestamps.
pub fn local_tm(secs: u64) -> Option<crate::spec::datefmt::Tm> {
    let tm = localtime(secs as i64)?;
    Some(crate::spec::datefmt::Tm {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        min: tm.tm_min as u32,
        sec: tm.tm_sec as u32,
        wday: tm.tm_wday as u32,
        gmtoff: tm.tm_gmtoff,
    })
}

/// Renders `unix_ms` in local time; caches the broken-down time of the last second seen, so
/// a flood of lines costs one `localtime_r` per second.
#[derive(Default)]
pub struct Clock {
    last: Option<(u64, crate::spec::datefmt::Tm)>,
}

impl Clock {
    pub fn render(
        &mut self,
        fmt: &crate::spec::datefmt::DateFormat,
        unix_ms: u64,
        out: &mut String,
    ) {
        let secs = unix_ms / 1000;
        let tm = match self.last {
            Some((s, tm)) if s == secs => tm,
            _ => {
                let tm = local_tm(secs).unwrap_or_default();
                self.last = Some((secs, tm));
                tm
            }
        };
        fmt.render(&tm, unix_ms, out);
    }
}

/// The local calendar time of an epoch second (localtime_r), for cron schedules.
pub fn civil_local(epoch: i64) -> Option<crate::spec::cron::Civil> {
    let tm = localtime(epoch)?;
    Some(crate::spec::cron::Civil {
        year: tm.tm_year + 1900,
        month: (tm.tm_mon + 1) as u32,
        day: tm.tm_mday as u32,
        hour: tm.tm_hour as u32,
        minute: tm.tm_min as u32,
        // A leap second (60) is read as the last ordinary one.
        second: tm.tm_sec.min(59) as u32,
    })
}

/// The epoch second of a local calendar time (mktime, letting it decide daylight saving
/// time; a time skipped by a DST change comes out moved forward by the change).
pub fn civil_to_epoch(c: crate::spec::cron::Civil) -> Option<i64> {
    // SAFETY: a zeroed tm is a valid value; mktime reads and normalises only that struct.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    tm.tm_year = c.year - 1900;
    tm.tm_mon = c.month as i32 - 1;
    tm.tm_mday = c.day as i32;
    tm.tm_hour = c.hour as i32;
    tm.tm_min = c.minute as i32;
    tm.tm_sec = c.second as i32;
    tm.tm_isdst = -1;
    let t = unsafe { libc::mktime(&mut tm) };
    if t == -1 { None } else { Some(t as i64) }
}

/// A pidfd for `pid`: readable once the process has exited. Used to supervise processes
/// adopted from an earlier daemon, which are not our children.
pub fn pidfd_open(pid: u32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: the kernel just gave us this fd; nothing else owns it.
    Some(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

/// Reaps `pid` if it is our child and has exited: its real exit status.
pub fn reap_pid(pid: u32) -> Option<Exit> {
    match waitpid(Pid::from_raw(pid as i32), Some(WaitPidFlag::WNOHANG)) {
        Ok(WaitStatus::Exited(_, code)) => Some(Exit::Code(code)),
        Ok(WaitStatus::Signaled(_, sig, _)) => Some(Exit::Signal(sig as i32)),
        _ => None,
    }
}

/// Clears FD_CLOEXEC so `fd` survives an exec of the daemon (`ward update`).
pub fn keep_across_exec(fd: std::os::fd::RawFd) -> bool {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::empty())).is_ok()
}

/// Sends `sig` to one process (`sendSignal` targets the main pid only, as pm2 does).
pub fn kill_pid(pid: u32, sig: i32) -> Result<(), Errno> {
    let sig = Signal::try_from(sig).map_err(|_| Errno::EINVAL)?;
    signal::kill(signal_target(pid)?, sig)
}

/// A non-blocking pipe that becomes readable when one of `signals` arrives (signal-hook's
/// self-pipe), for a poll loop.
pub fn signal_pipe(signals: &[i32]) -> crate::error::Result<std::os::unix::net::UnixStream> {
    use crate::error::Error;
    let (read, write) = std::os::unix::net::UnixStream::pair()
        .map_err(|e| Error::unable("create a signal pipe", e))?;
    read.set_nonblocking(true)
        .map_err(|e| Error::unable("create a signal pipe", e))?;
    for &sig in signals {
        let w = write
            .try_clone()
            .map_err(|e| Error::unable("create a signal pipe", e))?;
        signal_hook::low_level::pipe::register(sig, w)
            .map_err(|e| Error::unable(format_args!("catch signal {sig}"), e))?;
    }
    Ok(read)
}

/// Tells systemd (or any sd_notify listener) that the daemon is ready.
pub fn notify_ready() {
    let Some(addr) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let Ok(sock) = std::os::unix::net::UnixDatagram::unbound() else {
        return;
    };
    let msg = format!("READY=1\nMAINPID={}\n", std::process::id());
    let bytes = addr.as_encoded_bytes();
    if let Some(name) = bytes.strip_prefix(b"@") {
        use std::os::linux::net::SocketAddrExt;
        if let Ok(a) = std::os::unix::net::SocketAddr::from_abstract_name(name) {
            let _ = sock.send_to_addr(msg.as_bytes(), &a);
        }
    } else {
        let _ = sock.send_to(msg.as_bytes(), std::path::Path::new(&addr));
    }
}

/// Columns and rows of the terminal on `fd`, when it is one.
pub fn terminal_size(fd: i32) -> Option<(u16, u16)> {
    let mut ws = nix::pty::Winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    nix::ioctl_read_bad!(tiocgwinsz, libc::TIOCGWINSZ, nix::pty::Winsize);
    // SAFETY: TIOCGWINSZ fills a winsize struct that we own.
    #[allow(unsafe_code)]
    let r = unsafe { tiocgwinsz(fd, &mut ws) };
    match r {
        Ok(_) if ws.ws_col > 0 && ws.ws_row > 0 => Some((ws.ws_col, ws.ws_row)),
        _ => None,
    }
}

/// Takes ownership of a descriptor the kernel has just given this process (accept4,
/// SCM_RIGHTS) or that the daemon we were exec'd from left open for us. Callers pass only
/// such fds: nothing else in the process owns them, so closing on drop is right.
pub fn own_fd(fd: std::os::fd::RawFd) -> std::os::fd::OwnedFd {
    // SAFETY: per the contract above, `fd` is open and owned by no other object.
    unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) }
}

/// Closes every descriptor above 2 except `keep`: whatever the shell (or CI step) that
/// first ran `ward` left open must not reach the apps (a CI step waiting for EOF on a pipe
/// would wait as long as they run). close_range(2) closes a whole span in one call; on a
/// kernel without it, /proc/self/fd says what is open.
pub fn close_inherited(keep: &[std::os::fd::RawFd]) {
    let mut keep: Vec<u32> = keep.iter().filter(|&&f| f > 2).map(|&f| f as u32).collect();
    keep.sort_unstable();
    keep.dedup();
    let mut from = 3u32;
    let mut ok = true;
    for bound in keep.iter().copied().chain([u32::MAX]) {
        if bound > from {
            let last = if bound == u32::MAX {
                u32::MAX
            } else {
                bound - 1
            };
            // SAFETY: close_range takes integers only; the fds it closes belong to nobody in
            // this process yet (this runs first thing, before anything opened them).
            let r = unsafe { libc::syscall(libc::SYS_close_range, from, last, 0u32) };
            ok &= r == 0;
        }
        from = bound.saturating_add(1);
    }
    if ok {
        return;
    }
    let open: Vec<i32> = match std::fs::read_dir("/proc/self/fd") {
        Ok(dir) => dir
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
            .collect(),
        Err(_) => return,
    };
    for fd in open {
        if fd > 2 && !keep.contains(&(fd as u32)) {
            // SAFETY: as above; the fd of the read_dir that listed them is closed already.
            unsafe { libc::close(fd) };
        }
    }
}

/// Sets close-on-exec on a descriptor the process keeps (one inherited across `ward
/// update`'s exec), so that no app started later holds it.
pub fn set_cloexec(fd: std::os::fd::RawFd) -> bool {
    use nix::fcntl::{FcntlArg, FdFlag, fcntl};
    fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).is_ok()
}

/// Gives freed heap memory back to the kernel. glibc keeps what a large request or reply
/// freed for reuse (a 41 MB request left the daemon at 332 MB RSS for good); after such a
/// peak the daemon calls this once.
pub fn give_back_memory() {
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim takes an integer and only works on the allocator's own state.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Lets go of the program's code pages (every `r-xp` mapping of a file: ward's own text,
/// libc's, the loader's): they stay in the page cache, and the pages the daemon still runs
/// come back on their next use, one fault each, with no disk read.
///
/// Why: the kernel maps code 64 kB around each page fault ("fault-around"), and the
/// pages of start-up, of restoring state and of a large request stay mapped, so an idle
/// daemon showed 3.5 MiB resident of which 3.2 MiB was code it was not running (2.2 MiB
/// of ward's text, 1.3 MiB of libc's; /proc/PID/smaps). Only mappings that are not
/// writable are released: their pages are the file's, never changed by the program (a
/// writable or relocated mapping, such as RELRO data, would lose its contents).
pub fn release_code_pages() {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return;
    };
    let ranges: Vec<(usize, usize)> = maps.lines().filter_map(code_range).collect();
    // All parsing is done before the first page goes: what runs after it is this loop.
    for (a, b) in ranges {
        // SAFETY: the range is a whole mapping of this process, read-only and private,
        // backed by an unchanged file: MADV_DONTNEED only drops its page-table entries,
        // and the next access maps the same bytes again from the page cache.
        unsafe {
            libc::madvise(a as *mut libc::c_void, b - a, libc::MADV_DONTNEED);
        }
    }
}

/// The address range of a /proc/self/maps line that maps a file's code (`r-xp`).
fn code_range(line: &str) -> Option<(usize, usize)> {
    let mut f = line.split_ascii_whitespace();
    let (range, perms) = (f.next()?, f.next()?);
    // offset, device, inode, then the path of a file mapping.
    let path = f.nth(3)?;
    if perms != "r-xp" || !path.starts_with('/') {
        return None;
    }
    let (a, b) = range.split_once('-')?;
    let (a, b) = (
        usize::from_str_radix(a, 16).ok()?,
        usize::from_str_radix(b, 16).ok()?,
    );
    (b > a).then_some((a, b))
}

/// Bytes a socket has sent that the receiver has not read yet (SIOCOUTQ: for a UNIX
/// datagram socket, what its datagrams still hold in other sockets' queues).
pub fn unread_bytes(fd: std::os::fd::BorrowedFd) -> usize {
    use std::os::fd::AsRawFd;
    nix::ioctl_read_bad!(siocoutq, libc::TIOCOUTQ, libc::c_int);
    let mut n: libc::c_int = 0;
    // SAFETY: SIOCOUTQ writes one int into the variable we own.
    match unsafe { siocoutq(fd.as_raw_fd(), &mut n) } {
        Ok(_) => n.max(0) as usize,
        Err(_) => 0,
    }
}

/// Points stdout and stderr (the daemon's log) at `path` again, e.g. after its home was
/// recreated.
pub fn redirect_output(path: &std::path::Path) {
    use std::os::fd::AsRawFd;
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = nix::unistd::dup2(f.as_raw_fd(), 1);
        let _ = nix::unistd::dup2(f.as_raw_fd(), 2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_ranges_are_file_text_only() {
        let text = "55d0a000-55d0b000 r--p 00000000 fe:01 42 /usr/bin/ward\n\
                    55d0b000-55d0f000 r-xp 00001000 fe:01 42 /usr/bin/ward\n\
                    55d10000-55d11000 rw-p 00005000 fe:01 42 /usr/bin/ward\n\
                    7ffc000-7ffd000 r-xp 00000000 00:00 0 [vdso]\n\
                    7f00000-7f01000 r-xp 00000000 00:00 0\n\
                    zz-7f01000 r-xp 00000000 fe:01 7 /lib/libc.so.6\n";
        let got: Vec<_> = text.lines().filter_map(code_range).collect();
        assert_eq!(got, [(0x55d0b000, 0x55d0f000)]);
    }

    #[test]
    fn releasing_code_pages_keeps_the_program_running() {
        release_code_pages();
        // Code runs again from the page cache.
        assert_eq!(format!("{}", 6 * 7), "42");
    }

    #[test]
    fn never_signals_every_process_or_its_own_group() {
        for bad in [0, 1, u32::MAX, i32::MAX as u32 + 1] {
            assert_eq!(signal_target(bad), Err(Errno::EINVAL), "pid {bad}");
        }
        assert_eq!(signal_target(2), Ok(Pid::from_raw(2)));
        // Through the real functions: without the guard, killpg(0) would reach this test's
        // own process group (SIGCONT, so a regression harms nothing).
        assert_eq!(kill_group(0, libc::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(kill_pid(0, libc::SIGCONT), Err(Errno::EINVAL));
        assert_eq!(kill_pid(std::process::id(), libc::SIGCONT), Ok(()));
    }
}
