//! The admission webhook's metrics (`devportal_admission_*`): AdmissionReviews answered, and the
//! time devportal spent on each.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

/// Labels of one admission.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `apikeys`, `apiproducts` or `apikeyapprovals`.
    pub resource: &'static str,
    /// `CREATE`, `UPDATE`, ... or `unknown`.
    pub operation: &'static str,
    /// `allowed` or `denied`.
    pub decision: &'static str,
    /// Why, from the webhook's fixed set of reasons.
    pub reason: &'static str,
}

/// Labels of one admission's duration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DurationLabels {
    /// `apikeys` or `apiproducts`.
    pub resource: &'static str,
    /// `allowed` or `denied`.
    pub decision: &'static str,
}

/// The admission webhook's metrics.
pub struct AdmissionMetrics {
    requests: Family<AdmissionLabels, Counter>,
    duration: Family<DurationLabels, Histogram>,
}

impl AdmissionMetrics {
    /// Records one admission and how long devportal took over it.
    pub fn observe(&self, labels: AdmissionLabels, took: Duration) {
        self.duration
            .get_or_create(&DurationLabels {
                resource: labels.resource,
                decision: labels.decision,
            })
            .observe(took.as_secs_f64());
        self.requests.get_or_create(&labels).inc();
    }

    /// Creates the metrics and registers them in `registry` (the `devportal` one).
    pub(super) fn registered(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
            }),
        };
        let sub = registry.sub_registry_with_prefix("admission");
        sub.register(
            "requests",
            "AdmissionReviews answered, by resource, operation, decision and reason",
            metrics.requests.clone(),
        );
        sub.register_with_unit(
            "duration",
            "Time devportal spent on one AdmissionReview (read, decide, encode), by resource and \
             decision",
            Unit::Seconds,
            metrics.duration.clone(),
        );
        metrics
    }
}
