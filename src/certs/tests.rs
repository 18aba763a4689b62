use super::*;
use clap::Parser;
use rustls::client::danger::ServerCertVerifier;
use rustls_pki_types::pem::PemObject;

#[derive(Parser)]
struct Flags {
    #[command(flatten)]
    certs: CertArgs,
}

fn args(validity: &str) -> CertArgs {
    Flags::parse_from(["test", "--self-managed-certs", "--cert-validity", validity]).certs
}

#[test]
fn issues_then_leaves_alone_then_renews_in_the_last_third() {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let args = args("90d");
    let issued = issue_all(&args, now).unwrap();
    let data = issued.data.as_ref().unwrap();
    for key in [CA_CERT, CA_KEY, TLS_CERT, TLS_KEY] {
        assert!(data.contains_key(key), "{key}");
    }
    assert!(
        renew(&issued, &args, now + SignedDuration::from_hours(24 * 59))
            .unwrap()
            .is_none()
    );
    let renewed = renew(&issued, &args, now + SignedDuration::from_hours(24 * 61))
        .unwrap()
        .expect("renewed");
    let after = renewed.data.as_ref().unwrap();
    assert_ne!(after[TLS_CERT], data[TLS_CERT]);
    assert_eq!(after[CA_CERT], data[CA_CERT], "the CA is kept");
    assert!(!after.contains_key(PREVIOUS_CA));
}

#[test]
fn renewing_the_ca_keeps_the_old_one_in_the_bundle_until_it_expires() {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let args = args("90d");
    let issued = issue_all(&args, now).unwrap();
    let late = now + CA_VALIDITY - SignedDuration::from_hours(24 * 300);
    let renewed = renew(&issued, &args, late).unwrap().expect("the CA is due");
    let data = renewed.data.as_ref().unwrap();
    assert_eq!(data[PREVIOUS_CA], issued.data.as_ref().unwrap()[CA_CERT]);
    assert_ne!(data[CA_CERT], data[PREVIOUS_CA]);
    let expired = renew(
        &renewed,
        &args,
        now + CA_VALIDITY + SignedDuration::from_hours(1),
    )
    .unwrap()
    .expect("serving due");
    assert!(!expired.data.as_ref().unwrap().contains_key(PREVIOUS_CA));
}

#[test]
fn the_metrics_carry_each_certificates_expiry_and_drop_the_previous_ca_once_gone() {
    let now: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
    let args = args("90d");
    let issued = issue_all(&args, now).unwrap();
    let late = now + CA_VALIDITY - SignedDuration::from_hours(24 * 300);
    let rotated = renew(&issued, &args, late).unwrap().expect("the CA is due");
    let metrics = crate::metrics::Metrics::new();
    record_expiry(&rotated, &metrics.certificates);
    let text = metrics.encode();
    let serving = (late + SignedDuration::from_hours(24 * 90)).as_second();
    let old_ca = (now + CA_VALIDITY).as_second();
    let new_ca = (late + CA_VALIDITY).as_second();
    for line in [
        format!(
            "devportal_certificate_expiry_timestamp_seconds{{certificate=\"serving\"}} {serving}"
        ),
        format!("devportal_certificate_expiry_timestamp_seconds{{certificate=\"ca\"}} {new_ca}"),
        format!(
            "devportal_certificate_expiry_timestamp_seconds{{certificate=\"previous_ca\"}} {old_ca}"
        ),
    ] {
        assert!(
            text.contains(&format!("{line}.0\n")),
            "missing {line} in\n{text}"
        );
    }
    record_expiry(&issued, &metrics.certificates);
    let text = metrics.encode();
    assert!(!text.contains("certificate=\"previous_ca\""), "{text}");
}

#[test]
fn the_serving_certificate_chains_to_the_stored_ca() {
    let now = Timestamp::now();
    let args = args("90d");
    let issued = issue_all(&args, now).unwrap();
    let data = issued.data.unwrap();
    let pem = |k: &str| String::from_utf8(data[k].0.clone()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    for ca in rustls_pki_types::CertificateDer::pem_slice_iter(pem(CA_CERT).as_bytes()) {
        roots.add(ca.unwrap()).unwrap();
    }
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        roots.into(),
        rustls::crypto::ring::default_provider().into(),
    )
    .build()
    .unwrap();
    let leaf = rustls_pki_types::CertificateDer::pem_slice_iter(pem(TLS_CERT).as_bytes())
        .next()
        .unwrap()
        .unwrap();
    let name = rustls_pki_types::ServerName::try_from("devportal.devportal-system.svc").unwrap();
    verifier
        .verify_server_cert(&leaf, &[], &name, &[], rustls_pki_types::UnixTime::now())
        .expect("the serving certificate verifies against the CA for the Service name");
}
