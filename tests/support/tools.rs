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
    DIR.get_or_init(|| cached_build("prometheus.sh"))
}

/// What `hack/<script> path` prints: the cached build of a Go-built tool, built first if it is
/// missing (the build's progress goes to this process's stderr).
pub fn cached_build(script: &str) -> PathBuf {
    let script = super::repo_root().join("hack").join(script);
    let out = Command::new(&script)
        .arg("path")
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("{} starts: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} path failed ({}); its output is above",
        script.display(),
        out.status
    );
    PathBuf::from(String::from_utf8(out.stdout).expect("a UTF-8 path").trim())
}
