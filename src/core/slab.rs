//! The slots of one size class, carved from chunks of anonymous memory.
//!
//! A chunk is [`SLAB_CHUNK_BYTES`] of page-aligned anonymous memory, owned by a [`memmap2::MmapMut`]
//! and unmapped when the chunk is dropped. When a class has no free slot it maps one more chunk
//! and pushes all of its slots onto the free stack. Freed slots go back on top of the stack, so
//! the most recently freed (hottest) slot is handed out first.

use std::io;

use memmap2::MmapMut;

/// Bytes of one slab chunk: the unit in which the slab pool takes memory from the OS.
pub const SLAB_CHUNK_BYTES: usize = 64 * 1024;

const _: () = assert!(SLAB_CHUNK_BYTES % super::size_class::SMALL_MAX == 0);

/// One slot of a class: its chunk and its index in that chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    chunk: u32,
    index: u32,
}

#[derive(Debug)]
struct Chunk {
    /// Owns the memory; `base` points into it for as long as the chunk lives.
    _map: MmapMut,
    base: usize,
    /// Slots of this chunk that are handed out (not on the free stack).
    live: u32,
}

/// The chunks and free slots of one size class.
#[derive(Debug)]
pub struct ClassSlab {
    slot_size: usize,
    chunks: slab::Slab<Chunk>,
    /// Free slots; the top (end) is the most recently freed. Every slot of every chunk is either
    /// here exactly once or handed out (counted in its chunk's `live`), never both.
    free: Vec<Slot>,
}

impl ClassSlab {
    /// An empty slab for slots of `slot_size` bytes; it maps nothing until asked.
    pub fn new(slot_size: usize) -> Self {
        debug_assert!(slot_size > 0 && SLAB_CHUNK_BYTES % slot_size < SLAB_CHUNK_BYTES);
        ClassSlab { slot_size, chunks: slab::Slab::new(), free: Vec::new() }
    }

    /// Capacity of each slot.
    pub fn slot_size(&self) -> usize {
        self.slot_size
    }

    fn slots_per_chunk(&self) -> usize {
        SLAB_CHUNK_BYTES / self.slot_size
    }

    /// Takes the most recently freed slot, or `None` if a chunk must be added first.
    #[inline]
    pub fn pop(&mut self) -> Option<(Slot, *mut u8)> {
        let slot = self.free.pop()?;
        let chunk = &mut self.chunks[slot.chunk as usize];
        chunk.live += 1;
        Some((slot, (chunk.base + slot.index as usize * self.slot_size) as *mut u8))
    }

    /// Returns a slot taken by [`pop`](Self::pop) to the top of the free stack.
    ///
    /// The caller guarantees the slot is handed out and is returned once.
    #[inline]
    pub fn push(&mut self, slot: Slot) {
        let chunk = &mut self.chunks[slot.chunk as usize];
        debug_assert!(chunk.live > 0, "slot {slot:?} returned twice");
        chunk.live -= 1;
        self.free.push(slot);
    }

    /// Maps one more chunk and makes all its slots free. Takes [`SLAB_CHUNK_BYTES`] from the OS.
    #[cold]
    #[inline(never)]
    pub fn add_chunk(&mut self) -> io::Result<()> {
        let mut map = MmapMut::map_anon(SLAB_CHUNK_BYTES)?;
        let base = map.as_mut_ptr() as usize;
        let key = self.chunks.insert(Chunk { _map: map, base, live: 0 });
        let key = u32::try_from(key).expect("fewer than 2^32 chunks per class");
        let n = self.slots_per_chunk() as u32;
        // Lowest address on top, so a fresh chunk is handed out in address order.
        self.free.extend((0..n).rev().map(|index| Slot { chunk: key, index }));
        Ok(())
    }

    /// Unmaps every chunk none of whose slots is handed out; returns the bytes given back.
    pub fn trim(&mut self) -> usize {
        let empty: Vec<usize> =
            self.chunks.iter().filter(|(_, c)| c.live == 0).map(|(k, _)| k).collect();
        if empty.is_empty() {
            return 0;
        }
        self.free.retain(|s| self.chunks[s.chunk as usize].live != 0);
        for &k in &empty {
            self.chunks.remove(k);
        }
        empty.len() * SLAB_CHUNK_BYTES
    }

    /// Whether the chunk of `slot` has no slot handed out.
    pub fn chunk_is_empty(&self, slot: Slot) -> bool {
        self.chunks[slot.chunk as usize].live == 0
    }

    /// Bytes taken from the OS by this class.
    pub fn reserved_bytes(&self) -> usize {
        self.chunks.len() * SLAB_CHUNK_BYTES
    }

    /// Slots on the free stack.
    pub fn free_slots(&self) -> usize {
        self.free.len()
    }

    /// Slots handed out.
    pub fn slots_in_use(&self) -> usize {
        self.chunks.len() * self.slots_per_chunk() - self.free.len()
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
