//! Size classes of the slab pool: which slot capacity serves a request of `n` bytes.
//!
//! Classes are spaced as jemalloc and mimalloc space them: multiples of 8 up to 64, then four per
//! doubling (`80, 96, 112, 128, 160, …, 8192`). The waste of rounding a request up to its class is
//! therefore below 25 % (below 8 bytes for requests of at most 64 bytes), and every class is a
//! multiple of [`MIN_ALIGN`], so every slot carved from a page-aligned chunk is 8-byte aligned.

/// Largest request served by the slab pool; larger requests get a mapping of their own.
pub const SMALL_MAX: usize = 8192;

/// Alignment of every slot: the smallest class, and a divisor of every class.
pub const MIN_ALIGN: usize = 8;

/// Number of classes below and including 64 bytes (spaced by [`MIN_ALIGN`]).
const LINEAR_CLASSES: usize = 64 / MIN_ALIGN;

/// Classes per doubling above 64 bytes.
const PER_DOUBLING: usize = 4;

/// Number of size classes: 8 linear ones, then 4 for each doubling from 64 to 8192.
pub const CLASS_COUNT: usize = LINEAR_CLASSES + PER_DOUBLING * 7;

/// Slot capacity of each class, ascending.
pub const CLASS_SIZES: [usize; CLASS_COUNT] = class_sizes();

const fn class_sizes() -> [usize; CLASS_COUNT] {
    let mut sizes = [0; CLASS_COUNT];
    let mut i = 0;
    while i < LINEAR_CLASSES {
        sizes[i] = (i + 1) * MIN_ALIGN;
        i += 1;
    }
    let mut base = 64;
    while i < CLASS_COUNT {
        let step = base / PER_DOUBLING;
        let mut k = 1;
        while k <= PER_DOUBLING {
            sizes[i] = base + k * step;
            i += 1;
            k += 1;
        }
        base *= 2;
    }
    sizes
}

const _: () = assert!(CLASS_SIZES[CLASS_COUNT - 1] == SMALL_MAX, "the last class is SMALL_MAX");
const _: () = assert!(SMALL_MAX.is_power_of_two());

/// Index of the smallest class whose slots hold `size` bytes.
///
/// `size` must be in `1..=SMALL_MAX`.
#[inline]
pub fn class_of(size: usize) -> usize {
    debug_assert!((1..=SMALL_MAX).contains(&size), "class_of({size}) is outside 1..={SMALL_MAX}");
    if size <= 64 {
        return size.div_ceil(MIN_ALIGN) - 1;
    }
    // size is in (2^b, 2^(b+1)] with b >= 6.
    let b = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
    let step = 1usize << (b - 2);
    let within = (size - (1 << b)).div_ceil(step); // 1..=4
    LINEAR_CLASSES + (b - 6) * PER_DOUBLING + within - 1
}

/// Alignments a caller may ask for: the default, a cache line, a page.
pub const ALIGNMENTS: [usize; 3] = [MIN_ALIGN, 64, 4096];

/// Index of the smallest class that holds `size` bytes and whose slots are all `align`-aligned.
///
/// Slots of a class sit at multiples of its size from a page-aligned chunk start, so a class
/// whose size is a multiple of `align` has only aligned slots. `align` must be one of
/// [`ALIGNMENTS`]; such a class always exists, since [`SMALL_MAX`] is a multiple of each.
#[inline]
pub fn class_for(size: usize, align: usize) -> usize {
    debug_assert!(ALIGNMENTS.contains(&align), "unsupported alignment {align}");
    let mut c = class_of(size);
    while !CLASS_SIZES[c].is_multiple_of(align) {
        c += 1;
    }
    c
}

const _: () = assert!(SMALL_MAX.is_multiple_of(4096), "every alignment has a class");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_ascending_multiples_of_the_alignment() {
        for w in CLASS_SIZES.windows(2) {
            assert!(w[0] < w[1]);
        }
        for &c in &CLASS_SIZES {
            assert_eq!(c % MIN_ALIGN, 0);
        }
        assert_eq!(CLASS_SIZES[..9], [8, 16, 24, 32, 40, 48, 56, 64, 80]);
    }

    #[test]
    fn every_size_maps_to_the_smallest_class_that_holds_it() {
        for size in 1..=SMALL_MAX {
            let c = class_of(size);
            assert!(CLASS_SIZES[c] >= size, "class {c} too small for {size}");
            if c > 0 {
                assert!(CLASS_SIZES[c - 1] < size, "class {} would hold {size}", c - 1);
            }
        }
    }

    #[test]
    fn aligned_classes_are_the_smallest_aligned_ones() {
        for &align in &ALIGNMENTS {
            for size in 1..=SMALL_MAX {
                let c = class_for(size, align);
                assert!(CLASS_SIZES[c] >= size && CLASS_SIZES[c].is_multiple_of(align));
                assert!(CLASS_SIZES[..c].iter().all(|&s| s < size || s % align != 0));
            }
        }
        assert_eq!(CLASS_SIZES[class_for(100, 64)], 128);
        assert_eq!(CLASS_SIZES[class_for(100, 4096)], 4096);
        assert_eq!(CLASS_SIZES[class_for(4097, 4096)], 8192);
    }

    #[test]
    fn rounding_wastes_less_than_a_quarter() {
        for size in 65..=SMALL_MAX {
            assert!(CLASS_SIZES[class_of(size)] - size < size / 4 + 1);
        }
    }
}
