//! User and group names for numeric ids, from the host's user database.
//!
//! Lookups go through the C library's name service switch (NSS), so they
//! see `/etc/passwd` as well as LDAP, SSSD or systemd's dynamic users, and
//! can be slow: each answer is cached. Names that exist are kept for ten
//! minutes by default; ids with no name (or whose lookup failed) for thirty
//! seconds, so a user created after the first miss shows up soon.
//!
//! Not done yet: names as seen inside a container (its own `/etc/passwd`);
//! these are always the host's names. Lookups block the calling thread.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::unistd::{Gid, Group, Uid, User};

/// How long a name that was found stays cached, by default.
const FOUND_TTL: Duration = Duration::from_secs(10 * 60);
/// How long an id without a name stays cached, by default.
const MISSING_TTL: Duration = Duration::from_secs(30);
/// The most entries one map (users, or groups) holds.
const MAX_ENTRIES: usize = 4096;

/// Asks the database for the name behind an id.
type Lookup = fn(u32) -> Option<String>;

/// Cached user and group names.
#[derive(Debug)]
pub struct NameCache {
    users: Entries,
    groups: Entries,
    found_ttl: Duration,
    missing_ttl: Duration,
    lookup_user: Lookup,
    lookup_group: Lookup,
}

/// One map of cached answers, from id to name.
#[derive(Debug, Default)]
struct Entries {
    map: HashMap<u32, Entry>,
}

/// A cached answer: the name, or none, and when to ask again.
#[derive(Debug)]
struct Entry {
    name: Option<Arc<str>>,
    expires: Instant,
}

impl NameCache {
    /// A cache that keeps found names 10 minutes and misses 30 seconds.
    pub fn new() -> Self {
        Self::with_ttl(FOUND_TTL, MISSING_TTL)
    }

    /// A cache that keeps found names for `found` and misses (unknown ids
    /// and failed lookups) for `missing`.
    pub fn with_ttl(found: Duration, missing: Duration) -> Self {
        Self::with_lookups(found, missing, system_user, system_group)
    }

    /// A cache that asks the given functions instead of the database.
    fn with_lookups(
        found: Duration,
        missing: Duration,
        lookup_user: Lookup,
        lookup_group: Lookup,
    ) -> Self {
        Self {
            users: Entries::default(),
            groups: Entries::default(),
            found_ttl: found,
            missing_ttl: missing,
            lookup_user,
            lookup_group,
        }
    }

    /// The name of user `uid`, or `None` when the database has none.
    pub fn user(&mut self, uid: u32) -> Option<Arc<str>> {
        let ttl = (self.found_ttl, self.missing_ttl);
        self.users.get(uid, ttl, self.lookup_user)
    }

    /// The name of group `gid`, or `None` when the database has none.
    pub fn group(&mut self, gid: u32) -> Option<Arc<str>> {
        let ttl = (self.found_ttl, self.missing_ttl);
        self.groups.get(gid, ttl, self.lookup_group)
    }
}

impl Default for NameCache {
    fn default() -> Self {
        Self::new()
    }
}

impl Entries {
    /// The cached answer for `id`, asking `lookup` when there is none or it
    /// has expired. `ttl` is (found, missing).
    fn get(&mut self, id: u32, ttl: (Duration, Duration), lookup: Lookup) -> Option<Arc<str>> {
        let now = Instant::now();
        if let Some(entry) = self.map.get(&id).filter(|e| now < e.expires) {
            return entry.name.clone();
        }
        let name: Option<Arc<str>> = lookup(id).map(Arc::from);
        let keep = if name.is_some() { ttl.0 } else { ttl.1 };
        if !self.map.contains_key(&id) {
            self.make_room(now);
        }
        self.map.insert(
            id,
            Entry {
                name: name.clone(),
                expires: now + keep,
            },
        );
        name
    }

    /// Keeps the map under its bound before a new entry goes in.
    ///
    /// Expired entries go first. If the map is still full, it is emptied:
    /// a real host has far fewer active ids than the bound, so a full map
    /// means many ids in a short time (for example a flood of user
    /// namespaces). Clearing only costs fresh lookups for the ids still in
    /// use, and keeps memory bounded without tracking which entry is oldest.
    fn make_room(&mut self, now: Instant) {
        if self.map.len() < MAX_ENTRIES {
            return;
        }
        self.map.retain(|_, entry| now < entry.expires);
        if self.map.len() >= MAX_ENTRIES {
            self.map.clear();
        }
    }
}

/// Looks a user up in the system's database.
fn system_user(uid: u32) -> Option<String> {
    match User::from_uid(Uid::from_raw(uid)) {
        Ok(user) => user.map(|u| u.name),
        Err(error) => {
            tracing::debug!(uid, %error, "user lookup failed");
            None
        }
    }
}

/// Looks a group up in the system's database.
fn system_group(gid: u32) -> Option<String> {
    match Group::from_gid(Gid::from_raw(gid)) {
        Ok(group) => group.map(|g| g.name),
        Err(error) => {
            tracing::debug!(gid, %error, "group lookup failed");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        /// How often the fake database was asked, on this test's thread.
        static ASKED: Cell<usize> = const { Cell::new(0) };
    }

    /// A fake database: ids below 100 are named `u<id>`, others unknown.
    fn fake(id: u32) -> Option<String> {
        ASKED.with(|asked| asked.set(asked.get() + 1));
        (id < 100).then(|| format!("u{id}"))
    }

    fn asked() -> usize {
        ASKED.with(Cell::get)
    }

    fn fake_cache(found: Duration, missing: Duration) -> NameCache {
        NameCache::with_lookups(found, missing, fake, fake)
    }

    #[test]
    fn root_is_root() {
        let mut names = NameCache::new();
        assert_eq!(names.user(0).as_deref(), Some("root"));
        assert_eq!(names.group(0).as_deref(), Some("root"));
    }

    #[test]
    fn unused_ids_have_no_name() {
        let mut names = NameCache::new();
        assert_eq!(names.user(3_999_999_999), None);
        assert_eq!(names.group(3_999_999_999), None);
    }

    #[test]
    fn answers_are_cached_within_their_ttl() {
        let hour = Duration::from_secs(3600);
        let mut names = fake_cache(hour, hour);
        assert_eq!(names.user(7).as_deref(), Some("u7"));
        assert_eq!(names.user(7).as_deref(), Some("u7"));
        assert_eq!(names.user(500), None);
        assert_eq!(names.user(500), None);
        assert_eq!(asked(), 2, "one lookup for each id");
        // Users and groups are separate maps.
        assert_eq!(names.group(7).as_deref(), Some("u7"));
        assert_eq!(asked(), 3);
    }

    #[test]
    fn expired_answers_are_asked_again() {
        let mut names = fake_cache(Duration::from_secs(3600), Duration::ZERO);
        names.user(7);
        names.user(7);
        assert_eq!(asked(), 1, "a found name is still fresh");
        names.user(500);
        names.user(500);
        assert_eq!(asked(), 3, "a miss with no ttl is asked every time");

        let mut names = fake_cache(Duration::ZERO, Duration::from_secs(3600));
        names.group(7);
        names.group(7);
        assert_eq!(asked(), 5, "a found name with no ttl is asked every time");
    }

    #[test]
    fn a_short_ttl_runs_out() {
        let mut names = fake_cache(Duration::from_millis(20), Duration::from_millis(20));
        names.user(7);
        names.user(7);
        assert_eq!(asked(), 1);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(names.user(7).as_deref(), Some("u7"));
        assert_eq!(asked(), 2);
    }

    #[test]
    fn maps_stay_bounded() {
        let hour = Duration::from_secs(3600);
        let mut names = fake_cache(hour, hour);
        for id in 0..(MAX_ENTRIES as u32 * 2 + 10) {
            names.user(id);
            assert!(names.users.map.len() <= MAX_ENTRIES);
        }
        // The latest answer survives a clearing.
        let last = MAX_ENTRIES as u32 * 2 + 9;
        let before = asked();
        names.user(last);
        assert_eq!(asked(), before);
    }

    #[test]
    fn expired_entries_make_room_first() {
        // Names (ids below 100) are kept an hour; misses expire at once.
        let mut names = fake_cache(Duration::from_secs(3600), Duration::ZERO);
        for id in 0..MAX_ENTRIES as u32 {
            names.user(id);
        }
        assert_eq!(names.users.map.len(), MAX_ENTRIES);
        // The sweep drops the expired misses and keeps the 100 names.
        names.user(MAX_ENTRIES as u32);
        assert_eq!(names.users.map.len(), 101);
        let before = asked();
        names.user(42);
        assert_eq!(asked(), before);
    }
}
