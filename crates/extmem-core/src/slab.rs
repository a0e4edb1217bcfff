//! The slots of one size class, carved from chunks of anonymous memory.
//!
//! A chunk is [`SLAB_CHUNK_BYTES`] of page-aligned anonymous memory, owned by a [`memmap2::MmapMut`]
//! and unmapped when the chunk is dropped. When a class has no free slot it maps one more chunk
//! and makes all its slots free.
//!
//! Free slots form an intrusive doubly-linked list threaded through per-slot metadata: pushing
//! and popping at the head make the most recently freed (hottest) slot the next one handed out,
//! and [`take`](ClassSlab::take) can claim one particular free slot in O(1).
//!
//! Every slot also records the *epoch* of the newest ArrayBuffer made over it. Epochs are unique
//! within a class for the life of the process (a new chunk's slots start at epoch 0, which no
//! ArrayBuffer has), so an ArrayBuffer whose epoch matches its slot's is the newest one over that
//! memory, even if the chunk was unmapped and its key reused since.

use std::io;

use memmap2::MmapMut;

/// Bytes of one slab chunk: the unit in which the slab pool takes memory from the OS.
pub const SLAB_CHUNK_BYTES: usize = 64 * 1024;

const _: () = assert!(SLAB_CHUNK_BYTES.is_multiple_of(crate::size_class::SMALL_MAX));

/// No slot / no loan.
const NIL: u32 = u32::MAX;

/// One slot of a class: `chunk key * slots per chunk + index in the chunk`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Slot(u32);

impl Slot {
    /// The slot's number within its class.
    pub fn index(self) -> u32 {
        self.0
    }

    /// The slot of a number given out by [`index`](Self::index).
    pub fn from_index(index: u32) -> Slot {
        Slot(index)
    }
}

#[derive(Debug, Clone, Copy)]
struct SlotMeta {
    /// Links of the free list; both `NIL` while the slot is handed out.
    prev: u32,
    next: u32,
    /// Whether the slot is on the free list.
    free: bool,
    /// Epoch of the newest ArrayBuffer made over the slot (0: none).
    epoch: u64,
    /// Key of the loan that holds the slot, or `NIL`.
    loan: u32,
}

#[derive(Debug)]
struct Chunk {
    /// Owns the memory; `base` points into it for as long as the chunk lives.
    _map: MmapMut,
    base: usize,
    /// Slots of this chunk that are handed out (not free).
    live: u32,
}

/// The chunks and free slots of one size class.
#[derive(Debug)]
pub struct ClassSlab {
    slot_size: usize,
    per_chunk: u32,
    chunks: slab::Slab<Chunk>,
    /// Metadata of every slot of every chunk key ever used, indexed by [`Slot`].
    meta: Vec<SlotMeta>,
    /// Head of the free list (the most recently freed slot), or `NIL`. Every slot of every live
    /// chunk is either on the list exactly once (`free`) or handed out, never both.
    head: u32,
    free_count: usize,
    /// Last epoch given out.
    last_epoch: u64,
}

impl ClassSlab {
    /// An empty slab for slots of `slot_size` bytes; it maps nothing until asked.
    pub fn new(slot_size: usize) -> Self {
        debug_assert!(slot_size > 0 && slot_size <= SLAB_CHUNK_BYTES);
        ClassSlab {
            slot_size,
            per_chunk: (SLAB_CHUNK_BYTES / slot_size) as u32,
            chunks: slab::Slab::new(),
            meta: Vec::new(),
            head: NIL,
            free_count: 0,
            last_epoch: 0,
        }
    }

    /// Capacity of each slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    fn chunk_of(&self, slot: Slot) -> usize {
        (slot.0 / self.per_chunk) as usize
    }

    /// Address of a slot of a live chunk.
    #[inline]
    pub fn addr(&self, slot: Slot) -> *mut u8 {
        let chunk = &self.chunks[self.chunk_of(slot)];
        (chunk.base + (slot.0 % self.per_chunk) as usize * self.slot_size) as *mut u8
    }

    fn unlink(&mut self, i: u32) {
        let SlotMeta { prev, next, .. } = self.meta[i as usize];
        if prev == NIL {
            self.head = next;
        } else {
            self.meta[prev as usize].next = next;
        }
        if next != NIL {
            self.meta[next as usize].prev = prev;
        }
        let m = &mut self.meta[i as usize];
        (m.prev, m.next, m.free) = (NIL, NIL, false);
        self.free_count -= 1;
    }

    fn link_head(&mut self, i: u32) {
        let old = self.head;
        if old != NIL {
            self.meta[old as usize].prev = i;
        }
        let m = &mut self.meta[i as usize];
        (m.prev, m.next, m.free) = (NIL, old, true);
        self.head = i;
        self.free_count += 1;
    }

    /// Takes the most recently freed slot, or `None` if a chunk must be added first.
    #[inline]
    pub fn pop(&mut self) -> Option<(Slot, *mut u8)> {
        let i = self.head;
        if i == NIL {
            return None;
        }
        self.unlink(i);
        let slot = Slot(i);
        let c = self.chunk_of(slot);
        self.chunks[c].live += 1;
        Some((slot, self.addr(slot)))
    }

    /// Takes the particular free slot `slot` if the newest ArrayBuffer over it has `epoch`;
    /// `None` (and nothing changed) if the slot is not free or a newer ArrayBuffer was made.
    #[inline]
    pub fn take(&mut self, slot: Slot, epoch: u64) -> Option<*mut u8> {
        let m = self.meta.get(slot.0 as usize)?;
        if !m.free || m.epoch != epoch || epoch == 0 {
            return None;
        }
        self.unlink(slot.0);
        let c = self.chunk_of(slot);
        self.chunks[c].live += 1;
        Some(self.addr(slot))
    }

    /// Returns a slot taken by [`pop`](Self::pop) or [`take`](Self::take) to the head of the
    /// free list.
    ///
    /// The caller guarantees the slot is handed out and is returned once.
    #[inline]
    pub fn push(&mut self, slot: Slot) {
        debug_assert!(!self.meta[slot.0 as usize].free, "slot {slot:?} returned twice");
        let c = self.chunk_of(slot);
        self.chunks[c].live -= 1;
        self.meta[slot.0 as usize].loan = NIL;
        self.link_head(slot.0);
    }

    /// Gives the slot a new epoch, for a new ArrayBuffer made over it, and returns it.
    pub fn new_epoch(&mut self, slot: Slot) -> u64 {
        self.last_epoch += 1;
        self.meta[slot.0 as usize].epoch = self.last_epoch;
        self.last_epoch
    }

    /// The epoch of the newest ArrayBuffer over `slot` (0 if none, or if the slot's chunk is gone).
    pub fn epoch(&self, slot: Slot) -> u64 {
        match self.meta.get(slot.0 as usize) {
            Some(m) if self.chunks.contains(self.chunk_of(slot)) => m.epoch,
            _ => 0,
        }
    }

    /// Records which loan holds a handed-out slot.
    pub fn set_loan(&mut self, slot: Slot, loan: usize) {
        self.meta[slot.0 as usize].loan = loan as u32;
    }

    /// The loan that holds `slot`, if it is handed out under a recorded loan.
    pub fn loan(&self, slot: Slot) -> Option<usize> {
        let m = self.meta.get(slot.0 as usize)?;
        (!m.free && m.loan != NIL && self.chunks.contains(self.chunk_of(slot))).then_some(m.loan as usize)
    }

    /// Maps one more chunk and makes all its slots free. Takes [`SLAB_CHUNK_BYTES`] from the OS.
    #[cold]
    #[inline(never)]
    pub fn add_chunk(&mut self) -> io::Result<()> {
        let mut map = MmapMut::map_anon(SLAB_CHUNK_BYTES)?;
        let base = map.as_mut_ptr() as usize;
        let key = self.chunks.insert(Chunk { _map: map, base, live: 0 });
        let first =
            u32::try_from(key).ok().and_then(|k| k.checked_mul(self.per_chunk)).expect("slot numbers fit in u32");
        let end = first as usize + self.per_chunk as usize;
        if self.meta.len() < end {
            self.meta.resize(end, SlotMeta { prev: NIL, next: NIL, free: false, epoch: 0, loan: NIL });
        }
        // Highest index linked first, so the lowest address is at the head.
        for i in (first..end as u32).rev() {
            self.meta[i as usize].epoch = 0;
            self.meta[i as usize].loan = NIL;
            self.link_head(i);
        }
        Ok(())
    }

    /// Unmaps every chunk none of whose slots is handed out; returns the bytes given back.
    pub fn trim(&mut self) -> usize {
        let empty: Vec<usize> = self.chunks.iter().filter(|(_, c)| c.live == 0).map(|(k, _)| k).collect();
        for &k in &empty {
            let first = k as u32 * self.per_chunk;
            for i in first..first + self.per_chunk {
                self.unlink(i);
            }
            self.chunks.remove(k);
        }
        empty.len() * SLAB_CHUNK_BYTES
    }

    /// Whether the chunk of `slot` has no slot handed out.
    pub fn chunk_is_empty(&self, slot: Slot) -> bool {
        self.chunks[self.chunk_of(slot)].live == 0
    }

    /// Bytes taken from the OS by this class.
    pub fn reserved_bytes(&self) -> usize {
        self.chunks.len() * SLAB_CHUNK_BYTES
    }

    /// Free slots in mapped chunks.
    pub fn free_slots(&self) -> usize {
        self.free_count
    }

    /// Slots handed out.
    pub fn slots_in_use(&self) -> usize {
        self.chunks.len() * self.per_chunk as usize - self.free_count
    }
}

impl Drop for ClassSlab {
    /// A chunk with a slot still handed out when its class goes away holds parked memory (see
    /// [`Loan::parked`](crate::loan::Loan::parked)), which another thread may still use: it is
    /// never unmapped.
    fn drop(&mut self) {
        for chunk in self.chunks.drain() {
            if chunk.live != 0 {
                std::mem::forget(chunk._map);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freed_slots_are_reused_most_recent_first() {
        let mut s = ClassSlab::new(64);
        s.add_chunk().unwrap();
        let (a, pa) = s.pop().unwrap();
        let (b, pb) = s.pop().unwrap();
        assert_eq!(pb as usize - pa as usize, 64, "a fresh chunk is handed out in address order");
        s.push(a);
        s.push(b);
        assert_eq!(s.pop().unwrap().0, b);
        assert_eq!(s.pop().unwrap().0, a);
    }

    #[test]
    fn counts_balance_and_trim_returns_only_empty_chunks() {
        let mut s = ClassSlab::new(8192);
        s.add_chunk().unwrap();
        s.add_chunk().unwrap();
        assert_eq!(s.reserved_bytes(), 2 * SLAB_CHUNK_BYTES);
        let per = SLAB_CHUNK_BYTES / 8192;
        let taken: Vec<_> = (0..per + 1).map(|_| s.pop().unwrap().0).collect();
        assert_eq!(s.slots_in_use(), per + 1);
        assert_eq!(s.free_slots(), per - 1);
        assert_eq!(s.trim(), 0, "both chunks have live slots");
        for &slot in &taken[..per] {
            s.push(slot);
        }
        assert_eq!(s.trim(), SLAB_CHUNK_BYTES);
        assert_eq!(s.reserved_bytes(), SLAB_CHUNK_BYTES);
        assert_eq!(s.slots_in_use(), 1);
        assert_eq!(s.free_slots(), per - 1);
        s.push(taken[per]);
        assert_eq!(s.trim(), SLAB_CHUNK_BYTES);
        assert_eq!(s.free_slots(), 0);
        assert!(s.pop().is_none());
    }

    #[test]
    fn take_claims_a_free_slot_only_at_its_current_epoch() {
        let mut s = ClassSlab::new(128);
        s.add_chunk().unwrap();
        let (a, pa) = s.pop().unwrap();
        let e1 = s.new_epoch(a);
        s.set_loan(a, 7);
        assert_eq!(s.loan(a), Some(7));
        assert_eq!(s.take(a, e1), None, "not free");
        s.push(a);
        assert_eq!(s.loan(a), None);
        let (b, _) = s.pop().unwrap();
        assert_eq!(b, a, "the freed slot is on top");
        let e2 = s.new_epoch(a);
        assert!(e2 > e1);
        s.push(a);
        assert_eq!(s.take(a, e1), None, "a newer ArrayBuffer was made over it");
        assert_eq!(s.take(a, e2), Some(pa));
        assert_eq!(s.free_slots(), SLAB_CHUNK_BYTES / 128 - 1);
        s.push(a);
        // The slot is in the middle of the list now: take it out of there.
        let (c, _) = s.pop().unwrap();
        assert_eq!(c, a);
        let (d, _) = s.pop().unwrap();
        s.push(d);
        s.push(a);
        let (x, _) = s.pop().unwrap();
        s.push(x);
        assert_eq!(s.take(d, 0), None, "epoch 0 names no ArrayBuffer");
        let e3 = s.new_epoch(d);
        assert_eq!(s.take(d, e3), Some(s.addr(d)));
        assert_eq!(s.pop().unwrap().0, a);
    }

    #[test]
    fn epochs_do_not_survive_a_trimmed_chunk() {
        let mut s = ClassSlab::new(4096);
        s.add_chunk().unwrap();
        let (a, _) = s.pop().unwrap();
        let e = s.new_epoch(a);
        s.push(a);
        s.trim();
        assert_eq!(s.epoch(a), 0);
        assert_eq!(s.take(a, e), None, "the chunk is gone");
        s.add_chunk().unwrap();
        assert_eq!(s.take(a, e), None, "a new chunk at the same key is not the old memory");
    }

    #[test]
    fn slots_are_writable_memory() {
        let mut s = ClassSlab::new(24);
        s.add_chunk().unwrap();
        let (_, p) = s.pop().unwrap();
        assert_eq!(p as usize % 8, 0);
        // SAFETY: p points at a 24-byte slot of a live chunk that nothing else uses.
        unsafe {
            std::ptr::write_bytes(p, 0xAB, 24);
            assert_eq!(*p.add(23), 0xAB);
        }
    }
}
