//! What a benchmark reads about processes from Linux's `/proc`: CPU time, resident and peak
//! memory, proportional set size, and the machine's available memory.
//!
//! Owns the parsing (pure functions over the files' text, unit-tested below) and thin readers
//! around it. It must not interpret the numbers: the benchmarks decide what to report.
//! Linux only, as the benchmarks that use it (devcluster's executors are local processes).

use std::io;
use std::time::Duration;

/// CPU time and memory of one process (or thread), at one moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ProcessSample {
    /// User plus system CPU time so far (`utime + stime`).
    pub cpu: Duration,
    /// Resident set size now (`VmRSS`), KiB. Shared pages (the binary's text) count fully.
    pub rss_kib: u64,
    /// Peak resident set size (`VmHWM`) since start or since [`reset_peak`], KiB.
    pub peak_kib: u64,
}

/// `utime + stime` of a `/proc/<pid>/stat` (or `/proc/<pid>/task/<tid>/stat`) line, in clock
/// ticks. The command name (field 2) is in parentheses and may itself hold spaces and
/// parentheses, so the fields are counted from the last `)`: there, `state` is field 3 and
/// `utime`/`stime` are fields 14 and 15 (proc(5)).
pub fn parse_stat_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut fields = rest.split_whitespace();
    // fields after ')' start at field 3 (state); utime is field 14, i.e. the 12th here.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// The state letter of a `/proc/<pid>/stat` line (`R`, `S`, `Z` ...).
pub fn parse_stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().next()?.chars().next()
}

/// A `kB` line of `/proc/<pid>/status`, `/proc/<pid>/smaps_rollup` or `/proc/meminfo`
/// (`VmHWM:    1784 kB`), in KiB.
pub fn parse_kib(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if name.trim() != key {
            return None;
        }
        value.split_whitespace().next()?.parse().ok()
    })
}

/// Clock ticks per second (`getconf CLK_TCK`); 100 on every Linux ABI the benchmarks run on,
/// which is also the fallback if `getconf` is missing.
pub fn clock_ticks_per_second() -> u64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .filter(|&ticks: &u64| ticks > 0)
        .unwrap_or(100)
}

fn ticks_to_duration(ticks: u64, per_second: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / per_second.max(1))
}

/// CPU time and memory of process `pid`.
pub fn sample_process(pid: u32, ticks_per_second: u64) -> io::Result<ProcessSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let ticks = parse_stat_ticks(&stat).ok_or_else(|| malformed(pid, "stat"))?;
    Ok(ProcessSample {
        cpu: ticks_to_duration(ticks, ticks_per_second),
        rss_kib: parse_kib(&status, "VmRSS").unwrap_or(0),
        peak_kib: parse_kib(&status, "VmHWM").unwrap_or(0),
    })
}

/// CPU time of the calling thread (`/proc/thread-self/stat`).
pub fn this_thread_cpu(ticks_per_second: u64) -> io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat")?;
    let ticks = parse_stat_ticks(&stat).ok_or_else(|| malformed(0, "thread-self/stat"))?;
    Ok(ticks_to_duration(ticks, ticks_per_second))
}

/// Resets the peak resident set size of `pid` to its current size (writing `5` to
/// `/proc/<pid>/clear_refs`, Linux 4.0+), so that `VmHWM` then covers one period only.
pub fn reset_peak(pid: u32) -> io::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5")
}

/// Proportional set size of `pid`, KiB: its private pages plus its share of pages mapped by
/// several processes. Summed over processes running one binary, it is what they really take.
pub fn pss_kib(pid: u32) -> io::Result<u64> {
    let rollup = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))?;
    parse_kib(&rollup, "Pss").ok_or_else(|| malformed(pid, "smaps_rollup"))
}

/// True while `pid` exists and is not a zombie (an exited process its parent has not reaped
/// yet is gone for every purpose here).
pub fn is_alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| parse_stat_state(&stat))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// `MemAvailable` of `/proc/meminfo`, KiB.
pub fn mem_available_kib() -> io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    parse_kib(&meminfo, "MemAvailable").ok_or_else(|| malformed(0, "meminfo"))
}

/// `MemTotal` of `/proc/meminfo`, KiB.
pub fn mem_total_kib() -> io::Result<u64> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")?;
    parse_kib(&meminfo, "MemTotal").ok_or_else(|| malformed(0, "meminfo"))
}

fn malformed(pid: u32, file: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("unexpected format of /proc/{pid}/{file}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // A real line of /proc/<pid>/stat, with a command name that holds ") (" to show why the
    // fields are counted from the last parenthesis.
    const STAT: &str = "4667 (cargo) (x) S 2941 4667 2941 0 -1 4194560 5061 0 0 0 \
                        37 12 0 0 20 0 6 0 52118 255229952 25994 18446744073709551615";

    #[test]
    fn cpu_ticks_are_utime_plus_stime_after_the_last_parenthesis() {
        assert_eq!(parse_stat_ticks(STAT), Some(49));
        assert_eq!(parse_stat_state(STAT), Some('S'));
        assert_eq!(parse_stat_ticks("12 (short) S 1 2"), None);
        assert_eq!(parse_stat_ticks("garbage"), None);
        assert_eq!(parse_stat_state("1 (zombie) Z 0"), Some('Z'));
    }

    #[test]
    fn kib_lines_are_found_by_exact_key() {
        let status = "Name:\tx\nVmHWM:\t    1784 kB\nVmRSS:\t    1700 kB\n";
        assert_eq!(parse_kib(status, "VmHWM"), Some(1784));
        assert_eq!(parse_kib(status, "VmRSS"), Some(1700));
        assert_eq!(parse_kib(status, "Vm"), None);
        let rollup =
            "Rss:                1688 kB\nPss:                 232 kB\nPss_Dirty: 112 kB\n";
        assert_eq!(parse_kib(rollup, "Pss"), Some(232));
    }

    #[test]
    fn ticks_become_durations() {
        assert_eq!(ticks_to_duration(49, 100), Duration::from_millis(490));
        assert_eq!(ticks_to_duration(3, 1000), Duration::from_millis(3));
    }

    #[test]
    fn this_process_can_be_read() {
        let me = sample_process(std::process::id(), clock_ticks_per_second()).expect("own stat");
        assert!(me.rss_kib > 0 && me.peak_kib >= me.rss_kib, "{me:?}");
        assert!(is_alive(std::process::id()));
        assert!(pss_kib(std::process::id()).expect("own smaps_rollup") > 0);
        assert!(mem_available_kib().expect("meminfo") > 0);
        this_thread_cpu(clock_ticks_per_second()).expect("own thread");
    }
}
