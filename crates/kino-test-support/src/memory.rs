//! Resident memory (`VmRSS`) from procfs: how tests and the load bench see a server's growth.

/// Resident memory of this process, bytes: where an in-process server under test runs.
pub fn rss_bytes() -> u64 {
    read("/proc/self/status")
}

/// Resident memory of process `pid`, bytes: a server running as a child process.
pub fn rss_bytes_of(pid: u32) -> u64 {
    read(&format!("/proc/{pid}/status"))
}

fn read(status_path: &str) -> u64 {
    let status = std::fs::read_to_string(status_path).expect("procfs");
    let kb = status.lines().find_map(|l| l.strip_prefix("VmRSS:")).expect("VmRSS line");
    kb.trim().trim_end_matches("kB").trim().parse::<u64>().expect("a number") * 1024
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_megabyte_touched_shows_up_in_this_process() {
        let before = rss_bytes();
        let block = std::hint::black_box(vec![1u8; 8 << 20]);
        let growth = rss_bytes().saturating_sub(before);
        assert!(growth >= 7 << 20, "grew by {growth} bytes after touching 8 MiB");
        let by_pid = rss_bytes_of(std::process::id());
        assert!(by_pid.abs_diff(rss_bytes()) < 1 << 20, "{by_pid} by pid, {} by self", rss_bytes());
        drop(block);
    }
}
