//! /proc readers of a process (the daemon under test): resident memory, open descriptors,
//! threads, CPU time. Typed errors (`io::Error` naming the file) for the benchmark; the
//! panicking short forms for tests.

use std::io;

fn read(pid: u32, file: &str) -> io::Result<String> {
    std::fs::read_to_string(format!("/proc/{pid}/{file}"))
        .map_err(|e| io::Error::new(e.kind(), format!("/proc/{pid}/{file}: {e}")))
}

fn missing(what: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what)
}

/// A `NAME:   123 kB` field of a /proc/PID/status text.
pub fn status_field_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    })
}

/// A /proc/PID/status field in kB (VmRSS, VmHWM, ...).
pub fn try_status_kib(pid: u32, field: &str) -> io::Result<u64> {
    status_field_kib(&read(pid, "status")?, field)
        .ok_or_else(|| missing(format!("no {field} in /proc/{pid}/status")))
}

/// [`try_status_kib`] for tests: panics naming what is missing.
#[allow(clippy::panic)]
pub fn status_kib(pid: u32, field: &str) -> u64 {
    try_status_kib(pid, field).unwrap_or_else(|e| panic!("{e}"))
}

/// Resident memory of a process, from /proc/PID/status.
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    /// VmRSS, KiB.
    pub rss_kib: u64,
    /// VmHWM (peak RSS), KiB.
    pub hwm_kib: u64,
}

impl Memory {
    /// Reads /proc/PID/status.
    pub fn of(pid: u32) -> io::Result<Self> {
        let s = read(pid, "status")?;
        let f = |k: &str| {
            status_field_kib(&s, k).ok_or_else(|| missing(format!("no {k} in /proc/{pid}/status")))
        };
        Ok(Self {
            rss_kib: f("VmRSS")?,
            hwm_kib: f("VmHWM")?,
        })
    }
}

/// Open file descriptors of `pid`.
#[allow(clippy::panic)]
pub fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
        .count()
}

/// Threads of `pid` (entries of /proc/PID/task).
#[allow(clippy::panic)]
pub fn thread_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/task: {e}"))
        .count()
}

/// CPU time of a process (all its threads), from /proc: a measure of cost that does not
/// depend on how much of its core the process got on a shared machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct CpuTime {
    /// Time on a CPU, ns (sum of /proc/PID/task/*/schedstat field 1).
    pub run_ns: u64,
    /// Time runnable but waiting for a CPU, ns (field 2): the other tenants' share.
    pub wait_ns: u64,
    /// User time, clock ticks (/proc/PID/stat).
    pub utime: u64,
    /// System time, clock ticks.
    pub stime: u64,
}

impl CpuTime {
    /// Reads /proc for `pid`.
    pub fn of(pid: u32) -> io::Result<Self> {
        let mut t = CpuTime::default();
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
            .map_err(|e| io::Error::new(e.kind(), format!("/proc/{pid}/task: {e}")))?;
        for task in tasks.flatten() {
            let Ok(s) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut f = s.split_whitespace().map(|v| v.parse::<u64>().unwrap_or(0));
            t.run_ns += f.next().unwrap_or(0);
            t.wait_ns += f.next().unwrap_or(0);
        }
        let stat = read(pid, "stat")?;
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        let f: Vec<&str> = rest.split_whitespace().collect();
        // Fields 14 and 15 of stat(5); `rest` starts at field 3.
        t.utime = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0);
        t.stime = f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(t)
    }

    /// What was spent between `earlier` and `self`.
    pub fn since(&self, earlier: &CpuTime) -> CpuTime {
        CpuTime {
            run_ns: self.run_ns.saturating_sub(earlier.run_ns),
            wait_ns: self.wait_ns.saturating_sub(earlier.wait_ns),
            utime: self.utime.saturating_sub(earlier.utime),
            stime: self.stime.saturating_sub(earlier.stime),
        }
    }

    /// The share of user time in user + system time.
    pub fn user_share(&self) -> f64 {
        let total = self.utime + self.stime;
        if total == 0 {
            return 0.0;
        }
        self.utime as f64 / total as f64
    }

    /// User + system seconds (100 clock ticks a second, Linux's USER_HZ).
    pub fn secs(&self) -> f64 {
        (self.utime + self.stime) as f64 / 100.0
    }
}

/// CPU seconds (user + system) used by `pid` so far.
#[allow(clippy::panic)]
pub fn cpu_secs(pid: u32) -> f64 {
    CpuTime::of(pid).unwrap_or_else(|e| panic!("{e}")).secs()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn status_fields_parse() {
        let s = "Name:\tlas\nVmHWM:\t   12345 kB\nVmRSS:\t    2048 kB\n";
        assert_eq!(status_field_kib(s, "VmHWM"), Some(12345));
        assert_eq!(status_field_kib(s, "VmRSS"), Some(2048));
        assert_eq!(status_field_kib(s, "VmSwap"), None);
    }

    #[test]
    fn own_cpu_time_grows() {
        let a = CpuTime::of(std::process::id()).unwrap();
        let t = std::time::Instant::now();
        let mut x = 0u64;
        while t.elapsed() < Duration::from_millis(30) {
            x = std::hint::black_box(x.wrapping_add(1));
        }
        let d = CpuTime::of(std::process::id()).unwrap().since(&a);
        assert!(d.run_ns >= 10_000_000, "{d:?}");
    }

    #[test]
    fn own_memory_fds_and_threads_read() {
        let me = std::process::id();
        let m = Memory::of(me).unwrap();
        assert!(m.rss_kib > 0 && m.hwm_kib >= m.rss_kib);
        assert!(status_kib(me, "VmRSS") > 0);
        assert!(fd_count(me) >= 3);
        assert!(thread_count(me) >= 1);
        assert!(try_status_kib(me, "NoSuchField").is_err());
    }
}
