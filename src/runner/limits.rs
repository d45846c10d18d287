//! Operating-system limits a large run would otherwise hit mid-run: file descriptors (one
//! per connection) and memory mappings (two per user stack).

/// What the run may need and what the system allows.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(
        "{users} users need about {needed} memory mappings but vm.max_map_count is {max} \
         and could not be raised ({reason}); run `sysctl -w vm.max_map_count={needed}` \
         as root, or use fewer users per process (--segment is planned for scaling out)"
    )]
    MapCount {
        users: u64,
        needed: u64,
        max: u64,
        reason: String,
    },
}

/// Open files wanted: enough for a connection per user at the largest runs we plan for.
const NOFILE_WANTED: u64 = 1 << 20;

/// Raises the open-files limit: the hard limit too when allowed (root), else the soft
/// limit up to the hard one. Returns the soft limit now in force.
pub fn raise_nofile() -> u64 {
    use rlimit::Resource;
    if let Ok((soft, hard)) = rlimit::getrlimit(Resource::NOFILE) {
        let nr_open = std::fs::read_to_string("/proc/sys/fs/nr_open")
            .ok()
            .and_then(|s| s.trim().parse::<u64>().ok())
            .unwrap_or(hard);
        let want = NOFILE_WANTED.min(nr_open).max(hard);
        if want > soft && rlimit::setrlimit(Resource::NOFILE, want, want).is_ok() {
            return want;
        }
    }
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(1024)
}

const MAP_COUNT: &str = "/proc/sys/vm/max_map_count";

/// Mappings needed for `users` stacks (each stack and its guard page), plus headroom for
/// the allocator, the runtime and libraries.
pub fn maps_needed(users: u64) -> u64 {
    users * 2 + 4096
}

/// Makes sure `users` stacks fit under `vm.max_map_count`, raising it when allowed.
pub fn ensure_map_count(users: u64) -> Result<(), LimitError> {
    let Some(max) = std::fs::read_to_string(MAP_COUNT)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok())
    else {
        return Ok(()); // Not Linux, or not readable: nothing to check.
    };
    let needed = maps_needed(users);
    if needed <= max {
        return Ok(());
    }
    std::fs::write(MAP_COUNT, needed.to_string()).map_err(|e| LimitError::MapCount {
        users,
        needed,
        max,
        reason: e.to_string(),
    })
}

/// Warns when the connections users may open could exceed the open-files limit.
pub fn nofile_warning(users: u64, limit: u64) -> Option<String> {
    (users + 64 > limit).then(|| {
        format!(
            "warning: {users} users may open more connections than the open-files limit \
             ({limit}); raise it with `ulimit -n` (hard limit) or expect connect errors"
        )
    })
}
