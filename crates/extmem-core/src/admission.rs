//! Graded admission: what an allocation gets at each watermark level (the table below, which the
//! README states in brief and docs/api.md's "Watching memory pressure" in full, for users).
//!
//! | level    | normal priority                     | essential          |
//! |----------|-------------------------------------|--------------------|
//! | normal   | allowed                             | allowed            |
//! | warning  | sizes above 8 KiB throttled         | allowed            |
//! | critical | throttled                           | allowed            |
//! | shedding | refused as exhausted (shed)         | allowed up to cap  |
//!
//! With [`Admission::Cap`] only the hard cap refuses.

use crate::size_class::SMALL_MAX;
use crate::watermark::Level;

/// Admission policy of a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Admission {
    /// Refuse by level, as in the table.
    #[default]
    Graded,
    /// Refuse only at the hard cap.
    Cap,
}

/// Priority of one allocation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Priority {
    /// Ordinary work, which pressure may refuse.
    #[default]
    Normal,
    /// Work that must go on under pressure (for example, what frees memory); only the cap refuses it.
    Essential,
}

/// Why admission refused an allocation before the cap was even consulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Refused at warning (large) or critical (`ERR_EXTMEM_THROTTLED`).
    Throttled,
    /// Refused at shedding (`ERR_EXTMEM_EXHAUSTED`).
    Shed,
}

/// The verdict for an allocation of `size` bytes at `level`.
pub fn admit(policy: Admission, level: Level, priority: Priority, size: usize) -> Result<(), Refusal> {
    if policy == Admission::Cap || priority == Priority::Essential {
        return Ok(());
    }
    match level {
        Level::Normal => Ok(()),
        Level::Warning if size <= SMALL_MAX => Ok(()),
        Level::Warning | Level::Critical => Err(Refusal::Throttled),
        Level::Shedding => Err(Refusal::Shed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    #[test]
    fn the_table_cell_by_cell() {
        let g = Admission::Graded;
        let (n, e) = (Priority::Normal, Priority::Essential);
        for (level, small, large) in [
            (Normal, Ok(()), Ok(())),
            (Warning, Ok(()), Err(Refusal::Throttled)),
            (Critical, Err(Refusal::Throttled), Err(Refusal::Throttled)),
            (Shedding, Err(Refusal::Shed), Err(Refusal::Shed)),
        ] {
            assert_eq!(admit(g, level, n, SMALL_MAX), small, "{level} small");
            assert_eq!(admit(g, level, n, SMALL_MAX + 1), large, "{level} large");
            assert_eq!(admit(g, level, e, 1 << 20), Ok(()), "{level} essential");
            assert_eq!(admit(Admission::Cap, level, n, 1 << 20), Ok(()), "{level} cap-only");
        }
    }
}
