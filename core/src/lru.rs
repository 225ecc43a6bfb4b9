//! A small least-recently-used map: the per-worker caches of kept plans (keyed by SQL text) and
//! of verified tokens (keyed by token). Eviction scans for the oldest entry, which is cheap at
//! the sizes used (hundreds to a thousand) and only happens on a miss, i.e. when a statement is
//! being prepared or a signature checked anyway.
//! Hashed with foldhash, not SipHash: a lookup hashes a whole statement text or token, on
//! every request.

use foldhash::fast::RandomState;
use std::collections::HashMap;

pub struct Lru<V> {
    entries: HashMap<String, (V, u64), RandomState>,
    clock: u64,
    capacity: usize,
}

impl<V> Lru<V> {
    pub fn new(capacity: usize) -> Self {
        Lru {
            entries: HashMap::default(),
            clock: 0,
            capacity: capacity.max(1),
        }
    }

    /// The entry for `key`, marked as just used.
    pub fn get(&mut self, key: &str) -> Option<&mut V> {
        self.clock += 1;
        let clock = self.clock;
        self.entries.get_mut(key).map(|(v, used)| {
            *used = clock;
            v
        })
    }

    /// Adds an entry; returns the one evicted to make room, for the caller to release.
    pub fn insert(&mut self, key: String, value: V) -> Option<V> {
        self.clock += 1;
        let evicted = if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.evict_oldest()
        } else {
            None
        };
        if let Some((old, _)) = self.entries.insert(key, (value, self.clock)) {
            return Some(old);
        }
        evicted
    }

    /// Removes an entry, returning it.
    pub fn remove(&mut self, key: &str) -> Option<V> {
        self.entries.remove(key).map(|(v, _)| v)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn evict_oldest(&mut self) -> Option<V> {
        let oldest = self
            .entries
            .iter()
            .min_by_key(|(_, (_, used))| *used)
            .map(|(k, _)| k.clone())?;
        self.entries.remove(&oldest).map(|(v, _)| v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evicts_the_least_recently_used() {
        let mut lru = Lru::new(2);
        assert!(lru.insert("a".into(), 1).is_none());
        assert!(lru.insert("b".into(), 2).is_none());
        assert_eq!(lru.get("a"), Some(&mut 1)); // a is now newer than b
        assert_eq!(lru.insert("c".into(), 3), Some(2));
        assert!(lru.get("b").is_none());
        assert_eq!(lru.len(), 2);
    }

    #[test]
    fn stays_bounded_over_many_shapes() {
        let mut lru = Lru::new(8);
        let evicted = (0..100)
            .filter_map(|i| lru.insert(format!("q{i}"), i))
            .count();
        assert_eq!((lru.len(), evicted), (8, 92));
        assert!(lru.get("q99").is_some() && lru.get("q0").is_none());
    }

    #[test]
    fn removed_entries_are_gone() {
        let mut lru = Lru::new(2);
        lru.insert("a".into(), 1);
        assert_eq!(lru.remove("a"), Some(1));
        assert_eq!(lru.remove("a"), None);
        assert!(lru.is_empty());
    }

    #[test]
    fn replacing_a_key_returns_the_old_value() {
        let mut lru = Lru::new(2);
        lru.insert("a".into(), 1);
        assert_eq!(lru.insert("a".into(), 10), Some(1));
        assert_eq!(lru.len(), 1);
    }
}
