//! Self-managed webhook certificates: devportal keeps its own CA and serving certificate in a
//! Secret in its namespace, writes the serving pair where the webhook server reads it (the server
//! reloads it without a restart), and patches the CA into both webhook configurations'
//! `caBundle`. The serving certificate is renewed when a third of its validity is left; the CA,
//! valid ten years, is renewed in its last year, and the previous CA stays in the bundle until it
//! expires so nothing signed by it is rejected during the switch.
//!
//! Every replica runs this; writes use the Secret's resourceVersion, so when two replicas race
//! one wins and the other adopts its result on the next round.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio_util::sync::CancellationToken;

mod ca_bundle;
mod issue;

use ca_bundle::patch_ca_bundles;
use issue::{issue_ca, issue_serving};

use crate::metrics::{Certificate, CertificateMetrics};
use crate::tls::CertFiles;
use crate::{Error, Result};

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const PREVIOUS_CA: &str = "ca-previous.crt";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
use crate::names::certs::{CA_NOT_AFTER, PREVIOUS_CA_NOT_AFTER, SERVING_NAMES, SERVING_NOT_AFTER};
const CA_VALIDITY: SignedDuration = SignedDuration::from_hours(24 * 3650);
const CA_RENEW_BEFORE: SignedDuration = SignedDuration::from_hours(24 * 365);

/// Command-line arguments of the self-managed certificate mode.
#[derive(Clone, Debug, clap::Args)]
pub struct CertArgs {
    /// Manage the webhook's CA and serving certificate here instead of taking them from
    /// cert-manager: keep them in --certs-secret, write them to --tls-cert-file/--tls-key-file
    /// and patch the CA into the webhook configurations.
    #[arg(long, env = "DEVPORTAL_SELF_MANAGED_CERTS")]
    pub self_managed_certs: bool,

    /// Secret holding the self-managed CA and serving certificate.
    #[arg(
        long,
        env = "DEVPORTAL_CERTS_SECRET",
        default_value = "devportal-webhook-tls"
    )]
    pub certs_secret: String,

    /// Namespace of that Secret (the pod's own).
    #[arg(long, env = "POD_NAMESPACE", default_value = "devportal-system")]
    pub certs_namespace: String,

    /// Name of the webhook's Service; the certificate is issued for its DNS names.
    #[arg(long, env = "DEVPORTAL_WEBHOOK_SERVICE", default_value = "devportal")]
    pub webhook_service: String,

    /// Name of the Mutating- and ValidatingWebhookConfiguration whose caBundle is kept current.
    #[arg(
        long,
        env = "DEVPORTAL_WEBHOOK_CONFIGURATION",
        default_value = "devportal"
    )]
    pub webhook_configuration: String,

    /// Validity of a serving certificate; it is renewed when a third of it is left.
    #[arg(long, env = "DEVPORTAL_CERT_VALIDITY", default_value = "90d", value_parser = crate::flags::parse_duration)]
    pub cert_validity: Duration,

    /// How often the certificate and the caBundles are checked.
    #[arg(long, env = "DEVPORTAL_CERT_CHECK_INTERVAL", default_value = "1h", value_parser = crate::flags::parse_duration)]
    pub cert_check_interval: Duration,
}

impl CertArgs {
    /// The DNS names the Service answers to inside the cluster.
    pub fn dns_names(&self) -> Vec<String> {
        let (svc, ns) = (&self.webhook_service, &self.certs_namespace);
        vec![
            svc.clone(),
            format!("{svc}.{ns}"),
            format!("{svc}.{ns}.svc"),
            format!("{svc}.{ns}.svc.cluster.local"),
        ]
    }
}

/// Keeps the certificate current until `shutdown`, checking every `cert_check_interval` (and
/// sooner after a failure), and its expiry in `metrics`.
pub async fn run(
    client: Client,
    args: CertArgs,
    files: CertFiles,
    metrics: CertificateMetrics,
    shutdown: CancellationToken,
) {
    loop {
        let wait = match reconcile(&client, &args, &files, &metrics).await {
            Ok(()) => args.cert_check_interval,
            Err(error) => {
                tracing::warn!(%error, "self-managed certificate check failed; retrying");
                Duration::from_secs(30)
            }
        };
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// One round: make sure the Secret holds a valid CA and serving certificate (issuing or renewing
/// them), write the serving pair to `files`, record when each expires in `metrics`, and patch the
/// CA bundle into the webhook configurations.
pub async fn reconcile(
    client: &Client,
    args: &CertArgs,
    files: &CertFiles,
    metrics: &CertificateMetrics,
) -> Result<()> {
    let secrets = Api::<Secret>::namespaced(client.clone(), &args.certs_namespace);
    let now = Timestamp::now();
    let secret = match secrets.get_opt(&args.certs_secret).await? {
        Some(current) => match renew(&current, args, now)? {
            Some(renewed) => match secrets
                .replace(&args.certs_secret, &PostParams::default(), &renewed)
                .await
            {
                Ok(written) => {
                    tracing::info!(secret = %args.certs_secret, "renewed the webhook certificate");
                    written
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    secrets.get(&args.certs_secret).await?
                }
                Err(e) => return Err(e.into()),
            },
            None => current,
        },
        None => {
            let fresh = issue_all(args, now)?;
            match secrets.create(&PostParams::default(), &fresh).await {
                Ok(written) => {
                    tracing::info!(secret = %args.certs_secret, "issued a webhook CA and certificate");
                    written
                }
                Err(kube::Error::Api(s)) if s.code == 409 => {
                    secrets.get(&args.certs_secret).await?
                }
                Err(e) => return Err(e.into()),
            }
        }
    };
    record_expiry(&secret, metrics);
    let data = secret.data.unwrap_or_default();
    let get = |key: &str| {
        data.get(key)
            .map(|b| b.0.clone())
            .ok_or_else(|| Error::Invalid(format!("Secret {} has no {key}", args.certs_secret)))
    };
    write_if_changed(&files.key, &get(TLS_KEY)?, 0o600)?;
    write_if_changed(&files.cert, &get(TLS_CERT)?, 0o644)?;
    let mut bundle = get(CA_CERT)?;
    if let Some(previous) = data.get(PREVIOUS_CA) {
        bundle.extend_from_slice(&previous.0);
    }
    patch_ca_bundles(client, &args.webhook_configuration, &bundle).await
}

/// The Secret with whatever needs renewing renewed, or `None` when everything is current.
fn renew(current: &Secret, args: &CertArgs, now: Timestamp) -> Result<Option<Secret>> {
    let annotations = current.metadata.annotations.clone().unwrap_or_default();
    let data = current.data.clone().unwrap_or_default();
    let ca_until = when(&annotations, CA_NOT_AFTER);
    let previous_until = when(&annotations, PREVIOUS_CA_NOT_AFTER);
    let names = args.dns_names().join(",");
    let ca_due = ca_until.is_none_or(|t| t - CA_RENEW_BEFORE <= now)
        || !data.contains_key(CA_KEY)
        || !data.contains_key(CA_CERT);
    let serving_left = validity(args)? / 3;
    let serving_due = when(&annotations, SERVING_NOT_AFTER).is_none_or(|t| t - serving_left <= now)
        || annotations.get(SERVING_NAMES) != Some(&names);
    if !ca_due && !serving_due {
        return Ok(None);
    }
    let mut next = current.clone();
    let mut data = data;
    let mut annotations = annotations;
    if ca_due {
        // Keep the outgoing CA in the bundle while certificates it signed may still be served.
        if let (Some(old), Some(until)) = (data.get(CA_CERT).cloned(), ca_until)
            && until > now
        {
            data.insert(PREVIOUS_CA.into(), old);
            annotations.insert(PREVIOUS_CA_NOT_AFTER.into(), until.to_string());
        }
        let (ca_cert, ca_key, until) = issue_ca(now)?;
        data.insert(CA_CERT.into(), ByteString(ca_cert.into_bytes()));
        data.insert(CA_KEY.into(), ByteString(ca_key.into_bytes()));
        annotations.insert(CA_NOT_AFTER.into(), until.to_string());
    }
    if !ca_due && previous_until.is_some_and(|t| t <= now) {
        data.remove(PREVIOUS_CA);
        annotations.remove(PREVIOUS_CA_NOT_AFTER);
    }
    let ca_key = String::from_utf8(data[CA_KEY].0.clone()).map_err(|_| {
        Error::Invalid(format!("Secret {}: {CA_KEY} is not PEM", args.certs_secret))
    })?;
    let (cert, key, until) = issue_serving(&ca_key, &args.dns_names(), validity(args)?, now)?;
    data.insert(TLS_CERT.into(), ByteString(cert.into_bytes()));
    data.insert(TLS_KEY.into(), ByteString(key.into_bytes()));
    annotations.insert(SERVING_NOT_AFTER.into(), until.to_string());
    annotations.insert(SERVING_NAMES.into(), names);
    next.data = Some(data);
    next.metadata.annotations = Some(annotations);
    Ok(Some(next))
}

/// Sets each certificate's expiry from the Secret's annotations (the previous CA's series goes
/// once the Secret no longer holds one).
fn record_expiry(secret: &Secret, metrics: &CertificateMetrics) {
    let annotations = secret.metadata.annotations.clone().unwrap_or_default();
    for (certificate, key) in [
        (Certificate::Serving, SERVING_NOT_AFTER),
        (Certificate::Ca, CA_NOT_AFTER),
        (Certificate::PreviousCa, PREVIOUS_CA_NOT_AFTER),
    ] {
        let seconds = when(&annotations, key).map(|t| t.as_second() as f64);
        metrics.set_expiry(certificate, seconds);
    }
}

fn when(annotations: &BTreeMap<String, String>, key: &str) -> Option<Timestamp> {
    annotations.get(key).and_then(|t| t.parse().ok())
}

fn validity(args: &CertArgs) -> Result<SignedDuration> {
    SignedDuration::try_from(args.cert_validity)
        .map_err(|e| Error::Config(format!("--cert-validity: {e}")))
}

fn issue_all(args: &CertArgs, now: Timestamp) -> Result<Secret> {
    let empty = Secret {
        metadata: ObjectMeta {
            name: Some(args.certs_secret.clone()),
            namespace: Some(args.certs_namespace.clone()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".into(),
                "devportal".into(),
            )])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".into()),
        ..Secret::default()
    };
    Ok(renew(&empty, args, now)?.expect("an empty Secret always needs issuing"))
}

/// Replaces `path` atomically (write beside it, then rename) when its content differs; the file
/// is created with `mode` (0600 for private keys), never world-readable first.
fn write_if_changed(path: &Path, content: &[u8], mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if std::fs::read(path).is_ok_and(|current| current == content) {
        return Ok(());
    }
    let io = |source| Error::Io {
        path: path.into(),
        source,
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let staging = path.with_extension("devportal-new");
    let _ = std::fs::remove_file(&staging);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&staging)
        .and_then(|mut file| file.write_all(content))
        .map_err(io)?;
    std::fs::rename(&staging, path).map_err(io)
}

#[cfg(test)]
mod tests;
