//! Integration-test fixture: one real control plane per test binary, a kube `Client` and a
//! kubeconfig per persona, and a fresh namespace per test.
//!
//! The control plane is `hack/local-cluster.sh run`, started on first use with its own state
//! directory and free ports. It stays up while this process holds its stdin and tears itself down
//! (no process, no port left) when the test binary exits, however it exits. Set
//! `DEVPORTAL_TEST_KUBECONFIGS` to a directory holding kubeconfigs named after the personas to run
//! the same tests against an existing cluster instead.
//!
//! A test binary uses either [`control_plane`] (the bare control plane) or
//! [`control_plane_with_devportal`] (the same, plus this crate's `devportal` binary serving the
//! admission webhook and registered with the API server), never both.
#![allow(dead_code)] // each test binary uses a different part of the fixture

pub mod authorino;
pub mod fixtures;
pub mod https;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::rbac::v1::{RoleBinding, RoleRef, Subject};
use kube::api::{ObjectMeta, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};

/// Who is making a request. Each is a static-token user of the local control plane.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Persona {
    /// `system:masters`.
    Admin,
    /// Group `api-owners`; owns the products in test namespaces.
    Owner,
    /// Group `api-consumers`.
    Consumer,
    /// A second member of `api-consumers`.
    Consumer2,
    /// devportal's own identity (`system:serviceaccount:devportal-system:devportal`).
    Controller,
}

impl Persona {
    /// The kubeconfig file name, which is also the username for the human personas.
    pub fn name(self) -> &'static str {
        match self {
            Persona::Admin => "admin",
            Persona::Owner => "owner",
            Persona::Consumer => "consumer",
            Persona::Consumer2 => "consumer2",
            Persona::Controller => "controller",
        }
    }
}

/// The control plane the tests run against.
pub struct ControlPlane {
    kubeconfigs: PathBuf,
    kubectl: PathBuf,
    /// Whether devportal runs alongside (always assumed for an external cluster).
    devportal: bool,
    /// Where processes started by tests keep logs and pid files.
    state: PathBuf,
    /// The supervising script; its stdin stays open for as long as this process lives.
    _supervisor: Option<Mutex<(Child, BufReader<ChildStdout>)>>,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The shared bare control plane, started on first call (or the one this binary already started).
pub fn control_plane() -> &'static ControlPlane {
    CONTROL_PLANE.get_or_init(|| start(None))
}

/// The shared control plane with `devportal run` (webhook registered, controller leading) running,
/// started on first call.
pub fn control_plane_with_devportal() -> &'static ControlPlane {
    let cp = CONTROL_PLANE.get_or_init(|| start(Some(Path::new(env!("CARGO_BIN_EXE_devportal")))));
    assert!(
        cp.devportal,
        "this test binary already started a control plane without devportal"
    );
    cp
}

// The supervisor is deliberately never waited for: it lives as long as this process, and reaps
// itself when our end of its stdin closes at exit.
#[allow(clippy::zombie_processes)]
fn start(devportal: Option<&Path>) -> ControlPlane {
    if let Ok(dir) = std::env::var("DEVPORTAL_TEST_KUBECONFIGS") {
        return ControlPlane {
            kubeconfigs: dir.into(),
            kubectl: "kubectl".into(),
            devportal: true,
            state: repo_root()
                .join("target/local/tests")
                .join(format!("external-{}", std::process::id())),
            _supervisor: None,
        };
    }
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "test".into());
    let state = repo_root()
        .join("target/local/tests")
        .join(format!("{binary}-{}", std::process::id()));
    let mut command = Command::new(repo_root().join("hack/local-cluster.sh"));
    command
        .arg("run")
        .env("DEVPORTAL_LOCAL_DIR", &state)
        .env_remove("DEVPORTAL_BIN");
    if let Some(bin) = devportal {
        command.env("DEVPORTAL_BIN", bin);
    }
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("hack/local-cluster.sh starts");
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        let n = stdout
            .read_line(&mut line)
            .expect("read from hack/local-cluster.sh");
        if n == 0 {
            let status = child.wait().expect("wait for hack/local-cluster.sh");
            panic!(
                "the local control plane failed to start ({status}); logs in {}",
                state.join("logs").display()
            );
        }
        if let Some(dir) = line.trim().strip_prefix("READY ") {
            return ControlPlane {
                kubeconfigs: dir.into(),
                kubectl: state.join("bin/kubectl"),
                devportal: devportal.is_some(),
                state,
                _supervisor: Some(Mutex::new((child, stdout))),
            };
        }
    }
}

impl ControlPlane {
    /// Base URL of the admin port of the devportal that `control_plane_with_devportal` started
    /// (or `DEVPORTAL_TEST_ADMIN_URL` for an external cluster).
    pub fn devportal_admin_url(&self) -> String {
        if let Ok(url) = std::env::var("DEVPORTAL_TEST_ADMIN_URL") {
            return url;
        }
        let state = std::fs::read_to_string(self.state.join("run/state.env")).expect("state.env");
        let port = state
            .lines()
            .find_map(|l| l.strip_prefix("ADMIN_PORT="))
            .expect("devportal runs with an admin port (use control_plane_with_devportal)");
        format!("http://127.0.0.1:{port}")
    }

    /// The directory for this test binary's logs and scratch files.
    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    /// Path of a persona's kubeconfig.
    pub fn kubeconfig(&self, persona: Persona) -> PathBuf {
        self.kubeconfigs.join(persona.name())
    }

    /// A kube client that authenticates as `persona`.
    pub async fn client(&self, persona: Persona) -> Client {
        let kubeconfig = Kubeconfig::read_from(self.kubeconfig(persona)).expect("kubeconfig reads");
        let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .expect("kubeconfig is valid");
        Client::try_from(config).expect("client builds")
    }

    /// Runs kubectl as `persona`, feeding `stdin` to it.
    pub fn kubectl(&self, persona: Persona, args: &[&str], stdin: Option<&str>) -> Output {
        let mut child = Command::new(&self.kubectl)
            .arg("--kubeconfig")
            .arg(self.kubeconfig(persona))
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("kubectl starts");
        let mut input = child.stdin.take().expect("piped stdin");
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .expect("write kubectl stdin");
        }
        drop(input);
        child.wait_with_output().expect("kubectl runs")
    }
}

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
        std::fs::create_dir_all(cp.state.join("logs")).expect("log dir");
        std::fs::create_dir_all(cp.state.join("run")).expect("run dir");
        let log = cp.state.join("logs").join(format!("devportal-{n}.log"));
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
        let pid_file = cp.state.join("run").join(format!("devportal-{n}.pid"));
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

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Polls `check` every 100 ms until it returns `Some`, failing the test with `what` after `timeout`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// A namespace of its own for one test, with the owner and both consumers bound to their persona
/// roles. It is deleted when dropped.
pub struct TestNamespace {
    /// The namespace's name.
    pub name: String,
}

impl TestNamespace {
    /// Creates a fresh namespace as the admin and binds the personas in it.
    pub async fn new(prefix: &str) -> Self {
        Self::with_bindings(
            prefix,
            &[
                ("devportal-api-owner", &["owner"]),
                ("devportal-api-consumer", &["consumer", "consumer2"]),
            ],
        )
        .await
    }

    /// Creates a fresh namespace as the admin with only the given (ClusterRole, users) bindings.
    pub async fn with_bindings(prefix: &str, roles: &[(&str, &[&str])]) -> Self {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let cp = control_plane();
        let admin = cp.client(Persona::Admin).await;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let name = format!(
            "{prefix}-{:x}{:x}-{}",
            std::process::id() & 0xfff,
            nanos & 0xffff,
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let namespace = Namespace {
            metadata: ObjectMeta {
                name: Some(name.clone()),
                labels: Some(
                    [("devportal.kuadrant.io/test".to_string(), "true".to_string())].into(),
                ),
                ..ObjectMeta::default()
            },
            ..Namespace::default()
        };
        Api::<Namespace>::all(admin.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .expect("namespace created");
        let bindings = Api::<RoleBinding>::namespaced(admin, &name);
        for &(role, users) in roles {
            let binding = RoleBinding {
                metadata: ObjectMeta {
                    name: Some(role.into()),
                    ..ObjectMeta::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "ClusterRole".into(),
                    name: role.into(),
                },
                subjects: Some(
                    users
                        .iter()
                        .map(|user| Subject {
                            api_group: Some("rbac.authorization.k8s.io".into()),
                            kind: "User".into(),
                            name: (*user).into(),
                            namespace: None,
                        })
                        .collect(),
                ),
            };
            bindings
                .create(&PostParams::default(), &binding)
                .await
                .expect("role binding created");
        }
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Best effort; a local control plane is thrown away with everything in it anyway.
        let _ = control_plane().kubectl(
            Persona::Admin,
            &[
                "delete",
                "namespace",
                &self.name,
                "--wait=false",
                "--ignore-not-found",
            ],
            None,
        );
    }
}

/// Asserts that a kubectl invocation succeeded and returns its stdout.
pub fn stdout_of(output: &Output) -> String {
    assert!(
        output.status.success(),
        "kubectl failed: {}\nstdout: {}",
        String::from_utf8_lossy(&output.stderr),
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts that a kubectl invocation failed and returns its stderr.
pub fn stderr_of_failure(output: &Output) -> String {
    assert!(
        !output.status.success(),
        "kubectl unexpectedly succeeded: {}",
        String::from_utf8_lossy(&output.stdout)
    );
    String::from_utf8_lossy(&output.stderr).into_owned()
}
