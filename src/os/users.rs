//! The user database: a uid's name and a user's home folder, a group's id.
//!
//! /etc/passwd and /etc/group are read first, in both builds: that is where local users
//! are (nsswitch.conf names `files` first nearly everywhere), and it costs one read where
//! glibc's NSS first tries nscd's socket twice and parses nsswitch.conf (a third of the
//! system calls of `ward ls`). A name or id not found there is asked of libc in the
//! dynamic build (getpwuid_r/getpwnam_r/getgr*_r: NSS, so LDAP and sssd users are found as
//! everywhere else). The static build (`make static`, for minimal containers) stops at the
//! files: musl's own lookups read the same files and then ask nscd, which a container
//! rarely runs; a static glibc build (`STATIC_TARGET=…-gnu`) would have to dlopen the
//! libnss modules of the exact glibc it was linked against, and linking that costs about
//! 160 kB (the dlopen machinery, iconv, the DNS resolver).

/// A user of the database: what ward needs of a passwd(5) entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    pub home: String,
}

/// The user whose uid is `uid`.
pub fn by_uid(uid: u32) -> Option<Account> {
    in_file("/etc/passwd", |t| passwd_lookup(t, |a| a.uid == uid)).or_else(|| {
        from_libc(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(account)
        })
    })
}

/// The user called `name`.
pub fn by_name(name: &str) -> Option<Account> {
    in_file("/etc/passwd", |t| passwd_lookup(t, |a| a.name == name)).or_else(|| {
        from_libc(|| {
            nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(account)
        })
    })
}

/// The gid of the group called `name`, or `name` itself when it is a gid the database
/// knows.
pub fn group(name: &str) -> Option<u32> {
    let number = name.parse::<u32>().ok();
    let matches = |n: &str, gid: u32| match number {
        Some(want) => gid == want,
        None => n == name,
    };
    in_file("/etc/group", |t| group_lookup(t, matches)).or_else(|| {
        from_libc(|| {
            use nix::unistd::{Gid, Group};
            let found = match number {
                Some(n) => Group::from_gid(Gid::from_raw(n)),
                None => Group::from_name(name),
            };
            found.ok().flatten().map(|g| g.gid.as_raw())
        })
    })
}

fn in_file<T>(path: &str, find: impl FnOnce(&str) -> Option<T>) -> Option<T> {
    find(&std::fs::read_to_string(path).ok()?)
}

/// What libc's NSS says, in the dynamic build; nothing in the static one (see above).
#[cfg(not(target_feature = "crt-static"))]
fn from_libc<T>(ask: impl FnOnce() -> Option<T>) -> Option<T> {
    ask()
}

#[cfg(target_feature = "crt-static")]
fn from_libc<T>(_: impl FnOnce() -> Option<T>) -> Option<T> {
    None
}

/// The name of `uid`, when the user database knows it.
pub fn name_of(uid: u32) -> Option<String> {
    by_uid(uid).map(|a| a.name)
}

/// The home folder of the user called `name`.
pub fn home_of(name: &str) -> Option<String> {
    by_name(name).map(|a| a.home)
}

fn account(u: nix::unistd::User) -> Account {
    Account {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir.to_string_lossy().into_owned(),
    }
}

/// The first line of passwd(5) text (`name:password:uid:gid:gecos:home:shell`) that
/// `matches`.
fn passwd_lookup(text: &str, matches: impl Fn(&Account) -> bool) -> Option<Account> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() < 7 {
            return None;
        }
        let a = Account {
            name: f[0].to_string(),
            uid: f[2].parse().ok()?,
            gid: f[3].parse().ok()?,
            home: f[5].to_string(),
        };
        matches(&a).then_some(a)
    })
}

/// The gid of the first line of group(5) text (`name:password:gid:members`) that
/// `matches` (name, gid).
fn group_lookup(text: &str, matches: impl Fn(&str, u32) -> bool) -> Option<u32> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let gid = f.get(2)?.parse().ok()?;
        (f.len() >= 3 && matches(f[0], gid)).then_some(gid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let t = "# comment\nroot:x:0:0:root:/root:/bin/bash\n\nbad line\n\
                 ann:x:1000:1000:Ann,,,:/home/ann:/bin/sh\n";
        let root = passwd_lookup(t, |a| a.uid == 0).unwrap();
        assert_eq!((root.name.as_str(), root.home.as_str()), ("root", "/root"));
        let ann = passwd_lookup(t, |a| a.name == "ann").unwrap();
        assert_eq!(
            (ann.uid, ann.gid, ann.home.as_str()),
            (1000, 1000, "/home/ann")
        );
        assert_eq!(passwd_lookup(t, |a| a.uid == 7), None);
    }

    #[test]
    fn group_lines() {
        let t = "root:x:0:\nbad\nstaff:x:50:ann,bob\n";
        assert_eq!(group_lookup(t, |n, _| n == "staff"), Some(50));
        assert_eq!(group_lookup(t, |_, g| g == 0), Some(0));
        assert_eq!(group_lookup(t, |n, _| n == "wheel"), None);
    }

    #[test]
    fn the_current_user_has_a_name() {
        // Both builds: root (CI) and any user of a normal machine is in the database.
        let uid = nix::unistd::getuid().as_raw();
        let name = name_of(uid).expect("the current user is known");
        assert!(!name.is_empty());
        assert!(home_of(&name).is_some());
        assert_eq!(by_name(&name).map(|a| a.uid), Some(uid));
        let gid = nix::unistd::getgid().as_raw();
        assert_eq!(group(&gid.to_string()), Some(gid));
        assert_eq!(group("no-such-group-here"), None);
    }
}
