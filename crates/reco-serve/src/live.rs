//! What changed since the active model was trained, per user: events newer than the model
//! (folded into the next answer) and items the user rejected (never shown again). Bounded: the
//! least recently used users are evicted past the limit and read back from the database.

use rustc_hash::FxHashMap;

/// One event as the live state keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LiveEvent {
    /// Catalogue index of the item.
    pub item: u32,
    /// Weight (type weight × value; values are positive, so the sign is the type's).
    pub weight: f32,
    /// Sequence number in the log.
    pub seq: i64,
}

impl LiveEvent {
    /// True for negative feedback (a type with a negative weight).
    pub fn negative(&self) -> bool {
        self.weight < 0.0
    }
}

/// A user's live state.
#[derive(Clone, Debug, Default)]
pub struct UserLive {
    /// Events after the active model's training data, in log order.
    pub recent: Vec<LiveEvent>,
    /// Items whose latest event from this user is negative, sorted.
    pub hidden: Vec<u32>,
    last_used: u64,
}

impl UserLive {
    /// A state of recent events only (an anonymous session).
    pub fn of_recent(recent: Vec<LiveEvent>) -> UserLive {
        UserLive {
            recent,
            ..Default::default()
        }
    }

    /// Applies one event: keeps it if it is newer than `floor`, hides or un-hides its item.
    pub fn apply(&mut self, e: LiveEvent, floor: i64) {
        if e.seq > floor {
            self.recent.push(e);
        }
        match (self.hidden.binary_search(&e.item), e.negative()) {
            (Err(p), true) => self.hidden.insert(p, e.item),
            (Ok(p), false) => {
                self.hidden.remove(p);
            }
            _ => {}
        }
    }

    /// True when there is nothing to remember.
    pub fn is_empty(&self) -> bool {
        self.recent.is_empty() && self.hidden.is_empty()
    }
}

/// Live state of the users who have any, with a bound on how many are held.
#[derive(Debug)]
pub struct Live {
    users: FxHashMap<String, UserLive>,
    /// Events up to this sequence number are in the active model.
    floor: i64,
    capacity: usize,
    clock: u64,
    /// True once a user was evicted: a miss then means "ask the database", not "nothing".
    evicted: bool,
    /// Users not held whose events arrived (clock of the latest): a database read begun
    /// before then is stale and must not be installed.
    dropped: FxHashMap<String, u64>,
    /// Reads begun before this clock are refused (the `dropped` map was cleared then).
    dropped_floor: u64,
    /// Users forgotten lately, with the largest sequence number deleted: their events at or
    /// below it that arrive late (committed before the forgetting) are not applied.
    forgotten: FxHashMap<String, i64>,
}

/// The answer to "what is live for this user".
pub enum Lookup {
    /// The state (empty when the user has none).
    Found(UserLive),
    /// Not held; the database has to be asked (after evictions), then the answer installed
    /// with [`Live::insert`] and this ticket.
    Unknown(u64),
}

impl Live {
    /// Empty state above `floor`, holding at most `capacity` users.
    pub fn new(floor: i64, capacity: usize) -> Live {
        Live {
            users: FxHashMap::default(),
            floor,
            capacity: capacity.max(1),
            clock: 0,
            evicted: false,
            dropped: FxHashMap::default(),
            dropped_floor: 0,
            forgotten: FxHashMap::default(),
        }
    }

    /// Events up to this sequence number are in the active model.
    pub fn floor(&self) -> i64 {
        self.floor
    }

    /// Users held.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when no user is held.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Applies an event of `user`.
    pub fn apply(&mut self, user: &str, e: LiveEvent) {
        if self.forgotten.get(user).is_some_and(|&s| e.seq <= s) {
            // Committed before the user was forgotten, applied after: the event is deleted.
            return;
        }
        if e.seq <= self.floor && !e.negative() && !self.users.contains_key(user) {
            return;
        }
        self.clock += 1;
        if self.evicted && !self.users.contains_key(user) {
            // Its older state is not held: drop the event rather than hold a partial state;
            // the next lookup reads the whole state back from the database.
            if self.dropped.len() >= self.capacity {
                self.dropped.clear();
                self.dropped_floor = self.clock;
            }
            self.dropped.insert(user.to_string(), self.clock);
            return;
        }
        let clock = self.clock;
        let floor = self.floor;
        let u = self.users.entry(user.to_string()).or_default();
        u.last_used = clock;
        u.apply(e, floor);
        if u.is_empty() {
            self.users.remove(user);
        }
        self.evict();
    }

    /// The live state of `user`.
    pub fn get(&mut self, user: &str) -> Lookup {
        self.clock += 1;
        match self.users.get_mut(user) {
            Some(u) => {
                u.last_used = self.clock;
                Lookup::Found(u.clone())
            }
            None if self.evicted => Lookup::Unknown(self.clock),
            None => Lookup::Found(UserLive::default()),
        }
    }

    /// Installs a user's state read from the database after a miss that returned `ticket`;
    /// refused when events of the user arrived since (the read may predate them).
    pub fn insert(&mut self, user: &str, mut state: UserLive, ticket: u64) {
        if ticket < self.dropped_floor || self.dropped.get(user).is_some_and(|&t| t > ticket) {
            return;
        }
        self.dropped.remove(user);
        self.clock += 1;
        state.last_used = self.clock;
        state.recent.retain(|e| e.seq > self.floor);
        if !state.is_empty() {
            self.users.insert(user.to_string(), state);
            self.evict();
        }
    }

    /// Keeps only the users `keep` accepts.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        self.users.retain(|u, _| keep(u));
    }

    /// Forgets a user whose events up to `deleted_through` were deleted: their state goes,
    /// late applications of those events and database reads begun before are refused.
    pub fn forget(&mut self, user: &str, deleted_through: i64) {
        self.clock += 1;
        self.users.remove(user);
        self.dropped.insert(user.to_string(), self.clock);
        if self.forgotten.len() >= self.capacity.min(100_000) {
            self.forgotten.clear();
        }
        self.forgotten.insert(user.to_string(), deleted_through);
    }

    /// A new model trained through `floor` is active: drops the events it has learnt from.
    /// Returns false when the new floor is lower (a rollback): the caller reloads from the
    /// database, since events above it were dropped before.
    pub fn advance(&mut self, floor: i64) -> bool {
        if floor < self.floor {
            return false;
        }
        self.floor = floor;
        self.users.retain(|_, u| {
            u.recent.retain(|e| e.seq > floor);
            !u.is_empty()
        });
        true
    }

    /// Replaces everything with `users`, read from the database up to sequence number
    /// `through` (after a rollback or at start). Events applied meanwhile (above `through`) are
    /// applied again on top; database reads begun before are refused.
    pub fn reset(&mut self, floor: i64, users: FxHashMap<String, UserLive>, through: i64) {
        let mut newer: Vec<(String, LiveEvent)> = Vec::new();
        for (name, u) in &self.users {
            newer.extend(
                u.recent
                    .iter()
                    .filter(|e| e.seq > through)
                    .map(|e| (name.clone(), *e)),
            );
        }
        newer.sort_by_key(|(_, e)| e.seq);
        self.floor = floor;
        self.users = users;
        for u in self.users.values_mut() {
            self.clock += 1;
            u.last_used = self.clock;
        }
        self.evicted = false;
        self.dropped.clear();
        self.clock += 1;
        self.dropped_floor = self.clock;
        for (name, e) in newer {
            self.apply(&name, e);
        }
        self.evict();
    }

    fn evict(&mut self) {
        if self.users.len() <= self.capacity {
            return;
        }
        // Evict the least recently used tenth at once, so the sort is paid rarely.
        let keep = self.capacity - self.capacity / 10;
        let mut ages: Vec<(u64, String)> = self
            .users
            .iter()
            .map(|(k, u)| (u.last_used, k.clone()))
            .collect();
        ages.sort_unstable();
        for (_, k) in &ages[..self.users.len() - keep] {
            self.users.remove(k);
        }
        self.evicted = true;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(item: u32, weight: f32, seq: i64) -> LiveEvent {
        LiveEvent { item, weight, seq }
    }

    #[test]
    fn negative_events_hide_and_later_positive_ones_unhide() {
        let mut l = Live::new(0, 10);
        l.apply("u", ev(3, -1.0, 1));
        l.apply("u", ev(5, -1.0, 2));
        let Lookup::Found(s) = l.get("u") else {
            panic!()
        };
        assert_eq!(s.hidden, vec![3, 5]);
        l.apply("u", ev(3, 2.0, 3));
        let Lookup::Found(s) = l.get("u") else {
            panic!()
        };
        assert_eq!(s.hidden, vec![5]);
        assert_eq!(s.recent.len(), 3);
    }

    #[test]
    fn advancing_drops_learnt_events_and_refuses_to_go_back() {
        let mut l = Live::new(0, 10);
        l.apply("a", ev(1, 1.0, 1));
        l.apply("b", ev(2, 1.0, 2));
        assert!(l.advance(1));
        assert_eq!(l.len(), 1, "a's only event is in the model");
        let Lookup::Found(s) = l.get("b") else {
            panic!()
        };
        assert_eq!(s.recent, vec![ev(2, 1.0, 2)]);
        assert!(!l.advance(0));
    }

    #[test]
    fn eviction_bounds_the_users_and_makes_misses_unknown() {
        let mut l = Live::new(0, 20);
        for u in 0..100 {
            l.apply(&format!("u{u}"), ev(u, 1.0, i64::from(u) + 1));
        }
        assert!(l.len() <= 20);
        // The 21st user overflowed the bound: the oldest were evicted, the newest kept; from
        // then on a user not held is read from the database, events included.
        assert!(matches!(l.get("u20"), Lookup::Found(s) if s.recent.len() == 1));
        assert!(matches!(l.get("u99"), Lookup::Unknown(_)));
        let Lookup::Unknown(ticket) = l.get("u0") else {
            panic!("u0 was evicted")
        };
        l.apply("u0", ev(7, 1.0, 500));
        let stale = UserLive {
            hidden: vec![1],
            ..Default::default()
        };
        l.insert("u0", stale.clone(), ticket);
        assert!(
            matches!(l.get("u0"), Lookup::Unknown(_)),
            "a read older than an event is not installed"
        );
        let Lookup::Unknown(ticket) = l.get("u0") else {
            panic!()
        };
        l.insert("u0", stale, ticket);
        assert!(matches!(l.get("u0"), Lookup::Found(s) if s.hidden == vec![1]));
        l.reset(0, FxHashMap::default(), 500);
        assert!(matches!(l.get("u0"), Lookup::Found(s) if s.is_empty()));
        // A reset with more users than the bound keeps exactly the bound's share.
        let many: FxHashMap<String, UserLive> = (0..50)
            .map(|u| {
                (
                    format!("v{u}"),
                    UserLive {
                        hidden: vec![1],
                        ..Default::default()
                    },
                )
            })
            .collect();
        l.reset(0, many, 500);
        assert_eq!(l.len(), 18);
    }

    #[test]
    fn a_reset_keeps_events_applied_while_it_read_and_forgetting_refuses_late_ones() {
        let mut l = Live::new(0, 10);
        l.apply("a", ev(1, 1.0, 10));
        l.apply("a", ev(2, -1.0, 12));
        // The database read went up to 11: the event at 12 arrived meanwhile and stays.
        let mut read = FxHashMap::default();
        read.insert("a".to_string(), UserLive::of_recent(vec![ev(1, 1.0, 10)]));
        l.reset(0, read, 11);
        let Lookup::Found(s) = l.get("a") else {
            panic!()
        };
        assert_eq!(s.recent, vec![ev(1, 1.0, 10), ev(2, -1.0, 12)]);
        assert_eq!(s.hidden, vec![2]);
        l.forget("a", 12);
        l.apply("a", ev(3, 1.0, 12));
        assert!(
            matches!(l.get("a"), Lookup::Found(s) if s.is_empty()),
            "late, deleted"
        );
        l.apply("a", ev(4, 1.0, 13));
        assert!(
            matches!(l.get("a"), Lookup::Found(s) if s.recent.len() == 1),
            "a new event"
        );
    }
}
