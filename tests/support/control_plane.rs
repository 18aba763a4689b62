//! The local control plane a test binary runs against: `hack/local-cluster.sh run`, started on
//! first use with its own state directory and free ports (or an existing cluster's kubeconfigs),
//! and the ways to talk to it as a persona: a kube `Client` or kubectl.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::personas::Persona;
use super::serial;

/// The namespace devportal runs in: `manifests/` installs it there, its leader-election Lease and
/// self-managed certificate Secret live there.
pub const SYSTEM_NAMESPACE: &str = "devportal-system";

/// The control plane the tests run against.
pub struct ControlPlane {
    kubeconfigs: PathBuf,
    kubectl: PathBuf,
    /// Whether devportal runs alongside (always assumed for an external cluster).
    devportal: bool,
    /// The devportal binary running alongside, when this process started it.
    binary: Option<PathBuf>,
    /// Where processes started by tests keep logs and pid files.
    state: PathBuf,
    /// The supervising script; its stdin stays open for as long as this process lives.
    _supervisor: Option<Mutex<(Child, BufReader<ChildStdout>)>>,
}

static CONTROL_PLANE: OnceLock<ControlPlane> = OnceLock::new();

/// The control planes of tests/serial/, one per lane of [`serial`], each started on first use.
static EXCLUSIVE_PLANES: [OnceLock<ControlPlane>; serial::LANES] =
    [const { OnceLock::new() }; serial::LANES];

/// The test binary whose tests each hold a control plane of their own ([`serial`]).
const EXCLUSIVE: &str = "serial";

/// The repository root.
pub fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The test binary whose tests all share `devportal run` (tests/it/).
const SHARES_DEVPORTAL: &str = "it";

/// This crate's `devportal` binary.
fn devportal_binary() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_devportal"))
}

/// The shared control plane, started on first call (or the one this binary already started):
/// the bare one, except in tests/it/, where it is always the one with devportal, so that no test
/// there can start it bare by reaching the cluster (say, with [`TestNamespace::new`]) before
/// another calls [`control_plane_with_devportal`]. In tests/serial/, the one the calling test
/// holds ([`serial::exclusive_cluster`]).
///
/// [`TestNamespace::new`]: super::namespaces::TestNamespace::new
pub fn control_plane() -> &'static ControlPlane {
    if env!("CARGO_CRATE_NAME") == SHARES_DEVPORTAL {
        return control_plane_with_devportal();
    }
    if env!("CARGO_CRATE_NAME") == EXCLUSIVE {
        let lane = serial::current_lane().expect(
            "a test of tests/serial/ takes `support::serial::exclusive_cluster().await` first, \
             on the test's own thread, before it reaches a cluster",
        );
        return EXCLUSIVE_PLANES[lane].get_or_init(|| start(None, &format!("-lane{lane}")));
    }
    CONTROL_PLANE.get_or_init(|| start(None, ""))
}

/// The shared control plane with `devportal run` (webhook registered, controller leading) running,
/// started on first call.
pub fn control_plane_with_devportal() -> &'static ControlPlane {
    let cp = CONTROL_PLANE.get_or_init(|| start(Some(devportal_binary()), ""));
    assert!(
        cp.devportal,
        "this test binary already started a control plane without devportal"
    );
    cp
}

/// The same as [`control_plane_with_devportal`], running `binary` (a devportal built some other
/// way, such as the one in the container image) instead of this crate's. It must be the binary's
/// first call that reaches the cluster: a control plane already running another devportal fails
/// the test.
pub fn control_plane_with_devportal_binary(binary: &Path) -> &'static ControlPlane {
    let cp = CONTROL_PLANE.get_or_init(|| start(Some(binary), ""));
    assert!(
        cp.devportal,
        "this test binary already started a control plane without devportal"
    );
    if let Some(running) = &cp.binary {
        assert_eq!(
            running, binary,
            "this test binary already started a control plane with another devportal"
        );
    }
    cp
}

// The supervisor is deliberately never waited for: it lives as long as this process, and reaps
// itself when our end of its stdin closes at exit.
#[allow(clippy::zombie_processes)]
/// Starts a control plane (with `devportal run` when given a binary); `name` tells apart the
/// state directories of the control planes one process starts.
fn start(devportal: Option<&Path>, name: &str) -> ControlPlane {
    if let Ok(dir) = std::env::var("DEVPORTAL_TEST_KUBECONFIGS") {
        return ControlPlane {
            kubeconfigs: dir.into(),
            kubectl: "kubectl".into(),
            devportal: true,
            binary: None,
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
        .join(format!("{binary}-{}{name}", std::process::id()));
    let mut command = Command::new(repo_root().join("hack/local-cluster.sh"));
    command
        .arg("run")
        .env("DEVPORTAL_LOCAL_DIR", &state)
        .env_remove("DEVPORTAL_BIN");
    if let Some(bin) = devportal {
        // A tenant's `Kuadrant` CR is reported at the next poll (tests/it/shared_labels.rs waits
        // for it): every 5 s here rather than the default minute.
        command
            .env("DEVPORTAL_BIN", bin)
            .env("DEVPORTAL_KUADRANT_POLL_INTERVAL", "5s");
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
                binary: devportal.map(Path::to_path_buf),
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

    /// A value of the local control plane's `run/state.env` (ports, set by hack/local-cluster.sh).
    fn state_value(&self, key: &str) -> String {
        let state = std::fs::read_to_string(self.state.join("run/state.env")).expect("state.env");
        let prefix = format!("{key}=");
        state
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("state.env has no {key} (use control_plane_with_devportal)"))
            .to_string()
    }

    /// The address of the webhook port of the devportal that `control_plane_with_devportal`
    /// started (local control plane only).
    pub fn devportal_webhook_addr(&self) -> std::net::SocketAddr {
        let port = self.state_value("WEBHOOK_PORT");
        format!("127.0.0.1:{port}").parse().expect("an address")
    }

    /// The process id of the devportal that `control_plane_with_devportal` started.
    pub fn devportal_pid(&self) -> u32 {
        std::fs::read_to_string(self.state.join("run/devportal.pid"))
            .expect("devportal.pid")
            .trim()
            .parse()
            .expect("a pid")
    }

    /// A file of the local control plane's PKI (`pki/` of hack/local-cluster.sh), read as text:
    /// `webhook/ca.crt` (the webhook's serving CA), `webhook-client.crt` and `webhook-client.key`
    /// (the client certificate the API server presents to webhooks).
    pub fn pki_file(&self, name: &str) -> String {
        let path = self.state.join("pki").join(name);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
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

/// A kube client that authenticates as `persona` on the shared bare control plane.
pub async fn client(persona: Persona) -> Client {
    control_plane().client(persona).await
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
