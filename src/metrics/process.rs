//! The standard process metrics every Prometheus client exports (`process_cpu_seconds_total`,
//! `process_resident_memory_bytes`, `process_virtual_memory_bytes`, `process_open_fds`,
//! `process_max_fds`, `process_start_time_seconds`), read from `/proc/self` at scrape time. On a
//! system without `/proc` (anything but Linux) the families are absent, not zero.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

/// Clock ticks per second in `/proc/<pid>/stat` (the kernel's `USER_HZ`, which it reports in
/// regardless of its internal tick rate; 100 on every architecture Kubernetes nodes run).
const USER_HZ: f64 = 100.0;

/// What one scrape read about the process.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ProcessStats {
    cpu_seconds: Option<f64>,
    start_time_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

impl ProcessStats {
    /// Reads `/proc/self`; every value it cannot read stays `None`.
    fn read() -> Self {
        let read = |path: &str| std::fs::read_to_string(path).ok();
        let mut stats = Self::default();
        if let Some(stat) = read("/proc/self/stat") {
            let boot_time = read("/proc/stat").as_deref().and_then(boot_time);
            stats.merge_stat(&stat, boot_time);
        }
        if let Some(status) = read("/proc/self/status") {
            stats.resident_bytes = status_kib(&status, "VmRSS:").map(|k| k * 1024);
        }
        if let Some(limits) = read("/proc/self/limits") {
            stats.max_fds = max_open_files(&limits);
        }
        stats.open_fds = std::fs::read_dir("/proc/self/fd")
            .ok()
            .map(|dir| dir.count() as u64);
        stats
    }

    /// Takes CPU time, start time and virtual size from a `/proc/<pid>/stat` line.
    fn merge_stat(&mut self, stat: &str, boot_time: Option<u64>) {
        // The command name (field 2) is in parentheses and may hold spaces; fields are counted
        // from the state (field 3) after its closing parenthesis.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            return;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(user), Some(system)) = (field(14), field(15)) {
            self.cpu_seconds = Some((user + system) as f64 / USER_HZ);
        }
        if let (Some(started), Some(boot)) = (field(22), boot_time) {
            self.start_time_seconds = Some(boot as f64 + started as f64 / USER_HZ);
        }
        self.virtual_bytes = field(23);
    }
}

/// The boot time (`btime`, seconds since the epoch) from `/proc/stat`.
fn boot_time(proc_stat: &str) -> Option<u64> {
    proc_stat
        .lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// A `kB` value of `/proc/<pid>/status`, e.g. `VmRSS:`.
fn status_kib(status: &str, key: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|value| value.parse().ok())
}

/// The soft limit on open files from `/proc/<pid>/limits` (`None` when unlimited).
fn max_open_files(limits: &str) -> Option<u64> {
    limits
        .lines()
        .find_map(|line| line.strip_prefix("Max open files"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|soft| soft.parse().ok())
}

/// Encodes the process metrics at every scrape.
#[derive(Debug, Default)]
pub(super) struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        ProcessStats::read().encode(&mut encoder)
    }
}

impl ProcessStats {
    fn encode(&self, encoder: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Some(cpu) = self.cpu_seconds {
            let counter = prometheus_client::metrics::counter::ConstCounter::new(cpu);
            let metric = encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent",
                Some(&Unit::Seconds),
                MetricType::Counter,
            )?;
            counter.encode(metric)?;
        }
        let gauges: [(&str, &str, Option<Unit>, Option<f64>); 5] = [
            (
                "process_resident_memory",
                "Resident memory size",
                Some(Unit::Bytes),
                self.resident_bytes.map(|b| b as f64),
            ),
            (
                "process_virtual_memory",
                "Virtual memory size",
                Some(Unit::Bytes),
                self.virtual_bytes.map(|b| b as f64),
            ),
            (
                "process_open_fds",
                "Open file descriptors",
                None,
                self.open_fds.map(|n| n as f64),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (the soft limit)",
                None,
                self.max_fds.map(|n| n as f64),
            ),
            (
                "process_start_time",
                "Start time of the process since the Unix epoch",
                Some(Unit::Seconds),
                self.start_time_seconds,
            ),
        ];
        for (name, help, unit, value) in gauges {
            if let Some(value) = value {
                let mut metric =
                    encoder.encode_descriptor(name, help, unit.as_ref(), MetricType::Gauge)?;
                metric.encode_gauge(&value)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cpu_start_time_and_size_from_a_stat_line_whose_name_holds_spaces_and_parentheses() {
        let stat = "4242 (devportal (x) y) S 1 4242 4242 0 -1 4194560 9 0 0 0 250 50 0 0 20 0 \
                    9 0 12345 987654321 4000 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1";
        let mut stats = ProcessStats::default();
        stats.merge_stat(stat, Some(1_700_000_000));
        assert_eq!(stats.cpu_seconds, Some(3.0));
        assert_eq!(stats.start_time_seconds, Some(1_700_000_123.45));
        assert_eq!(stats.virtual_bytes, Some(987_654_321));
    }

    #[test]
    fn reads_boot_time_resident_size_and_the_soft_fd_limit() {
        assert_eq!(
            boot_time("cpu  1 2 3\nbtime 1796525440\nprocesses 9\n"),
            Some(1_796_525_440)
        );
        assert_eq!(
            status_kib(
                "Name:\tdevportal\nVmSize:\t  9000 kB\nVmRSS:\t  2048 kB\n",
                "VmRSS:"
            ),
            Some(2048)
        );
        let limits = "Limit                     Soft Limit           Hard Limit           Units\n\
                      Max open files            1024                 524288               files\n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            max_open_files(
                "Max open files            unlimited            unlimited            files\n"
            ),
            None
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_as_running_with_memory_and_open_files() {
        let stats = ProcessStats::read();
        assert!(stats.cpu_seconds.is_some_and(|s| s >= 0.0));
        assert!(stats.resident_bytes.is_some_and(|b| b > 0));
        assert!(stats.virtual_bytes >= stats.resident_bytes);
        assert!(stats.open_fds.is_some_and(|n| n >= 3));
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            stats
                .start_time_seconds
                .is_some_and(|t| t <= now + 1.0 && t > now - 86_400.0 * 365.0)
        );
    }
}
