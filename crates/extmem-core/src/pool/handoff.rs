//! Handing a loan from one thread to another without copying: [`Pool::share`] takes it out of its
//! Buffer's hands (the caller detached that Buffer) and puts it in transit under a secret;
//! [`Pool::adopt`], on any thread, gives it to a new Buffer there, once; [`Pool::reclaim_shared`]
//! ends it if no one will adopt it.
//!
//! Invariants: a loan in transit has no Buffer and no ArrayBuffer over its memory; it stays live
//! (counted in use, and in `in_transit_*`) until adopted or reclaimed; only the holder of its
//! secret can take it out of transit, and only once.

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;

use super::{Pool, PoolError};
use crate::loan::{Holder, LoanMemory};

/// A secret is 53 bits (exact as a JavaScript number) and never 0: the low [`MAC_BITS`] are an
/// unpredictable per-process keyed hash of the loan's token and its share number `n`, the high
/// bits are `n` modulo 2^20. So an earlier handle of the same loan (a replay) is told from a
/// forged one without keeping every secret: its `n` is below the loan's, and its hash matches.
const MAC_BITS: u32 = 33;
const SEQ_BITS: u32 = 20;

fn mac(token: u64, n: u32) -> u64 {
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    KEYS.get_or_init(RandomState::new).hash_one((token, n)) & ((1 << MAC_BITS) - 1)
}

/// The secret of share number `n` (from 1) of the loan of `token`.
fn secret_of(token: u64, n: u32) -> u64 {
    ((u64::from(n) & ((1 << SEQ_BITS) - 1)) << MAC_BITS | mac(token, n)).max(1)
}

/// Whether `secret` is the secret of an earlier share of the loan of `token`, whose latest share
/// is number `shares`.
fn is_earlier_secret(token: u64, shares: u32, secret: u64) -> bool {
    let low = (secret >> MAC_BITS) as u32;
    let span = 1u32 << SEQ_BITS;
    if low >= span || shares == 0 {
        return false;
    }
    // The latest share number below `shares` whose low bits are `low`.
    let back = (shares.wrapping_sub(low)) % span;
    let back = if back == 0 { span } else { back };
    shares.checked_sub(back).is_some_and(|n| n >= 1 && secret_of(token, n) == secret)
}

/// What [`Pool::share`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shared {
    /// The secret the handle carries.
    pub secret: u64,
    /// Bytes of the Buffer.
    pub size: usize,
    /// The loan's holder for the Buffer it had (the caller forgets what it no longer needs).
    pub holder: Holder,
}

impl Pool {
    /// Puts the loan of `token` (the Buffer at `addr`, `len` bytes, with one reference, which the
    /// caller has detached) in transit. Refused, with nothing changed, if it is not a live loan of
    /// this pool or is shared.
    pub fn share(&self, token: u64, addr: usize, len: usize) -> Result<Shared, PoolError> {
        let mut st = self.state.lock();
        let l = st.loan_mut(self.id, token, addr, len)?;
        if l.refs != 1 {
            return Err(PoolError::Shared);
        }
        l.shares = l.shares.wrapping_add(1).max(1);
        let secret = secret_of(token, l.shares);
        let (holder, size, external, bound, memory_slot) = (
            l.holder,
            l.requested,
            l.external,
            l.bound,
            match l.memory {
                LoanMemory::Slot { class, slot } => Some((class, slot)),
                _ => None,
            },
        );
        l.transit = Some(secret);
        l.holder = Holder { thread: 0, hint: 0, witness: 0 };
        l.external = 0;
        l.bound = false;
        match (bound, memory_slot) {
            // The slot's old ArrayBuffers must not end this loan when they are collected.
            (true, Some((class, slot))) => drop(st.classes[class].new_epoch(slot)),
            // Nor the mapping's.
            (true, None) => st.unbind_mapping(addr),
            _ => {}
        }
        st.counters.send(size, external);
        Ok(Shared { secret, size, holder })
    }

    /// Takes the loan of `token` out of transit for a new Buffer of `size` bytes, whose holder
    /// is `holder`; returns its address. [`PoolError::HandleUsed`] if it is not in transit (adopted
    /// or reclaimed already, or ended), [`PoolError::BadHandle`] if `secret` is not its secret,
    /// `size` not its size, or `token` names no loan of this pool. A handle of an earlier share of
    /// the same loan, replayed while the loan is in transit again, is [`PoolError::HandleUsed`].
    pub fn adopt(&self, token: u64, secret: u64, size: usize, holder: Holder) -> Result<*mut u8, PoolError> {
        let mut st = self.state.lock();
        let l = st.in_transit(self.id, token, secret)?;
        if l.requested != size {
            return Err(PoolError::BadHandle);
        }
        l.transit = None;
        l.holder = holder;
        l.external = l.requested;
        let addr = l.addr as *mut u8;
        st.counters.adopt(size);
        Ok(addr)
    }

    /// Ends the loan of `token` while it is in transit: its memory is the pool's again. Refused as
    /// [`Pool::adopt`] refuses.
    pub fn reclaim_shared(&self, token: u64, secret: u64) -> Result<(), PoolError> {
        let mut st = self.state.lock();
        let l = st.in_transit(self.id, token, secret)?;
        l.transit = None;
        let size = l.requested;
        st.counters.unsend(size);
        st.finish(&self.config, self.id, token);
        Ok(())
    }
}

impl super::State {
    /// The loan of `token` in transit under `secret`, or why not.
    fn in_transit(&mut self, pool: u64, token: u64, secret: u64) -> Result<&mut crate::loan::Loan, PoolError> {
        if crate::loan::untoken(token).is_none_or(|(p, _, _)| p != pool) {
            return Err(PoolError::BadHandle);
        }
        let l = self.any_loan_mut(pool, token).ok_or(PoolError::HandleUsed)?;
        match l.transit {
            Some(s) if s == secret => Ok(l),
            // An earlier handle of this loan, replayed after it was adopted (and maybe shared on).
            _ if is_earlier_secret(token, l.shares, secret) => Err(PoolError::HandleUsed),
            None => Err(PoolError::HandleUsed),
            Some(_) => Err(PoolError::BadHandle),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::{AllocRequest, Release};

    const HOLDER: Holder = Holder { thread: 1, hint: 2, witness: 0 };
    const THERE: Holder = Holder { thread: 3, hint: 4, witness: 0 };

    #[test]
    fn a_shared_loan_is_adopted_once_with_its_bytes_and_balances() {
        let p = Pool::new(8 << 20);
        for size in [100, 300_000] {
            let g = p.alloc(size, false, HOLDER).unwrap();
            // SAFETY: the grant's memory is `size` bytes, the test's alone.
            unsafe { std::ptr::write_bytes(g.addr, 0x42, size) };
            let before = p.stats();
            let s = p.share(g.token, g.addr as usize, size).unwrap();
            assert_eq!((s.size, s.holder), (size, HOLDER));
            let during = p.stats();
            assert_eq!((during.counters.in_transit_buffers, during.counters.in_transit_bytes), (1, size));
            assert_eq!(during.counters.in_use_bytes, before.counters.in_use_bytes, "still in use");
            assert_eq!(during.counters.external_bytes, before.counters.external_bytes - size);
            assert!(p.live(0).iter().any(|l| l.in_transit));
            assert_eq!(p.release(g.token, g.addr as usize, size), Err(PoolError::NotPooled), "no Buffer has it");
            assert_eq!(p.adopt(g.token, s.secret ^ 1, size, THERE), Err(PoolError::BadHandle));
            assert_eq!(p.adopt(g.token, s.secret, size + 1, THERE), Err(PoolError::BadHandle), "a lie about the size");
            let addr = p.adopt(g.token, s.secret, size, THERE).unwrap();
            assert_eq!(addr, g.addr);
            // SAFETY: as above.
            assert!(unsafe { std::slice::from_raw_parts(addr, size) }.iter().all(|&b| b == 0x42));
            assert_eq!(p.adopt(g.token, s.secret, size, THERE), Err(PoolError::HandleUsed), "adopted once");
            assert_eq!(p.reclaim_shared(g.token, s.secret), Err(PoolError::HandleUsed));
            assert_eq!(p.release(g.token, addr as usize, size), Ok(Release::Last(THERE)));
            p.finish_release(g.token).unwrap();
        }
        let s = p.stats();
        assert_eq!((s.counters.in_use_bytes, s.counters.external_bytes, s.live_buffers), (0, 0, 0));
        assert_eq!((s.counters.in_transit_buffers, s.counters.in_transit_bytes), (0, 0));
    }

    #[test]
    fn a_loan_in_transit_is_reclaimed_from_its_handle_and_refusals_change_nothing() {
        let p = Pool::new(8 << 20);
        let other = Pool::new(8 << 20);
        let g = p.alloc(5000, false, HOLDER).unwrap();
        p.retain(g.token, g.addr as usize, 5000).unwrap();
        assert_eq!(p.share(g.token, g.addr as usize, 5000), Err(PoolError::Shared));
        p.release(g.token, g.addr as usize, 5000).unwrap();
        let s = p.share(g.token, g.addr as usize, 5000).unwrap();
        assert_eq!(other.adopt(g.token, s.secret, 5000, THERE), Err(PoolError::BadHandle), "another pool's handle");
        assert_eq!(p.share(g.token, g.addr as usize, 5000), Err(PoolError::NotPooled), "already in transit");
        p.reclaim_shared(g.token, s.secret).unwrap();
        assert_eq!(p.adopt(g.token, s.secret, 5000, THERE), Err(PoolError::HandleUsed));
        let st = p.stats();
        assert_eq!((st.live_buffers, st.counters.in_use_bytes, st.counters.in_transit_buffers), (0, 0, 0));
        assert_eq!(st.counters.releases, 1);
        let g2 = p.alloc_with(AllocRequest::new(5000, false), HOLDER).unwrap();
        assert_eq!(g2.addr, g.addr, "the memory is lent again");
    }

    #[test]
    fn a_replayed_handle_is_told_used_however_often_the_loan_was_shared_on_and_a_forged_one_is_not() {
        let p = Pool::new(8 << 20);
        let g = p.alloc(100, false, HOLDER).unwrap();
        let mut handles = Vec::new();
        let mut addr = g.addr as usize;
        for _ in 0..5 {
            let s = p.share(g.token, addr, 100).unwrap();
            handles.push(s.secret);
            for &old in &handles[..handles.len() - 1] {
                assert_eq!(p.adopt(g.token, old, 100, THERE), Err(PoolError::HandleUsed), "replayed in transit");
                assert_eq!(p.reclaim_shared(g.token, old), Err(PoolError::HandleUsed));
            }
            let forged = s.secret ^ 1;
            assert_eq!(p.adopt(g.token, forged, 100, THERE), Err(PoolError::BadHandle));
            addr = p.adopt(g.token, s.secret, 100, THERE).unwrap() as usize;
            for &old in &handles {
                assert_eq!(p.adopt(g.token, old, 100, THERE), Err(PoolError::HandleUsed), "replayed while adopted");
            }
        }
        assert!(handles.iter().all(|&s| s != 0 && s < 1 << 53));
        p.release(g.token, addr, 100).unwrap();
        p.finish_release(g.token).unwrap();
    }
}
