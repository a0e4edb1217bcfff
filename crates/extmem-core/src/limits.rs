//! The default cap: half of the smaller of physical memory and the container's memory limit.

use crate::os;

/// Half of the smaller of physical memory and the container (cgroup v2 or v1) memory limit.
pub fn default_max_bytes() -> usize {
    let physical = os::physical_memory().unwrap_or(usize::MAX);
    let limit = os::memory_limit().map_or(physical, |l| l.min(physical));
    (limit / 2).max(1)
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_is_at_most_half_of_physical_memory() {
        let d = super::default_max_bytes();
        assert!(d > 0);
        assert!(d <= crate::os::physical_memory().unwrap() / 2);
    }
}
