//! The user database: a uid's name and a user's home folder.
//!
//! The dynamic build asks libc (getpwuid_r/getpwnam_r: NSS, so LDAP and sssd users are
//! found as everywhere else). The static build (`make static`, for minimal containers)
//! reads /etc/passwd itself: glibc's NSS in a static binary must dlopen the libnss modules
//! of the exact glibc it was linked against, which a container rarely has, and linking it
//! costs about 160 kB (the dlopen machinery, iconv, the DNS resolver) of a binary that must
//! stay under 2 MiB.

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
    #[cfg(not(target_feature = "crt-static"))]
    {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(account)
    }
    #[cfg(target_feature = "crt-static")]
    {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd_lookup(&passwd, |a| a.uid == uid)
    }
}

/// The user called `name`.
pub fn by_name(name: &str) -> Option<Account> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(account)
    }
    #[cfg(target_feature = "crt-static")]
    {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd_lookup(&passwd, |a| a.name == name)
    }
}

/// The gid of the group called `name`, or `name` itself when it is a gid the database
/// knows.
pub fn group(name: &str) -> Option<u32> {
    let number = name.parse::<u32>().ok();
    #[cfg(not(target_feature = "crt-static"))]
    {
        use nix::unistd::{Gid, Group};
        let found = match number {
            Some(n) => Group::from_gid(Gid::from_raw(n)),
            None => Group::from_name(name),
        };
        found.ok().flatten().map(|g| g.gid.as_raw())
    }
    #[cfg(target_feature = "crt-static")]
    {
        let groups = std::fs::read_to_string("/etc/group").ok()?;
        group_lookup(&groups, |n, gid| Some(gid) == number || (number.is_none() && n == name))
    }
}

/// The name of `uid`, when the user database knows it.
pub fn name_of(uid: u32) -> Option<String> {
    by_uid(uid).map(|a| a.name)
}

/// The home folder of the user called `name`.
pub fn home_of(name: &str) -> Option<String> {
    by_name(name).map(|a| a.home)
}

#[cfg(not(target_feature = "crt-static"))]
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
#[cfg_attr(not(target_feature = "crt-static"), allow(dead_code))]
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
#[cfg_attr(not(target_feature = "crt-static"), allow(dead_code))]
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
        assert_eq!((ann.uid, ann.gid, ann.home.as_str()), (1000, 1000, "/home/ann"));
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
