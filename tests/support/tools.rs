//! The Prometheus server and `promtool` the metrics tests run: built from the Go module in
//! `hack/prometheus` by `hack/prometheus.sh` on first use (once per machine, cached in
//! `~/.cache/devportal/prometheus`), never taken from the system.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// A command running the `prometheus` server built from `hack/prometheus`.
pub fn prometheus() -> Command {
    Command::new(prometheus_bin_dir().join("prometheus"))
}

/// A command running the `promtool` built from `hack/prometheus`.
pub fn promtool() -> Command {
    Command::new(prometheus_bin_dir().join("promtool"))
}

/// The cache directory holding both, built first if it is missing (the build's progress goes to
/// this process's stderr).
fn prometheus_bin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let script = super::repo_root().join("hack/prometheus.sh");
        let out = Command::new(&script)
            .arg("path")
            .stderr(Stdio::inherit())
            .output()
            .expect("hack/prometheus.sh starts");
        assert!(
            out.status.success(),
            "{} path failed ({}); its output is above",
            script.display(),
            out.status
        );
        PathBuf::from(String::from_utf8(out.stdout).expect("a UTF-8 path").trim())
    })
}
