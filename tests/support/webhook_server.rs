//! The webhook's HTTPS server in-process, answering from an in-memory cluster, with certificates
//! in a directory laid out like a mounted Secret: for tests of the transport (TLS, connection
//! limits, bodies) without a control plane.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use devportal::resources::APIProduct;
use devportal::tls::{CertFiles, ReloadingCert};
use devportal::webhook::connections::{self, Transport};
use devportal::webhook::http;
use devportal::webhook::lookup::{Lookup, MemoryLookup};
use devportal::webhook::review::Webhook;
use devportal::webhook::rules::Limits;
use serde_json::{Value, json};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A self-signed serving certificate for 127.0.0.1 and localhost.
pub struct Pair {
    /// PEM certificate.
    pub cert: String,
    /// PEM private key.
    pub key: String,
}

/// A fresh [`Pair`].
pub fn pair() -> Pair {
    let generated =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate generated");
    Pair {
        cert: generated.cert.pem(),
        key: generated.signing_key.serialize_pem(),
    }
}

/// The DER of the first certificate in `pem`.
pub fn der(pem: &str) -> Vec<u8> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes())
        .unwrap()
        .to_vec()
}

/// A directory laid out like a mounted Secret: `tls.crt -> ..data/tls.crt`, `..data -> ..<version>`.
pub struct SecretVolume {
    dir: PathBuf,
    version: u32,
}

impl SecretVolume {
    /// A volume holding `pair`.
    pub fn new(pair: &Pair) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "devportal-secret-{}-{:?}",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let mut volume = SecretVolume { dir, version: 0 };
        volume.write(pair);
        for file in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(Path::new("..data").join(file), volume.dir.join(file))
                .unwrap();
        }
        volume
    }

    /// Writes a new version and swaps `..data` to it atomically, as the kubelet does.
    pub fn write(&mut self, pair: &Pair) {
        self.version += 1;
        let version = format!("..v{}", self.version);
        let target = self.dir.join(&version);
        std::fs::create_dir_all(&target).unwrap();
        std::fs::write(target.join("tls.crt"), &pair.cert).unwrap();
        std::fs::write(target.join("tls.key"), &pair.key).unwrap();
        let tmp = self.dir.join("..data_tmp");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&version, &tmp).unwrap();
        std::fs::rename(&tmp, self.dir.join("..data")).unwrap();
        if self.version > 1 {
            std::fs::remove_dir_all(self.dir.join(format!("..v{}", self.version - 1))).unwrap();
        }
    }

    /// The certificate and key paths, through the symlinks.
    pub fn files(&self) -> CertFiles {
        CertFiles {
            cert: self.dir.join("tls.crt"),
            key: self.dir.join("tls.key"),
        }
    }
}

impl Drop for SecretVolume {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A server started by [`start`] and friends.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Cancel to shut it down.
    pub shutdown: CancellationToken,
    /// The server task; it ends once drained.
    pub server: JoinHandle<()>,
}

/// The published product `apps/toys` with the tier `gold`.
pub fn product() -> APIProduct {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
        "metadata": {"name": "toys", "namespace": "apps"},
        "spec": {"displayName": "Toys", "publishStatus": "Published",
                 "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "r"}},
        "status": {"discoveredPlans": [{"tier": "gold", "limits": {}}]}
    }))
    .unwrap()
}

/// Serves over `files` with a `max_body_bytes` cap, answering from a cluster holding [`product`].
pub async fn start(files: CertFiles, max_body_bytes: usize) -> Running {
    start_with(
        files,
        max_body_bytes,
        MemoryLookup::default().with_product(product()),
    )
    .await
}

/// The same as [`start`], answering from `cluster`.
pub async fn start_with<C: Lookup>(files: CertFiles, max_body_bytes: usize, cluster: C) -> Running {
    start_transport(files, max_body_bytes, cluster, Transport::default()).await
}

/// The same as [`start_with`], with the connection limits `transport`.
pub async fn start_transport<C: Lookup>(
    files: CertFiles,
    max_body_bytes: usize,
    cluster: C,
    transport: Transport,
) -> Running {
    let webhook = Arc::new(Webhook::new(
        cluster,
        Limits {
            max_keys_per_user_per_product: 5,
            expired_key_grace: Duration::from_secs(86_400),
            max_key_lifetime: Duration::from_secs(86_400),
            controller_username: "system:serviceaccount:devportal-system:devportal".into(),
        },
    ));
    let cert = Arc::new(ReloadingCert::load(files).expect("certificate loads"));
    let tls = Arc::new(cert.server_config(None).unwrap());
    let shutdown = CancellationToken::new();
    tokio::spawn(devportal::tls::watch(
        cert,
        Duration::from_millis(50),
        shutdown.clone(),
    ));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = http::router(
        webhook,
        max_body_bytes,
        std::sync::Arc::new(devportal::metrics::Metrics::new()),
        shutdown.clone(),
    );
    let server = tokio::spawn(connections::serve(
        listener,
        tls,
        app,
        transport,
        shutdown.clone(),
    ));
    Running {
        addr,
        shutdown,
        server,
    }
}

/// A CREATE review of a key request for `toys` at `gold` by `consumer`.
pub fn key_review() -> String {
    json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "kind": "APIKey"},
            "resource": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "resource": "apikeys"},
            "namespace": "apps", "operation": "CREATE",
            "userInfo": {"username": "consumer"},
            "object": {"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
                       "metadata": {"name": "k", "namespace": "apps"},
                       "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                                "requestedBy": {"userId": "consumer"}}},
            "oldObject": null
        }
    })
    .to_string()
}

/// The `response` of an AdmissionReview reply.
pub fn response_of(body: &[u8]) -> Value {
    serde_json::from_slice::<Value>(body).expect("JSON reply")["response"].clone()
}
