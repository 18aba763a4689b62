//! The controller's metrics (`devportal_*`): reconciles and their errors, keys by phase and the
//! age of the oldest waiting one, approval latency, Secret writes, discovery fetch failures,
//! suppressed Events, the inbox's second lane, leadership and Kuadrant CRs outside the
//! enforcement namespace.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::{Registry, Unit};

use crate::resources::{APIKeyPhase, ApprovalMode};

/// Labels of one reconcile.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `apiproduct` or `apikey`.
    pub controller: &'static str,
    /// `success` or `error`.
    pub result: &'static str,
}

/// Labels of one reconcile error.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `apiproduct` or `apikey`.
    pub controller: &'static str,
    /// The error's [`crate::Error::metric_label`].
    pub error: &'static str,
}

/// A label naming a controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabel {
    /// `apiproduct` or `apikey`.
    pub controller: &'static str,
}

/// A label naming a key phase.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabel {
    /// `Pending`, `Approved`, `Denied`, `Expired` or `Failed`.
    pub phase: &'static str,
}

/// A label naming how a waiting key is to be approved.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApprovalLabel {
    /// `automatic` or `manual`.
    pub approval: &'static str,
}

/// A label naming which of a key's two Secrets.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RoleLabel {
    /// `enforcement` or `consumer`.
    pub role: &'static str,
}

/// A label naming the reason of an Event (a phase or a PascalCase reason: a fixed set).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventReasonLabel {
    /// The Event's reason.
    pub reason: String,
}

/// A label naming what discovery fetched.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FetchLabel {
    /// `oidc` or `openapi`.
    pub kind: &'static str,
}

/// The controller's metrics.
pub struct ControllerMetrics {
    reconciles: Family<ReconcileLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    duration: Family<ControllerLabel, Histogram>,
    keys: Family<PhaseLabel, Gauge>,
    oldest_pending: Family<ApprovalLabel, Gauge<f64, AtomicU64>>,
    approval_latency: Histogram,
    secrets_written: Family<RoleLabel, Counter>,
    secrets_deleted: Family<RoleLabel, Counter>,
    fetch_failures: Family<FetchLabel, Counter>,
    events_suppressed: Family<EventReasonLabel, Counter>,
    inbox_deferred: Gauge,
    leader: Gauge,
    kuadrant_elsewhere: Gauge,
}

impl ControllerMetrics {
    /// Records one reconcile of `controller` that took `took`; `error` when it failed.
    pub fn reconciled(
        &self,
        controller: &'static str,
        took: Duration,
        error: Option<&crate::Error>,
    ) {
        self.duration
            .get_or_create(&ControllerLabel { controller })
            .observe(took.as_secs_f64());
        let result = if error.is_some() { "error" } else { "success" };
        self.reconciles
            .get_or_create(&ReconcileLabels { controller, result })
            .inc();
        if let Some(error) = error {
            self.errors
                .get_or_create(&ErrorLabels {
                    controller,
                    error: error.metric_label(),
                })
                .inc();
        }
    }

    /// Sets how many keys are in each phase.
    pub fn set_keys(&self, counts: [(APIKeyPhase, i64); 5]) {
        for (phase, count) in counts {
            self.keys
                .get_or_create(&PhaseLabel {
                    phase: phase.as_str(),
                })
                .set(count);
        }
    }

    /// Sets how long the oldest key still waiting for approval has waited, in seconds (0 when
    /// none waits), by how it is to be approved: `automatic` (by devportal) or `manual` (by an
    /// owner: its product approves manually, or an APIKeyPolicy requires an owner's approval).
    pub fn set_oldest_pending(&self, ages: [(ApprovalMode, f64); 2]) {
        for (mode, age) in ages {
            let approval = match mode {
                ApprovalMode::Automatic => "automatic",
                ApprovalMode::Manual => "manual",
            };
            self.oldest_pending
                .get_or_create(&ApprovalLabel { approval })
                .set(age);
        }
    }

    /// Records the time from a key's request to its approval.
    pub fn approved_after(&self, waited: Duration) {
        self.approval_latency.observe(waited.as_secs_f64());
    }

    /// Counts a Secret write.
    pub fn secret_written(&self, role: &'static str) {
        self.secrets_written
            .get_or_create(&RoleLabel { role })
            .inc();
    }

    /// Counts a Secret deletion.
    pub fn secret_deleted(&self, role: &'static str) {
        self.secrets_deleted
            .get_or_create(&RoleLabel { role })
            .inc();
    }

    /// Counts a failed discovery fetch.
    pub fn fetch_failed(&self, kind: &'static str) {
        self.fetch_failures
            .get_or_create(&FetchLabel { kind })
            .inc();
    }

    /// Counts a Normal Event not written because the Event budget was spent.
    pub fn event_suppressed(&self, reason: &str) {
        self.events_suppressed
            .get_or_create(&EventReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    /// Sets how many owners' copies of automatically approved requests wait for the inbox's
    /// second lane.
    pub fn set_inbox_deferred(&self, waiting: usize) {
        self.inbox_deferred
            .set(i64::try_from(waiting).unwrap_or(i64::MAX));
    }

    /// Sets how many `Kuadrant` CRs are outside the enforcement namespace (devportal reports
    /// them and never follows one).
    pub fn set_kuadrant_elsewhere(&self, count: usize) {
        self.kuadrant_elsewhere
            .set(i64::try_from(count).unwrap_or(i64::MAX));
    }

    /// Sets whether this replica leads.
    pub fn set_leader(&self, leading: bool) {
        self.leader.set(i64::from(leading));
    }

    /// Creates the metrics and registers them in `registry` (the `devportal` one).
    pub(super) fn registered(registry: &mut Registry) -> Self {
        let controller = Self {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 16))
            }),
            keys: Family::default(),
            oldest_pending: Family::default(),
            approval_latency: Histogram::new(exponential_buckets(0.05, 2.0, 20)),
            secrets_written: Family::default(),
            secrets_deleted: Family::default(),
            fetch_failures: Family::default(),
            events_suppressed: Family::default(),
            inbox_deferred: Gauge::default(),
            leader: Gauge::default(),
            kuadrant_elsewhere: Gauge::default(),
        };
        registry.register(
            "reconcile",
            "Reconciles, by controller and result",
            controller.reconciles.clone(),
        );
        {
            let sub = registry.sub_registry_with_prefix("reconcile");
            sub.register(
                "errors",
                "Failed reconciles, by controller and error",
                controller.errors.clone(),
            );
            sub.register_with_unit(
                "duration",
                "Time one reconcile took, by controller",
                Unit::Seconds,
                controller.duration.clone(),
            );
        }
        registry.register(
            "apikeys",
            "APIKeys by phase, as the leader sees them",
            controller.keys.clone(),
        );
        registry.register_with_unit(
            "apikeys_oldest_pending",
            "Age of the oldest APIKey still Pending (or not yet reconciled), by how it is to be \
             approved (automatic: by devportal; manual: by an owner, as its product or an \
             APIKeyPolicy requires), as the leader sees it; 0 when none waits",
            Unit::Seconds,
            controller.oldest_pending.clone(),
        );
        registry.register_with_unit(
            "approval_latency",
            "Time from an APIKey's creation to its approval",
            Unit::Seconds,
            controller.approval_latency.clone(),
        );
        {
            let sub = registry.sub_registry_with_prefix("secrets");
            sub.register(
                "written",
                "API-key Secrets created or updated, by role",
                controller.secrets_written.clone(),
            );
            sub.register(
                "deleted",
                "API-key Secrets deleted, by role",
                controller.secrets_deleted.clone(),
            );
        }
        registry.register(
            "discovery_fetch_failures",
            "OIDC discovery and OpenAPI fetches that failed after retries, by kind",
            controller.fetch_failures.clone(),
        );
        registry.sub_registry_with_prefix("controller").register(
            "events_suppressed",
            "Normal Events not written because the Event budget was spent (a burst of \
             transitions), by reason",
            controller.events_suppressed.clone(),
        );
        registry.sub_registry_with_prefix("controller").register(
            "inbox_deferred",
            "Owners' copies (APIKeyRequests) of automatically approved keys waiting to be \
             written until the reconciles pause",
            controller.inbox_deferred.clone(),
        );
        registry.register(
            "kuadrant_namespace_mismatch",
            "Kuadrant CRs outside --enforcement-namespace, as the leader sees them: devportal \
             reports them and never follows one; if kuadrant-operator serves one, keys do not work \
             at the gateway until the flag names its namespace",
            controller.kuadrant_elsewhere.clone(),
        );
        registry.register(
            "leader",
            "1 when this replica holds the controller Lease",
            controller.leader.clone(),
        );
        controller
    }
}
