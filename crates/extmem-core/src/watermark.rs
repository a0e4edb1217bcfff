//! Watermark levels over utilization (`inUseBytes / maxBytes`), with hysteresis on the way down.
//!
//! Rising, the level is the highest one whose threshold utilization has reached. Falling, every
//! threshold is lowered by `hysteresis`, so a pool that hovers at a boundary (one allocation in,
//! one release out) changes level once, not on every call.

use std::fmt;

/// How close the pool is to its cap, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    /// Below the warning threshold.
    Normal = 0,
    /// At or above `warning`.
    Warning = 1,
    /// At or above `critical`.
    Critical = 2,
    /// At or above `shedding`.
    Shedding = 3,
}

impl Level {
    /// Every level, lowest first (in the order of their indexes, `as usize`).
    pub const ALL: [Level; 4] = [Level::Normal, Level::Warning, Level::Critical, Level::Shedding];

    /// The level's name as JavaScript sees it.
    pub fn name(self) -> &'static str {
        match self {
            Level::Normal => "normal",
            Level::Warning => "warning",
            Level::Critical => "critical",
            Level::Shedding => "shedding",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Thresholds of the levels, as fractions of `maxBytes`.
///
/// Invariant (checked by [`Watermarks::new`]): `0 < warning < critical < shedding <= 1` and
/// `0 <= hysteresis < warning`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Watermarks {
    warning: f64,
    critical: f64,
    shedding: f64,
    hysteresis: f64,
}

impl Default for Watermarks {
    /// 0.70 / 0.85 / 0.95, falling back 0.02 below a threshold.
    fn default() -> Self {
        Watermarks { warning: 0.70, critical: 0.85, shedding: 0.95, hysteresis: 0.02 }
    }
}

/// Which part of the invariant of [`Watermarks`] a set of thresholds breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatermarksError {
    /// Not `0 < warning < critical < shedding <= 1`.
    Order,
    /// Not `0 <= hysteresis < warning`.
    Hysteresis,
}

impl Watermarks {
    /// Thresholds, or which part of the invariant they break.
    pub fn new(warning: f64, critical: f64, shedding: f64, hysteresis: f64) -> Result<Self, WatermarksError> {
        if !(0.0 < warning && warning < critical && critical < shedding && shedding <= 1.0) {
            return Err(WatermarksError::Order);
        }
        if !(0.0..warning).contains(&hysteresis) {
            return Err(WatermarksError::Hysteresis);
        }
        Ok(Watermarks { warning, critical, shedding, hysteresis })
    }

    /// `[warning, critical, shedding, hysteresis]`.
    pub fn values(&self) -> [f64; 4] {
        [self.warning, self.critical, self.shedding, self.hysteresis]
    }

    fn threshold(&self, level: Level) -> f64 {
        match level {
            Level::Normal => f64::NEG_INFINITY,
            Level::Warning => self.warning,
            Level::Critical => self.critical,
            Level::Shedding => self.shedding,
        }
    }

    /// The utilizations `(lo, hi)` between which the level stays `current`: it falls below `lo`
    /// and rises at `hi` (infinite where it cannot move).
    pub fn band(&self, current: Level) -> (f64, f64) {
        let lo = match current {
            Level::Normal => f64::NEG_INFINITY,
            l => self.threshold(l) - self.hysteresis,
        };
        let hi = match current {
            Level::Normal => self.warning,
            Level::Warning => self.critical,
            Level::Critical => self.shedding,
            Level::Shedding => f64::INFINITY,
        };
        (lo, hi)
    }

    /// The level after utilization moved to `utilization`, coming from `current`.
    pub fn next(&self, current: Level, utilization: f64) -> Level {
        const ALL: [Level; 4] = [Level::Shedding, Level::Critical, Level::Warning, Level::Normal];
        let raw = ALL.into_iter().find(|&l| utilization >= self.threshold(l)).unwrap_or(Level::Normal);
        if raw >= current {
            return raw;
        }
        ALL.into_iter()
            .filter(|&l| l <= current)
            .find(|&l| utilization >= self.threshold(l) - self.hysteresis)
            .unwrap_or(Level::Normal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Level::*;

    #[test]
    fn rising_takes_the_highest_threshold_reached() {
        let w = Watermarks::default();
        assert_eq!(w.next(Normal, 0.69), Normal);
        assert_eq!(w.next(Normal, 0.70), Warning);
        assert_eq!(w.next(Normal, 0.90), Critical);
        assert_eq!(w.next(Warning, 0.95), Shedding);
    }

    #[test]
    fn falling_waits_for_the_hysteresis_band() {
        let w = Watermarks::default();
        assert_eq!(w.next(Warning, 0.69), Warning, "inside the band");
        assert_eq!(w.next(Warning, 0.68), Warning, "at the band's edge");
        assert_eq!(w.next(Warning, 0.679), Normal);
        assert_eq!(w.next(Shedding, 0.94), Shedding);
        assert_eq!(w.next(Shedding, 0.90), Critical);
        assert_eq!(w.next(Shedding, 0.10), Normal);
    }

    #[test]
    fn the_band_of_a_level_is_where_next_keeps_it() {
        let w = Watermarks::default();
        for level in Level::ALL {
            let (lo, hi) = w.band(level);
            for u in [0.0, 0.3, 0.679, 0.68, 0.69, 0.7, 0.83, 0.84, 0.85, 0.93, 0.94, 0.95, 1.0] {
                assert_eq!(w.next(level, u) == level, u >= lo && u < hi, "{level:?} at {u}");
            }
        }
    }

    #[test]
    fn thresholds_must_increase_within_0_and_1() {
        assert!(Watermarks::new(0.5, 0.6, 0.7, 0.0).is_ok());
        assert!(Watermarks::new(0.5, 0.6, 1.0, 0.1).is_ok());
        assert_eq!(Watermarks::new(0.6, 0.6, 0.7, 0.0), Err(WatermarksError::Order));
        assert_eq!(Watermarks::new(0.0, 0.6, 0.7, 0.0), Err(WatermarksError::Order));
        assert_eq!(Watermarks::new(0.5, 0.6, 1.1, 0.0), Err(WatermarksError::Order));
        assert_eq!(Watermarks::new(0.5, 0.6, 0.7, 0.5), Err(WatermarksError::Hysteresis));
        assert_eq!(Watermarks::new(0.5, 0.6, 0.7, -0.1), Err(WatermarksError::Hysteresis));
        assert_eq!(Watermarks::new(f64::NAN, 0.6, 0.7, 0.0), Err(WatermarksError::Order));
    }
}
