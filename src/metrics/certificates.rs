//! `devportal_certificate_expiry_timestamp_seconds{certificate}`: when each self-managed webhook
//! certificate stops being valid (src/certs/), so an alert can fire days before one lapses. Only
//! replicas running with `--self-managed-certs` set it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::{Registry, Unit};

/// Which self-managed certificate.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Certificate {
    /// The webhook's serving certificate.
    Serving,
    /// The CA that signs it, in the webhook configurations' `caBundle`.
    Ca,
    /// The previous CA, kept in the `caBundle` during a CA rotation.
    PreviousCa,
}

impl Certificate {
    /// The `certificate` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Serving => "serving",
            Self::Ca => "ca",
            Self::PreviousCa => "previous_ca",
        }
    }
}

/// The label of one certificate.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CertificateLabel {
    /// `serving`, `ca` or `previous_ca`.
    pub certificate: &'static str,
}

/// The certificates' expiry times.
#[derive(Clone, Default)]
pub struct CertificateMetrics {
    expiry: Family<CertificateLabel, Gauge<f64, AtomicU64>>,
}

impl CertificateMetrics {
    /// Sets when `certificate` expires (seconds since the Unix epoch), or removes its series when
    /// there is none (the previous CA once it is dropped from the bundle).
    pub fn set_expiry(&self, certificate: Certificate, not_after: Option<f64>) {
        let label = CertificateLabel {
            certificate: certificate.as_str(),
        };
        match not_after {
            Some(seconds) => {
                self.expiry.get_or_create(&label).set(seconds);
            }
            None => {
                self.expiry.remove(&label);
            }
        }
    }

    pub(super) fn register(&self, registry: &mut Registry) {
        registry
            .sub_registry_with_prefix("certificate")
            .register_with_unit(
                "expiry_timestamp",
                "When each self-managed webhook certificate expires (serving, ca, previous_ca), \
             since the Unix epoch",
                Unit::Seconds,
                self.expiry.clone(),
            );
    }
}
