//! [`Replicated`]: several `devportal webhook` replicas behind a round-robin [`RoundRobin`]
//! proxy, registered with the API server (webhooks/*.yaml, failurePolicy Fail), and a
//! `devportal controller`, all with the same extra flags — devportal as a Deployment of several
//! webhook pods behind a Service would run.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use devportal::tls::CertFiles;

use super::control_plane::{control_plane, repo_root, stdout_of};
use super::personas::Persona;
use super::processes::{Devportal, free_port};
use super::proxy::RoundRobin;

/// The webhook replicas, the proxy in front of them and the controller.
pub struct Replicated {
    /// The webhook processes.
    pub replicas: Vec<Devportal>,
    /// The controller process.
    pub controller: Devportal,
    /// The proxy the webhook configurations point at.
    pub proxy: RoundRobin,
}

impl Replicated {
    /// Starts `count` webhook replicas and a controller (Lease `replicated-tests`) with `flags`,
    /// and registers the webhooks; the validating webhook leaves out namespaces labelled
    /// `unguarded_label`, where only the controller guards the invariants.
    pub fn start(count: usize, flags: &[String], unguarded_label: &str) -> Self {
        let cp = control_plane();
        let pki = cp.state_dir().join("replicated-pki");
        let generated = Command::new(repo_root().join("certs/gen.sh"))
            .arg(&pki)
            .output()
            .expect("certs/gen.sh runs");
        assert!(generated.status.success(), "certs/gen.sh failed");
        let files = CertFiles {
            cert: pki.join("tls.crt"),
            key: pki.join("tls.key"),
        };
        let replicas: Vec<_> = (0..count)
            .map(|_| {
                let listen: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
                let mut args = vec![
                    "--listen".to_string(),
                    listen.to_string(),
                    "--tls-cert-file".into(),
                    files.cert.display().to_string(),
                    "--tls-key-file".into(),
                    files.key.display().to_string(),
                ];
                args.extend_from_slice(flags);
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let replica = Devportal::start("webhook", &args, &[]);
                wait_listening(listen, &replica);
                (listen, replica)
            })
            .collect();
        let ca = std::fs::read_to_string(pki.join("ca.crt")).expect("CA certificate");
        let backends = replicas.iter().map(|(addr, _)| *addr).collect();
        let proxy = RoundRobin::start(backends, files, &ca);
        register(
            &format!("https://{}", proxy.addr),
            &pki.join("ca.crt"),
            unguarded_label,
        );
        let mut args = vec!["--lease-name".to_string(), "replicated-tests".into()];
        args.extend_from_slice(flags);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Replicated {
            replicas: replicas.into_iter().map(|(_, r)| r).collect(),
            controller: Devportal::controller(&args, &[]),
            proxy,
        }
    }
}

/// Unregisters the webhooks before the replicas stop, so no test that follows meets a webhook
/// configuration with failurePolicy Fail and nothing behind it. The replicas keep answering for a
/// moment while the API server notices the deletion.
impl Drop for Replicated {
    fn drop(&mut self) {
        for kind in [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ] {
            let _ = control_plane().kubectl(
                Persona::Admin,
                &["delete", kind, "devportal", "--ignore-not-found"],
                None,
            );
        }
        std::thread::sleep(Duration::from_secs(2));
    }
}

/// Blocks until the webhook `what` accepts connections on `addr` (it binds once its caches
/// synced).
fn wait_listening(addr: SocketAddr, what: &Devportal) {
    for _ in 0..600 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "webhook on {addr} never listened; log:\n{}",
        what.log_text()
    );
}

/// Registers webhooks/*.yaml with `url` and the CA `ca`, the validating one leaving out
/// namespaces labelled `unguarded_label`.
fn register(url: &str, ca: &Path, unguarded_label: &str) {
    let ca = std::fs::read(ca).expect("CA certificate");
    // ByteString serializes as base64, the form caBundle takes.
    let bundle = serde_json::to_value(k8s_openapi::ByteString(ca)).expect("base64");
    let bundle = bundle.as_str().expect("a string");
    let mut manifests = String::new();
    for file in ["webhooks/mutating.yaml", "webhooks/validating.yaml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect(file);
        let mut text = text
            .replace("${WEBHOOK_URL}", url)
            .replace("${CA_BUNDLE}", bundle);
        if file.contains("validating") {
            let excluded = format!(
                "values: [kube-system]}}\n    - {{key: {unguarded_label}, operator: DoesNotExist}}"
            );
            text = text.replace("values: [kube-system]}", &excluded);
        }
        manifests.push_str(&text);
        manifests.push_str("\n---\n");
    }
    stdout_of(&control_plane().kubectl(
        Persona::Admin,
        &["apply", "--server-side", "--force-conflicts", "-f", "-"],
        Some(&manifests),
    ));
}
