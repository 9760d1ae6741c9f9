//! What a process uses, read from Linux's `/proc`: resident memory, its peak, and CPU time.
//! Elsewhere the readings are absent and the summary says so.

use std::time::Duration;

/// Linux reports CPU times in /proc in ticks of USER_HZ, which is 100 on every architecture's
/// user ABI.
const TICKS_PER_SECOND: u64 = 100;

/// One reading of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Resident memory (VmRSS), bytes.
    pub resident: u64,
    /// The peak of resident memory so far (VmHWM), bytes.
    pub peak: u64,
    /// User and system CPU time so far.
    pub cpu: Duration,
}

/// Reads the usage of this process (`None`) or of process `pid`; `None` where /proc is not
/// there or the process has ended. Runs on the blocking pool (it reads files).
pub async fn read(pid: Option<u32>) -> Option<Usage> {
    tokio::task::spawn_blocking(move || read_now(pid)).await.ok().flatten()
}

fn read_now(pid: Option<u32>) -> Option<Usage> {
    let dir = match pid {
        Some(pid) => format!("/proc/{pid}"),
        None => "/proc/self".to_owned(),
    };
    let status = std::fs::read_to_string(format!("{dir}/status")).ok()?;
    let stat = std::fs::read_to_string(format!("{dir}/stat")).ok()?;
    Some(Usage {
        resident: status_kib(&status, "VmRSS:")? * 1024,
        peak: status_kib(&status, "VmHWM:")? * 1024,
        cpu: cpu_time(&stat)?,
    })
}

/// A `Name:   1234 kB` line of /proc/PID/status, in KiB.
fn status_kib(status: &str, name: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with(name))?;
    line.get(name.len()..)?.split_whitespace().next()?.parse().ok()
}

/// utime + stime of /proc/PID/stat: fields 14 and 15, counted after the command name's closing
/// parenthesis (the name itself may hold spaces and parentheses).
fn cpu_time(stat: &str) -> Option<Duration> {
    let after_name = stat.get(stat.rfind(')')? + 1..)?;
    let mut fields = after_name.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    let ticks = user + system;
    Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
}

/// Raises this process's soft limit of open files to its hard limit, so that `wanted`
/// connections fit; returns the limit in force. A limit still too low is the caller's error.
pub fn raise_open_files_limit() -> Option<u64> {
    rlimit::increase_nofile_limit(u64::MAX).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_status_lines() {
        let status = "Name:\tiot443\nVmHWM:\t  20480 kB\nVmRSS:\t   10240 kB\n";
        assert_eq!(status_kib(status, "VmRSS:"), Some(10240));
        assert_eq!(status_kib(status, "VmHWM:"), Some(20480));
        assert_eq!(status_kib(status, "VmSwap:"), None);
    }

    #[test]
    fn cpu_time_skips_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (iot 443 (x)) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 1 0";
        assert_eq!(cpu_time(stat), Some(Duration::from_secs(3)));
        assert_eq!(cpu_time("4242 (truncated"), None);
    }

    #[tokio::test]
    async fn this_process_has_a_reading_on_linux() {
        let usage = read(None).await;
        if cfg!(target_os = "linux") {
            let usage = usage.expect("/proc/self is readable");
            assert!(usage.resident > 0 && usage.peak >= usage.resident, "{usage:?}");
        }
    }
}
