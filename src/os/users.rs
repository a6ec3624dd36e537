//! The user database: a uid's name and a user's home folder.
//!
//! The dynamic build asks libc (getpwuid_r/getpwnam_r: NSS, so LDAP and sssd users are
//! found as everywhere else). The static build (`make static`, for minimal containers)
//! reads /etc/passwd itself: glibc's NSS in a static binary must dlopen the libnss modules
//! of the exact glibc it was linked against, which a container rarely has, and linking it
//! costs about 160 kB (the dlopen machinery, iconv, the DNS resolver) of a binary that must
//! stay under 2 MiB.

/// The name of `uid`, when the user database knows it.
pub fn name_of(uid: u32) -> Option<String> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }
    #[cfg(target_feature = "crt-static")]
    {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd_lookup(&passwd, |_, id| id == uid).map(|(name, _)| name.to_string())
    }
}

/// The home folder of the user called `name`.
pub fn home_of(name: &str) -> Option<String> {
    #[cfg(not(target_feature = "crt-static"))]
    {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.dir.to_string_lossy().into_owned())
    }
    #[cfg(target_feature = "crt-static")]
    {
        let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
        passwd_lookup(&passwd, |n, _| n == name).map(|(_, home)| home.to_string())
    }
}

/// The first line of passwd(5) text (`name:password:uid:gid:gecos:home:shell`) that
/// `matches` (name, uid): its name and home.
#[cfg_attr(not(target_feature = "crt-static"), allow(dead_code))]
fn passwd_lookup(text: &str, matches: impl Fn(&str, u32) -> bool) -> Option<(&str, &str)> {
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        let uid = f.get(2)?.parse().ok()?;
        (f.len() >= 7 && matches(f[0], uid)).then(|| (f[0], f[5]))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_lines() {
        let t = "# comment\nroot:x:0:0:root:/root:/bin/bash\n\nbad line\n\
                 ann:x:1000:1000:Ann,,,:/home/ann:/bin/sh\n";
        assert_eq!(passwd_lookup(t, |_, u| u == 0), Some(("root", "/root")));
        assert_eq!(
            passwd_lookup(t, |n, _| n == "ann"),
            Some(("ann", "/home/ann"))
        );
        assert_eq!(passwd_lookup(t, |_, u| u == 7), None);
    }

    #[test]
    fn the_current_user_has_a_name() {
        // Both builds: root (CI) and any user of a normal machine is in the database.
        let uid = nix::unistd::getuid().as_raw();
        let name = name_of(uid).expect("the current user is known");
        assert!(!name.is_empty());
        assert!(home_of(&name).is_some());
    }
}
