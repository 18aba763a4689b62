//! Prometheus metrics: one registry, a sub-registry (and name prefix) per subsystem, label values
//! from small fixed sets only (never object names), plus the standard `process_*` metrics read at
//! scrape time.

use prometheus_client::registry::Registry;

mod admission;
mod build_info;
mod certificates;
mod controller;
mod policies;
mod process;

pub use admission::{AdmissionLabels, AdmissionMetrics, DurationLabels};
pub use build_info::{BuildLabels, REVISION, VERSION};
pub use certificates::{Certificate, CertificateLabel, CertificateMetrics};
pub use controller::{
    ApprovalLabel, ControllerLabel, ControllerMetrics, ErrorLabels, EventReasonLabel, FetchLabel,
    PhaseLabel, ReconcileLabels, RoleLabel,
};
pub use policies::{PolicyMetrics, PolicyRuleLabels};

/// Every metric devportal exports: its own under the `devportal_` prefix, and the process's.
pub struct Metrics {
    registry: Registry,
    /// The admission webhook's metrics (`devportal_admission_*`).
    pub admission: AdmissionMetrics,
    /// The controller's metrics (`devportal_*`).
    pub controller: ControllerMetrics,
    /// The self-managed certificates' expiry (`devportal_certificate_*`).
    pub certificates: CertificateMetrics,
    /// Existing keys breaking APIKeyPolicies (`devportal_policy_violations`).
    pub policies: PolicyMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Creates and registers every metric.
    pub fn new() -> Self {
        let mut root = Registry::default();
        let registry = root.sub_registry_with_prefix("devportal");
        build_info::register(registry);
        let certificates = CertificateMetrics::default();
        certificates.register(registry);
        let policies = PolicyMetrics::default();
        policies.register(registry);
        let admission = AdmissionMetrics::registered(registry);
        let controller = ControllerMetrics::registered(registry);
        root.register_collector(Box::new(process::ProcessCollector));
        Self {
            registry: root,
            admission,
            controller,
            certificates,
            policies,
        }
    }

    /// The metrics in the Prometheus text exposition format.
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}

#[cfg(test)]
mod tests;
