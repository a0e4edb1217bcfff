//! Finalizer hints: what Node hands back when an external ArrayBuffer of a pool is collected, and
//! the finalizer that accounts for it.

use std::ffi::c_void;
use std::sync::Arc;

use napi::sys;

use crate::escape;
use extmem_core::loan::Holder;
use extmem_core::pool::{CacheBlock, MappingRef, Pool, Reclaimed, SlotRef};

/// The finalizer hint of one external ArrayBuffer. Created with it; freed by its finalizer, which
/// Node runs exactly once, after the ArrayBuffer (with every ArrayBuffer it was transferred to) is
/// collected, or after it was detached and its record collected. The pool's `Arc` keeps the
/// pool alive for as long as any of its ArrayBuffers can be finalized, so a Buffer may outlive
/// the JavaScript `Pool` object.
#[derive(Debug)]
pub enum Hint {
    /// A Buffer made for one loan; detached at its release.
    Loan {
        /// The pool.
        pool: Arc<Pool>,
        /// The loan, until it ends by release (then its finalizer finds nothing to reclaim, even
        /// if the token's key and generation name a newer loan by then).
        token: Option<u64>,
    },
    /// An ArrayBuffer over a whole slab slot, kept by JavaScript across loans of that slot.
    Slot {
        /// The pool.
        pool: Arc<Pool>,
        /// The slot and the ArrayBuffer's epoch.
        slot: SlotRef,
        /// Its length: the slot's size.
        bytes: usize,
    },
    /// An ArrayBuffer over a whole large mapping, kept by JavaScript across loans of it (see
    /// `extmem_core::pool::bound_map`).
    Mapping {
        /// The pool.
        pool: Arc<Pool>,
        /// The mapping, its length and the ArrayBuffer's epoch.
        at: MappingRef,
    },
    /// The ArrayBuffer over a thread's cache block (see `crate::cache`): the cache closes when
    /// it is collected.
    Cache {
        /// The pool.
        pool: Arc<Pool>,
        /// The cache's id.
        id: u64,
        /// Keeps the block's memory alive as long as the ArrayBuffer.
        _block: Arc<CacheBlock>,
    },
}

impl Hint {
    /// The hint as a raw pointer, owned by Node once the ArrayBuffer is made.
    pub fn into_raw(self) -> *mut c_void {
        Box::into_raw(Box::new(self)).cast()
    }

    /// Sets the token of a [`Hint::Loan`] (no effect on other hints).
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw) and has not been finalized; no one else
    /// touches it meanwhile (it is only touched on its Buffer's thread).
    pub unsafe fn set_token(raw: *mut c_void, new: Option<u64>) {
        // SAFETY: per the contract.
        if let Hint::Loan { token, .. } = unsafe { &mut *raw.cast::<Hint>() } {
            *token = new;
        }
    }

    /// Makes the finalizer of a loan's Buffer find nothing to reclaim, once the loan ended (or
    /// left its thread) by other means than that finalizer: it runs later, maybe once the token's
    /// key and generation name a new loan. `raw` is the address of the loan's hint, which the core
    /// keeps as [`Holder::hint`]: 0 for a loan lent through no [`Hint::Loan`].
    ///
    /// # Safety
    /// As for [`set_token`](Self::set_token), unless `raw` is 0: Node has not finalized the hint
    /// (the memory was attached until now), and this is the thread that lent the loan.
    pub unsafe fn forget_loan(raw: usize) {
        if raw != 0 {
            // SAFETY: per the contract.
            unsafe { Hint::set_token(raw as *mut c_void, None) };
        }
    }

    /// Takes back a hint that Node never took.
    ///
    /// # Safety
    /// `raw` came from [`into_raw`](Self::into_raw) and was not handed to Node.
    pub unsafe fn drop_raw(raw: *mut c_void) {
        // SAFETY: per the contract.
        drop(unsafe { Box::from_raw(raw.cast::<Hint>()) });
    }
}

/// Accounts for a collected ArrayBuffer: a loan whose Buffer was dropped without release ends
/// (a GC reclaim), or is parked if its thread is ending while its memory may be alive in another
/// thread (see [`crate::escape`]); a released loan's Buffer finds nothing to do.
///
/// # Safety
/// Called by Node once per external ArrayBuffer, on the thread of the env that made it, with the
/// hint given at creation.
pub unsafe extern "C" fn finalize(env: sys::napi_env, _data: *mut c_void, hint: *mut c_void) {
    // SAFETY: `hint` came from `Hint::into_raw` and Node finalizes each ArrayBuffer once.
    let hint = unsafe { Box::from_raw(hint.cast::<Hint>()) };
    // SAFETY: the env that made the loans' witnesses, on its thread, inside a finalizer.
    let may_be_reachable = |holder: &Holder| unsafe { escape::may_be_reachable(env, holder.witness) };
    let outcome = match *hint {
        Hint::Loan { pool, token: Some(token) } => pool.reclaim_unless(token, may_be_reachable),
        Hint::Loan { token: None, .. } => None,
        Hint::Slot { pool, slot, bytes } => pool.slot_buffer_finalized(slot, bytes, may_be_reachable),
        Hint::Mapping { pool, at } => pool.mapping_buffer_finalized(at, may_be_reachable),
        Hint::Cache { pool, id, .. } => {
            pool.cache_close(id);
            None
        }
    };
    if let Some(Reclaimed::Ended(holder) | Reclaimed::Parked(holder)) = outcome {
        // SAFETY: as above; the loan no longer needs its witness.
        unsafe { escape::forget(env, holder.witness) };
    }
}
