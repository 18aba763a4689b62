//! Serving certificates from PEM files, reloaded when the files change, and (optionally) client
//! certificates checked against a CA file reloaded the same way ([`client_ca`]).
//!
//! [`ReloadingCert`] is a rustls [`ResolvesServerCert`] whose current [`CertifiedKey`] is swapped
//! when [`watch`] sees different file contents. It polls and compares contents rather than
//! watching inodes, so it also follows a Secret volume's `..data` symlink swap. New handshakes
//! get the new certificate; established connections keep their session.

pub mod client_ca;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::ServerConfig;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_util::sync::CancellationToken;

pub use client_ca::ReloadingClientCa;

use crate::{Error, Result};

/// Something loaded from files that [`watch`] re-reads.
pub trait Reload: Send + Sync + 'static {
    /// Re-reads the files and swaps what was loaded when their contents changed and are valid.
    /// Returns whether it swapped; on an error the current version stays in place.
    fn reload(&self) -> Result<bool>;

    /// What this is, for logs.
    fn what(&self) -> String;
}

/// Calls [`Reload::reload`] on `this` every `interval` until `shutdown` is cancelled.
pub async fn watch<R: Reload>(this: Arc<R>, interval: Duration, shutdown: CancellationToken) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = ticker.tick() => {}
        }
        let that = this.clone();
        match tokio::task::spawn_blocking(move || that.reload()).await {
            Ok(Ok(true)) => tracing::info!(what = %this.what(), "reloaded"),
            Ok(Ok(false)) => {}
            Ok(Err(e)) => {
                tracing::warn!(what = %this.what(), error = %e, "not reloaded; keeping the current one")
            }
            Err(e) => tracing::warn!(error = %e, "reload task failed"),
        }
    }
}

/// Where the certificate chain and private key live.
#[derive(Clone, Debug)]
pub struct CertFiles {
    /// PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

/// The contents of `path`.
fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| Error::Io {
        path: path.into(),
        source,
    })
}

impl CertFiles {
    /// Reads both files.
    fn contents(&self) -> Result<(Vec<u8>, Vec<u8>)> {
        Ok((read(&self.cert)?, read(&self.key)?))
    }
}

/// Parses a PEM chain and key into a [`CertifiedKey`], checking that they belong together.
pub fn certified_key(cert_pem: &[u8], key_pem: &[u8]) -> Result<CertifiedKey> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Tls(format!("reading the certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(Error::Tls(
            "the certificate file holds no certificate".into(),
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem)
        .map_err(|e| Error::Tls(format!("reading the private key: {e}")))?;
    let provider = rustls::crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider)
        .map_err(|e| Error::Tls(format!("certificate and key do not form a pair: {e}")))
}

/// The loaded certificate and the file contents it came from.
struct Loaded {
    key: Arc<CertifiedKey>,
    contents: (Vec<u8>, Vec<u8>),
}

/// A server certificate that follows its files.
pub struct ReloadingCert {
    files: CertFiles,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for ReloadingCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingCert")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl ReloadingCert {
    /// Loads the files; fails when they are missing or do not hold a matching pair.
    pub fn load(files: CertFiles) -> Result<Self> {
        let contents = files.contents()?;
        let key = Arc::new(certified_key(&contents.0, &contents.1)?);
        Ok(ReloadingCert {
            files,
            current: RwLock::new(Loaded { key, contents }),
        })
    }

    /// A rustls server configuration serving this certificate, offering HTTP/2 and HTTP/1.1,
    /// and requiring a client certificate that `client_ca` accepts when given.
    pub fn server_config(
        self: &Arc<Self>,
        client_ca: Option<Arc<ReloadingClientCa>>,
    ) -> Result<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| Error::Tls(format!("protocol versions: {e}")))?;
        let builder = match client_ca {
            Some(ca) => builder.with_client_cert_verifier(ca as Arc<dyn ClientCertVerifier>),
            None => builder.with_no_client_auth(),
        };
        let mut config = builder.with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(config)
    }
}

impl Reload for ReloadingCert {
    /// A half-written update (a new certificate with the old key) is an error and leaves the
    /// current certificate in place until the next check.
    fn reload(&self) -> Result<bool> {
        let contents = self.files.contents()?;
        if self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contents
            == contents
        {
            return Ok(false);
        }
        let key = Arc::new(certified_key(&contents.0, &contents.1)?);
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Loaded { key, contents };
        Ok(true)
    }

    fn what(&self) -> String {
        format!("serving certificate {}", self.files.cert.display())
    }
}

impl ResolvesServerCert for ReloadingCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .key
                .clone(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(name: &str) -> (String, String) {
        let cert = rcgen::generate_simple_self_signed(vec![name.to_string()]).unwrap();
        (cert.cert.pem(), cert.signing_key.serialize_pem())
    }

    #[test]
    fn reload_swaps_only_on_a_valid_change() {
        let dir = std::env::temp_dir().join(format!("devportal-tls-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let files = CertFiles {
            cert: dir.join("tls.crt"),
            key: dir.join("tls.key"),
        };
        let (cert_a, key_a) = pair("a.example");
        std::fs::write(&files.cert, &cert_a).unwrap();
        std::fs::write(&files.key, &key_a).unwrap();
        let cert = ReloadingCert::load(files.clone()).unwrap();
        let first = cert.current.read().unwrap().key.clone();
        assert!(!cert.reload().unwrap(), "unchanged files are not reloaded");

        // A half-written rotation: new certificate, old key.
        let (cert_b, key_b) = pair("b.example");
        std::fs::write(&files.cert, &cert_b).unwrap();
        let err = cert.reload().unwrap_err();
        assert!(err.to_string().contains("do not form a pair"), "{err}");
        assert!(Arc::ptr_eq(&first, &cert.current.read().unwrap().key));

        std::fs::write(&files.key, &key_b).unwrap();
        assert!(cert.reload().unwrap());
        assert!(!Arc::ptr_eq(&first, &cert.current.read().unwrap().key));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let err = certified_key(b"not pem", b"not pem").unwrap_err();
        assert!(err.to_string().contains("no certificate"), "{err}");
    }
}
