//! CPU time and memory of the processes a run involves, from /proc.

use std::path::Path;

/// Clock ticks per second of /proc/<pid>/stat's times (`sysconf(_SC_CLK_TCK)`).
pub fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// CPU seconds (user + system, all threads) process `pid` has used so far; 0 once it is gone.
pub fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces), counted from field 3 (state).
    let Some((_, rest)) = stat.rsplit_once(')') else {
        return 0.0;
    };
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime is field 14, stime field 15 (1-based); `fields[0]` is field 3.
    (field(11) + field(12)) as f64 / clock_ticks()
}

/// The pid a control-plane component registered under `run/<name>.pid` of the state directory.
pub fn component_pid(state: &Path, name: &str) -> Option<u32> {
    std::fs::read_to_string(state.join("run").join(format!("{name}.pid")))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// The processes whose CPU a run reports, by name.
pub struct Watched(pub Vec<(&'static str, u32)>);

impl Watched {
    /// CPU seconds of each process now.
    pub fn sample(&self) -> Vec<f64> {
        self.0.iter().map(|(_, pid)| cpu_seconds(*pid)).collect()
    }

    /// Prints the CPU each process used between `before` and `after`, total and per 1,000 keys.
    pub fn print_cpu(&self, before: &[f64], after: &[f64], n: usize, wall: f64) {
        println!(
            "  CPU seconds (utime+stime, {} ticks/s) over {wall:.1} s, per 1,000 keys:",
            clock_ticks()
        );
        for (((name, pid), b), a) in self.0.iter().zip(before).zip(after) {
            let used = a - b;
            println!(
                "    {name:<16} {used:>8.2} s  {:>7.2} s/1k keys  {:>5.0} % of a core  (pid {pid})",
                used * 1000.0 / n as f64,
                100.0 * used / wall.max(1e-9)
            );
        }
    }
}

/// The highest RSS of a process seen while sampling it, split as /proc/<pid>/status splits it
/// (`RssAnon`: heap and stacks; `RssFile`: the binary's and libraries' pages it touched), in KiB.
#[derive(Clone, Copy, Default)]
pub struct RssSample {
    pub total: u64,
    pub anon: u64,
    pub file: u64,
}

/// Samples process `pid`'s RSS every 200 ms on a thread of its own until [`RssSampler::stop`],
/// keeping the sample with the highest RSS: the split of the peak that `VmHWM` alone does not give.
pub struct RssSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<RssSample>,
}

impl RssSampler {
    pub fn start(pid: u32) -> Self {
        use crate::support::processes::memory_kib;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut highest = RssSample::default();
            while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
                let now = RssSample {
                    total: memory_kib(pid, "VmRSS"),
                    anon: memory_kib(pid, "RssAnon"),
                    file: memory_kib(pid, "RssFile"),
                };
                if now.total > highest.total {
                    highest = now;
                }
                std::thread::sleep(std::time::Duration::from_millis(200));
            }
            highest
        });
        RssSampler { stop, thread }
    }

    /// Stops sampling; the sample with the highest RSS.
    pub fn stop(self) -> RssSample {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}
