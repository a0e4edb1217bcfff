//! Compile-time checks of the layouts JavaScript and the binding share (the scratch array's
//! records, a batch release's `io`): every index inside the numbers JavaScript provides, and no
//! two figures of one record at the same index.

/// Whether no two of `at` are equal.
pub const fn distinct<const N: usize>(at: [usize; N]) -> bool {
    let mut i = 0;
    while i < N {
        let mut j = i + 1;
        while j < N {
            if at[i] == at[j] {
                return false;
            }
            j += 1;
        }
        i += 1;
    }
    true
}

/// Whether every one of `at` is below `len`.
pub const fn all_below<const N: usize>(at: [usize; N], len: usize) -> bool {
    let mut i = 0;
    while i < N {
        if at[i] >= len {
            return false;
        }
        i += 1;
    }
    true
}
