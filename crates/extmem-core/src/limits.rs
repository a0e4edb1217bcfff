//! The default cap: half of the smaller of physical memory and the cgroup memory limit.

use std::fs;

/// Half of the smaller of physical memory and the cgroup (v2 or v1) memory limit.
pub fn default_max_bytes() -> usize {
    let physical = physical_memory();
    let limit = cgroup_limit().map_or(physical, |l| l.min(physical));
    (limit / 2).max(1)
}

fn physical_memory() -> usize {
    // SAFETY: sysconf only reads system configuration.
    let (pages, page) = unsafe { (libc::sysconf(libc::_SC_PHYS_PAGES), libc::sysconf(libc::_SC_PAGESIZE)) };
    if pages > 0 && page > 0 {
        (pages as usize).saturating_mul(page as usize)
    } else {
        usize::MAX
    }
}

fn cgroup_limit() -> Option<usize> {
    // cgroup v2 writes "max" for no limit; v1 writes a huge number.
    ["/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"]
        .iter()
        .filter_map(|p| fs::read_to_string(p).ok())
        .find_map(|s| s.trim().parse::<u64>().ok())
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_is_at_most_half_of_physical_memory() {
        let d = super::default_max_bytes();
        assert!(d > 0);
        assert!(d <= super::physical_memory() / 2);
    }
}
