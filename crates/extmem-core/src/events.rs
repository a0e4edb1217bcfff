//! What a pool tells its listeners: level changes, leaks and misuse of released memory. Listeners are plain callbacks; the
//! binding turns each into a message to one JavaScript thread.

use crate::watermark::Level;

/// A change of watermark level.
#[derive(Debug, Clone, PartialEq)]
pub struct LevelChange {
    /// The new level.
    pub level: Level,
    /// The level before.
    pub previous: Level,
    /// `in_use_bytes / max_bytes` after the change.
    pub utilization: f64,
    /// Bytes in use after the change.
    pub in_use_bytes: usize,
    /// The cap.
    pub max_bytes: usize,
}

/// A tracked Buffer that was collected without release.
#[derive(Debug, Clone, PartialEq)]
pub struct Leak {
    /// Its length.
    pub size: usize,
    /// Milliseconds from allocation to reclaim.
    pub age_ms: u64,
    /// Its address.
    pub address: usize,
    /// The token of its loan, by which the allocating thread finds the allocation's stack.
    pub token: u64,
    /// The binding's identifier of the thread that allocated it.
    pub thread: usize,
}

/// Released memory that was written to while the quarantine held it (see
/// [`crate::quarantine`]): something kept using it after its release.
#[derive(Debug, Clone, PartialEq)]
pub struct Misuse {
    /// The length its Buffer had.
    pub size: usize,
    /// Its address.
    pub address: usize,
    /// The offset of the first byte that changed.
    pub offset: usize,
    /// The token of the loan it belonged to, by which the thread that released it finds the
    /// allocation's and the release's stacks.
    pub token: u64,
    /// The binding's identifier of the thread that allocated it.
    pub thread: usize,
}

/// An event of a pool.
#[derive(Debug, Clone, PartialEq)]
pub enum PoolEvent {
    /// The watermark level changed.
    Level(LevelChange),
    /// A tracked Buffer leaked.
    Leak(Leak),
    /// Quarantined memory was written to.
    Misuse(Misuse),
}

/// A listener. It is called with the pool's lock held, so events reach every listener in the
/// order they happened; it must only hand the event on (queue it), never call back into the pool.
pub type Listener = Box<dyn Fn(&PoolEvent) + Send + Sync>;

/// The listeners of one pool, by id.
#[derive(Default)]
pub struct Listeners {
    next_id: u64,
    entries: Vec<(u64, Listener)>,
}

impl std::fmt::Debug for Listeners {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listeners").field("count", &self.entries.len()).finish()
    }
}

impl Listeners {
    /// Adds a listener; returns its id.
    pub fn add(&mut self, listener: Listener) -> u64 {
        self.next_id += 1;
        self.entries.push((self.next_id, listener));
        self.next_id
    }

    /// Removes a listener; `false` if there was none with this id.
    pub fn remove(&mut self, id: u64) -> bool {
        // Ids only grow, so `entries` is sorted by id.
        match self.entries.binary_search_by_key(&id, |(i, _)| *i) {
            Ok(at) => {
                drop(self.entries.remove(at));
                true
            }
            Err(_) => false,
        }
    }

    /// Tells every listener.
    pub fn emit(&self, event: &PoolEvent) {
        for (_, l) in &self.entries {
            l(event);
        }
    }

    /// Number of listeners.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
