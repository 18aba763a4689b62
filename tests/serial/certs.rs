//! Self-managed webhook certificates against the real control plane: devportal issues a CA and a
//! serving certificate into a Secret, serves with it, patches the CA into both webhook
//! configurations, and renews the serving certificate when too little of its validity is left.

use crate::support;

use std::time::Duration;

use devportal::names::{GROUP, VERSION};
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::PostParams;
use serde_json::json;
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, SYSTEM_NAMESPACE, control_plane, eventually, free_port};

const WAIT: Duration = Duration::from_secs(60);
/// The webhook configurations' name; devportal's RBAC lets it patch only `devportal`.
const CONFIGURATION: &str = "devportal";

fn webhook(name: &str) -> serde_json::Value {
    json!({
        "name": name,
        "admissionReviewVersions": ["v1"],
        "sideEffects": "None",
        "clientConfig": {"url": "https://127.0.0.1:9/never"},
        "rules": [{"apiGroups": [GROUP], "apiVersions": [VERSION],
                   "operations": ["CREATE"], "resources": ["apikeys"]}],
        // Matches no namespace: this configuration exists only to receive a caBundle.
        "namespaceSelector": {"matchLabels": {format!("{GROUP}/certs-test"): "never"}}
    })
}

fn data(secret: &Secret, key: &str) -> Vec<u8> {
    secret.data.as_ref().unwrap()[key].0.clone()
}

/// GET /readyz on the webhook port, trusting only `ca` and naming the in-cluster Service.
async fn handshake(port: u16, ca: &[u8]) -> reqwest::Result<reqwest::StatusCode> {
    let host = "devportal.devportal-system.svc";
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca)?)
        .resolve(host, format!("127.0.0.1:{port}").parse().unwrap())
        .build()?;
    Ok(client
        .get(format!("https://{host}:{port}/readyz"))
        .send()
        .await?
        .status())
}

#[tokio::test]
async fn self_managed_certificates_are_issued_injected_and_renewed() {
    let _serial = exclusive_cluster().await;
    let cp = control_plane();
    let admin = cp.client(Persona::Admin).await;
    let mutating: MutatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION}, "webhooks": [webhook("apikeys.mutate.certs-test.example.com")]
    }))
    .unwrap();
    let validating: ValidatingWebhookConfiguration = serde_json::from_value(json!({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": CONFIGURATION}, "webhooks": [webhook("apikeys.validate.certs-test.example.com")]
    }))
    .unwrap();
    let mutating_api = Api::<MutatingWebhookConfiguration>::all(admin.clone());
    let validating_api = Api::<ValidatingWebhookConfiguration>::all(admin.clone());
    mutating_api
        .create(&PostParams::default(), &mutating)
        .await
        .unwrap();
    validating_api
        .create(&PostParams::default(), &validating)
        .await
        .unwrap();

    let dir = cp.state_dir().join("self-managed-certs");
    let (cert, key) = (dir.join("tls.crt"), dir.join("tls.key"));
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let args = |validity: &'static str| {
        vec![
            "--self-managed-certs".to_string(),
            "--certs-namespace".into(),
            SYSTEM_NAMESPACE.into(),
            "--cert-validity".into(),
            validity.into(),
            "--listen".into(),
            listen.clone(),
            "--tls-cert-file".into(),
            cert.display().to_string(),
            "--tls-key-file".into(),
            key.display().to_string(),
        ]
    };
    let start = |validity| {
        let args = args(validity);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Devportal::start("webhook", &args, &[])
    };

    // First start: nothing exists, so devportal issues a short-lived serving certificate.
    let mut first = start("2h");
    let secrets = Api::<Secret>::namespaced(admin.clone(), SYSTEM_NAMESPACE);
    let issued = eventually("the certificate Secret", WAIT, || async {
        secrets.get_opt("devportal-webhook-tls").await.unwrap()
    })
    .await;
    let ca = data(&issued, "ca.crt");
    assert!(String::from_utf8_lossy(&data(&issued, "tls.key")).contains("PRIVATE KEY"));
    eventually("both caBundles", WAIT, || async {
        let m = mutating_api.get(CONFIGURATION).await.ok()?;
        let v = validating_api.get(CONFIGURATION).await.ok()?;
        let bundle = |c: Option<&k8s_openapi::ByteString>| c.map(|b| b.0.clone());
        (bundle(m.webhooks?[0].client_config.ca_bundle.as_ref()) == Some(ca.clone())
            && bundle(v.webhooks?[0].client_config.ca_bundle.as_ref()) == Some(ca.clone()))
        .then_some(())
    })
    .await;
    assert_eq!(
        std::fs::read(&cert).unwrap(),
        data(&issued, "tls.crt"),
        "the serving pair is written where the server reads it"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        mode, 0o600,
        "the private key is readable by its owner only: {mode:o}"
    );
    let status = eventually("a TLS handshake trusting only the CA", WAIT, || async {
        handshake(port, &ca).await.ok()
    })
    .await;
    assert_eq!(status, 200);
    assert!(
        first
            .terminate(Duration::from_secs(30))
            .is_some_and(|s| s.success()),
        "{}",
        first.log_text()
    );

    // Restart with the real validity: 2h is far inside the last third of 90 days, so the serving
    // certificate is renewed — by the same CA, which the webhooks already trust.
    let second = start("90d");
    let renewed = eventually("the serving certificate to be renewed", WAIT, || async {
        let s = secrets.get("devportal-webhook-tls").await.ok()?;
        (data(&s, "tls.crt") != data(&issued, "tls.crt")).then_some(s)
    })
    .await;
    assert_eq!(data(&renewed, "ca.crt"), ca, "the CA is kept");
    // Its expiry, and the CA's, are on /metrics for DevportalCertificateExpiringSoon.
    let annotations = renewed.metadata.annotations.clone().unwrap_or_default();
    let expiry = |key: &str| {
        let at: k8s_openapi::jiff::Timestamp = annotations[key].parse().unwrap();
        at.as_second()
    };
    let wanted = [
        ("serving", expiry(devportal::names::certs::SERVING_NOT_AFTER)),
        ("ca", expiry(devportal::names::certs::CA_NOT_AFTER)),
    ]
    .map(|(certificate, at)| {
        format!("devportal_certificate_expiry_timestamp_seconds{{certificate=\"{certificate}\"}} {at}.0\n")
    });
    let metrics = format!("http://127.0.0.1:{}/metrics", second.admin_port);
    eventually("the certificates' expiry on /metrics", WAIT, || async {
        let text = reqwest::get(&metrics).await.ok()?.text().await.ok()?;
        wanted.iter().all(|line| text.contains(line)).then_some(())
    })
    .await;
    eventually("the renewed certificate on disk", WAIT, || async {
        (std::fs::read(&cert).ok()? == data(&renewed, "tls.crt")).then_some(())
    })
    .await;
    let status = eventually("a handshake with the renewed certificate", WAIT, || async {
        handshake(port, &ca).await.ok()
    })
    .await;
    assert_eq!(status, 200);

    // The next test on this control plane starts without them.
    let gone = kube::api::DeleteParams::default();
    mutating_api.delete(CONFIGURATION, &gone).await.unwrap();
    validating_api.delete(CONFIGURATION, &gone).await.unwrap();
}
