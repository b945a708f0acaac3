//! The sidecar's process as the kernel sees it (Linux `/proc`): its pid, open file descriptors,
//! resident memory (`VmRSS`) and peak resident memory (`VmHWM`).
//!
//! [`Sidecar`] does not expose its child's pid, so [`spawn_tracked`] gives the child a unique
//! environment variable and finds the process that carries it.

use std::sync::atomic::{AtomicUsize, Ordering};

use super::sidecar::{Sidecar, SidecarBuilder};

const TAG_VAR: &str = "LLM_SIDECAR_TEST_PROCESS_TAG";

/// Spawns `builder` and returns the sidecar with its pid.
pub fn spawn_tracked(builder: SidecarBuilder) -> (Sidecar, u32) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let tag = format!(
        "{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let sidecar = builder.env(TAG_VAR, &tag).spawn();
    let pid = find_pid(&format!("{TAG_VAR}={tag}"))
        .unwrap_or_else(|| panic!("no process carries {TAG_VAR}={tag}"));
    (sidecar, pid)
}

/// The child of this process whose environment holds `entry` (`NAME=value`).
fn find_pid(entry: &str) -> Option<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .find(|pid| {
            parent_of(*pid) == Some(me)
                && std::fs::read(format!("/proc/{pid}/environ")).is_ok_and(|environ| {
                    environ
                        .split(|b| *b == 0)
                        .any(|var| var == entry.as_bytes())
                })
        })
}

fn parent_of(pid: u32) -> Option<u32> {
    status_field(pid, "PPid")
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
