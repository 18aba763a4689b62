//! Issuing the CA and serving certificates (rcgen).

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};

use super::CA_VALIDITY;
use crate::{Error, Result};

/// The CA's parameters, shared by its self-signature and by the issuer of serving certificates.
fn ca_params(now: Timestamp) -> Result<CertificateParams> {
    let mut params = CertificateParams::new(Vec::<String>::new()).map_err(cert_error)?;
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "devportal-webhook-ca");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    params.not_before = offset(now - SignedDuration::from_mins(5))?;
    params.not_after = offset(now + CA_VALIDITY)?;
    Ok(params)
}

/// A new CA: certificate PEM, key PEM, expiry.
pub(super) fn issue_ca(now: Timestamp) -> Result<(String, String, Timestamp)> {
    let key = KeyPair::generate().map_err(cert_error)?;
    let cert = ca_params(now)?.self_signed(&key).map_err(cert_error)?;
    Ok((cert.pem(), key.serialize_pem(), now + CA_VALIDITY))
}

/// A serving certificate for `names` signed by the CA whose key is `ca_key`.
pub(super) fn issue_serving(
    ca_key: &str,
    names: &[String],
    validity: SignedDuration,
    now: Timestamp,
) -> Result<(String, String, Timestamp)> {
    let ca_key = KeyPair::from_pem(ca_key).map_err(cert_error)?;
    // The CA certificate itself is not needed: same subject and key give a matching issuer.
    let issuer = Issuer::new(ca_params(now)?, ca_key);
    let mut params = CertificateParams::new(names.to_vec()).map_err(cert_error)?;
    let mut name = DistinguishedName::new();
    name.push(
        DnType::CommonName,
        names.first().cloned().unwrap_or_default(),
    );
    params.distinguished_name = name;
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
    ];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    params.use_authority_key_identifier_extension = true;
    params.not_before = offset(now - SignedDuration::from_mins(5))?;
    params.not_after = offset(now + validity)?;
    let key = KeyPair::generate().map_err(cert_error)?;
    let cert = params.signed_by(&key, &issuer).map_err(cert_error)?;
    Ok((cert.pem(), key.serialize_pem(), now + validity))
}

fn offset(t: Timestamp) -> Result<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(t.as_second()).map_err(|e| Error::Tls(e.to_string()))
}

fn cert_error(e: rcgen::Error) -> Error {
    Error::Tls(format!("issuing a certificate: {e}"))
}
