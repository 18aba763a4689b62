//! Client-certificate authentication of the webhook's callers (`--client-ca`).
//!
//! [`ReloadingClientCa`] is a rustls [`ClientCertVerifier`] that requires every client to present
//! a certificate chaining to the CA bundle in a PEM file, and follows that file like
//! [`super::ReloadingCert`] follows the serving certificate: new handshakes are checked against
//! the new bundle, established connections keep their session. It sends no CA names in its
//! certificate request, so a client with one certificate (the API server) always presents it.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use rustls::client::danger::HandshakeSignatureValid;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, UnixTime};

use super::{Reload, read};
use crate::{Error, Result};

/// The verifier for a PEM bundle of CA certificates.
pub fn verifier(ca_pem: &[u8]) -> Result<Arc<dyn ClientCertVerifier>> {
    let mut roots = RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem) {
        let cert = cert.map_err(|e| Error::Tls(format!("reading the client CA bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| Error::Tls(format!("a client CA certificate is unusable: {e}")))?;
    }
    if roots.is_empty() {
        return Err(Error::Tls("the client CA file holds no certificate".into()));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| Error::Tls(format!("client certificate verifier: {e}")))
}

struct Loaded {
    verifier: Arc<dyn ClientCertVerifier>,
    contents: Vec<u8>,
}

/// Client-certificate verification against a CA bundle file that is reloaded when it changes.
pub struct ReloadingClientCa {
    file: PathBuf,
    current: RwLock<Loaded>,
}

impl std::fmt::Debug for ReloadingClientCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReloadingClientCa")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl ReloadingClientCa {
    /// Loads the bundle; fails when the file is missing or holds no usable CA certificate.
    pub fn load(file: PathBuf) -> Result<Self> {
        let contents = read(&file)?;
        let verifier = verifier(&contents)?;
        Ok(ReloadingClientCa {
            file,
            current: RwLock::new(Loaded { verifier, contents }),
        })
    }

    fn current(&self) -> Arc<dyn ClientCertVerifier> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .verifier
            .clone()
    }
}

impl Reload for ReloadingClientCa {
    fn reload(&self) -> Result<bool> {
        let contents = read(&self.file)?;
        if self
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contents
            == contents
        {
            return Ok(false);
        }
        let verifier = verifier(&contents)?;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Loaded { verifier, contents };
        Ok(true)
    }

    fn what(&self) -> String {
        format!("client CA {}", self.file.display())
    }
}

impl ClientCertVerifier for ReloadingClientCa {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> std::result::Result<ClientCertVerified, rustls::Error> {
        self.current()
            .verify_client_cert(end_entity, intermediates, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> std::result::Result<HandshakeSignatureValid, rustls::Error> {
        self.current().verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.current().supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    };

    use super::*;

    /// A CA certificate (PEM) and a client certificate (DER) it issued.
    fn ca_and_client() -> (String, CertificateDer<'static>) {
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let mut client = CertificateParams::new(Vec::<String>::new()).unwrap();
        client.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let client_cert = client
            .signed_by(&KeyPair::generate().unwrap(), &issuer)
            .unwrap();
        (ca_cert.pem(), client_cert.der().clone())
    }

    #[test]
    fn only_certificates_from_the_current_ca_file_pass() {
        let dir = std::env::temp_dir().join(format!("devportal-client-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("ca.crt");
        let (ca_a, client_a) = ca_and_client();
        let (ca_b, client_b) = ca_and_client();
        std::fs::write(&file, &ca_a).unwrap();
        let ca = ReloadingClientCa::load(file.clone()).unwrap();
        assert!(ca.client_auth_mandatory());
        let now = UnixTime::now();
        assert!(ca.verify_client_cert(&client_a, &[], now).is_ok());
        assert!(ca.verify_client_cert(&client_b, &[], now).is_err());
        assert!(!ca.reload().unwrap(), "unchanged");

        std::fs::write(&file, "not a certificate").unwrap();
        assert!(ca.reload().is_err(), "garbage is refused");
        assert!(ca.verify_client_cert(&client_a, &[], now).is_ok(), "kept");

        std::fs::write(&file, &ca_b).unwrap();
        assert!(ca.reload().unwrap());
        assert!(ca.verify_client_cert(&client_b, &[], now).is_ok());
        assert!(ca.verify_client_cert(&client_a, &[], now).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
