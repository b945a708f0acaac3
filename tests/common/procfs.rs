//! The sidecar's process as the kernel sees it (Linux `/proc`): its pid, open file descriptors,
//! resident memory (`VmRSS`) and peak resident memory (`VmHWM`).
//!
//! The pid comes from the spawned child itself ([`Sidecar::pid`]), never from a search of
//! `/proc`, which could run before the child had exec'd and find nothing.

use super::sidecar::{Sidecar, SidecarBuilder};

/// Spawns `builder` and returns the sidecar with its pid.
pub fn spawn_tracked(builder: SidecarBuilder) -> (Sidecar, u32) {
    let sidecar = builder.spawn();
    let pid = sidecar.pid();
    (sidecar, pid)
}

/// A numeric field of `/proc/<pid>/status` (memory fields are in KiB).
fn status_field(pid: u32, name: &str) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| {
        let value = line.strip_prefix(name)?.strip_prefix(':')?;
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Resident memory in KiB.
pub fn vm_rss_kib(pid: u32) -> u64 {
    status_field(pid, "VmRSS").unwrap_or_else(|| panic!("no VmRSS for pid {pid}")) as u64
}

/// Peak resident memory since the process started, in KiB.
pub fn vm_hwm_kib(pid: u32) -> u64 {
    status_field(pid, "VmHWM").unwrap_or_else(|| panic!("no VmHWM for pid {pid}")) as u64
}

/// Number of open file descriptors.
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

/// Number of TCP sockets among the open file descriptors.
pub fn socket_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.to_string_lossy().starts_with("socket:"))
        .count()
}

/// Number of threads.
pub fn thread_count(pid: u32) -> u64 {
    status_field(pid, "Threads").unwrap_or(0) as u64
}
