//! devportal processes a test starts itself (`devportal controller`, `devportal webhook`), as the
//! controller identity, next to the shared control plane.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};

use super::control_plane::control_plane;
use super::personas::Persona;

/// A devportal process started by a test, as the controller identity. Its pid is registered with
/// the control plane's supervisor, so it is stopped with the control plane even if the test never
/// drops it; dropping it kills it at once.
pub struct Devportal {
    child: Child,
    /// Runs under heaptrack, in a process group of its own (heaptrack forks devportal).
    profiled: bool,
    pid_file: PathBuf,
    /// The admin port (`/metrics`, `/livez`, `/readyz`) on 127.0.0.1.
    pub admin_port: u16,
    /// The process's log file.
    pub log: PathBuf,
}

impl Devportal {
    /// Starts `devportal controller` with `args` and extra environment `env`.
    pub fn controller(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start("controller", args, env)
    }

    /// Starts `devportal <subcommand>` as the controller identity, with an admin port of its
    /// own on 127.0.0.1, `args` and extra environment `env`. With `HEAPTRACK_OUT` set, the
    /// process runs under `heaptrack -o $HEAPTRACK_OUT` (memory profiles of benchmarks; the pid
    /// is then heaptrack's).
    pub fn start(subcommand: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let cp = control_plane();
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let state = cp.state_dir();
        std::fs::create_dir_all(state.join("logs")).expect("log dir");
        std::fs::create_dir_all(state.join("run")).expect("run dir");
        let log = state.join("logs").join(format!("devportal-{n}.log"));
        let out = std::fs::File::create(&log).expect("log file");
        let admin_port = free_port();
        let profile = std::env::var("HEAPTRACK_OUT").ok();
        let mut command = match &profile {
            Some(profile) => {
                let mut heaptrack = Command::new("heaptrack");
                heaptrack
                    .args(["-o", profile, env!("CARGO_BIN_EXE_devportal")])
                    .process_group(0);
                heaptrack
            }
            None => Command::new(env!("CARGO_BIN_EXE_devportal")),
        };
        let child = command
            .arg(subcommand)
            .args(["--admin-listen", &format!("127.0.0.1:{admin_port}")])
            .args(args)
            .env("KUBECONFIG", cp.kubeconfig(Persona::Controller))
            .env("DEVPORTAL_LOG", "info,devportal=debug")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(out.try_clone().expect("log file"))
            .stderr(out)
            .spawn()
            .expect("devportal starts");
        let pid_file = state.join("run").join(format!("devportal-{n}.pid"));
        std::fs::write(&pid_file, child.id().to_string()).expect("pid file");
        Devportal {
            child,
            profiled: profile.is_some(),
            pid_file,
            admin_port,
            log,
        }
    }

    /// Kills the process at once (SIGKILL), as a crashed node would. Under heaptrack the whole
    /// process group is stopped, gracefully first so the profile is complete.
    pub fn kill(&mut self) {
        if self.profiled && self.child.try_wait().ok().flatten().is_none() {
            let group = format!("-{}", self.child.id());
            let signal = |name: &str| {
                let _ = Command::new("kill").args([name, "--", &group]).status();
            };
            signal("-TERM");
            let _ = self.wait_exit(std::time::Duration::from_secs(15));
            signal("-KILL");
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.pid_file);
    }

    /// Asks the process to shut down (SIGTERM) and waits up to `timeout` for it to exit.
    pub fn terminate(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill runs");
        self.wait_exit(timeout)
    }

    /// Waits up to `timeout` for the process to exit on its own.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                let _ = std::fs::remove_file(&self.pid_file);
                return Some(status);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        None
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Devportal {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The controller every test of this binary shares (Lease `controller-tests`), started on first
/// call; it runs until the binary exits.
pub fn shared_controller() -> &'static Devportal {
    static CONTROLLER: OnceLock<Devportal> = OnceLock::new();
    // Its discovery may fetch from 127.0.0.1, where the tests serve documents
    // (tests/it/fetch_policy.rs runs one with the default policy).
    CONTROLLER.get_or_init(|| {
        Devportal::controller(
            &[
                "--lease-name",
                "controller-tests",
                "--fetch-allow",
                "127.0.0.1",
            ],
            &[],
        )
    })
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A memory figure of process `pid` from /proc, in KiB: `VmHWM` (peak) or `VmRSS` (now).
pub fn memory_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| {
            v.trim_start_matches(':')
                .trim()
                .trim_end_matches("kB")
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0)
}
