//! What the servers cost: CPU seconds and memory read from /proc.
//!
//! A [`ProcGroup`] is the set of processes one system runs on: the pulsebus server, the
//! nats-server, or a whole PostgreSQL cluster (the postmaster and its children; the CPU
//! of children that already exited is in the postmaster's cutime/cstime, so backends
//! that come and go during a run are still counted).

use std::fs;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// Processes whose cost we measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcGroup {
    /// One process (pulsebus, nats-server).
    Pid(u32),
    /// Two processes counted together (two pulsebus replicas).
    Pair(u32, u32),
    /// A PostgreSQL cluster: this postmaster and its children.
    Postmaster(u32),
    /// The harness itself.
    Myself,
}

/// Clock ticks per second (the unit of /proc CPU times).
pub fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .unwrap_or(100) as f64
}

/// Fields of /proc/PID/stat after the command name (field 3 onwards).
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    // Field 3 (state) is a letter: replace it by 0 so indices stay aligned.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// (utime + stime, cutime + cstime, ppid) in ticks.
fn cpu_ticks(pid: u32) -> Option<(u64, u64, u32)> {
    let f = stat_fields(pid)?;
    // rest[0] = field 3; utime = field 14 -> rest[11].
    Some((f[11] + f[12], f[13] + f[14], f[1] as u32))
}

fn status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn pss_kib(pid: u32) -> Option<u64> {
    let text = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Pss:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn children_of(parent: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| cpu_ticks(pid).is_some_and(|(_, _, ppid)| ppid == parent))
        .collect()
}

impl ProcGroup {
    fn pid(self) -> u32 {
        match self {
            Self::Pid(p) | Self::Postmaster(p) | Self::Pair(p, _) => p,
            Self::Myself => std::process::id(),
        }
    }

    /// CPU time used so far, in seconds (user + system; for a cluster, all of it).
    pub fn cpu_seconds(self) -> Option<f64> {
        if let Self::Pair(a, b) = self {
            return Some(Self::Pid(a).cpu_seconds()? + Self::Pid(b).cpu_seconds()?);
        }
        let (own, reaped, _) = cpu_ticks(self.pid())?;
        let mut ticks = own;
        if let Self::Postmaster(pm) = self {
            ticks += reaped;
            ticks += children_of(pm)
                .into_iter()
                .filter_map(cpu_ticks)
                .map(|(t, _, _)| t)
                .sum::<u64>();
        }
        Some(ticks as f64 / ticks_per_second())
    }

    /// Memory in use now, in KiB: VmRSS for one process (two: their sum), the sum of PSS (proportional
    /// set size: shared buffers counted once) over a cluster's processes.
    pub fn memory_kib(self) -> Option<u64> {
        match self {
            Self::Pid(pid) => status_kib(pid, "VmRSS:"),
            Self::Pair(a, b) => Some(status_kib(a, "VmRSS:")? + status_kib(b, "VmRSS:")?),
            Self::Myself => status_kib(std::process::id(), "VmRSS:"),
            Self::Postmaster(pm) => {
                let kids = children_of(pm);
                Some(std::iter::once(pm).chain(kids).filter_map(pss_kib).sum())
            }
        }
    }

    /// The process's lifetime peak RSS (VmHWM), for single processes.
    pub fn high_water_kib(self) -> Option<u64> {
        match self {
            Self::Postmaster(_) | Self::Pair(..) => None,
            _ => status_kib(self.pid(), "VmHWM:"),
        }
    }
}

/// Busy and total jiffies of the whole machine (from /proc/stat), for "busy %".
pub fn machine_ticks() -> (u64, u64) {
    let text = fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = text.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    (total - idle, total)
}

/// Samples the memory of some groups every 100 ms until stopped; returns the peaks.
pub struct PeakSampler {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<u64>>>,
}

impl PeakSampler {
    /// Starts sampling `groups`.
    pub fn start(groups: Vec<ProcGroup>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut peaks = vec![0u64; groups.len()];
            loop {
                for (peak, g) in peaks.iter_mut().zip(&groups) {
                    *peak = (*peak).max(g.memory_kib().unwrap_or(0));
                }
                if flag.load(Ordering::Relaxed) {
                    return peaks;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and returns each group's peak, in KiB.
    pub fn finish(mut self) -> Vec<u64> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for PeakSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_own_cpu_and_memory() {
        let g = ProcGroup::Myself;
        assert!(g.cpu_seconds().is_some());
        assert!(g.memory_kib().unwrap() > 0);
        let (busy, total) = machine_ticks();
        assert!(total >= busy && total > 0);
    }
}
