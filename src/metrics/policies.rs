//! `devportal_policy_violations{policy, rule}`: the existing APIKeys that break each rule of each
//! APIKeyPolicy, as the leader's last audit found them (src/controller/policy/audit.rs). Policy
//! names are a bounded set: cluster-scoped objects only cluster admins create.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// The labels of one series.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyRuleLabels {
    /// The APIKeyPolicy's name.
    pub policy: String,
    /// The rule, as named in `spec.rules`.
    pub rule: &'static str,
}

/// The violations gauge.
#[derive(Clone, Default)]
pub struct PolicyMetrics {
    violations: Family<PolicyRuleLabels, Gauge>,
    /// The series the last audit set, so the next removes only those it no longer finds.
    present: Arc<Mutex<HashSet<PolicyRuleLabels>>>,
}

impl PolicyMetrics {
    pub(super) fn register(&self, registry: &mut Registry) {
        registry.register(
            "policy_violations",
            "Existing APIKeys that break a rule of an APIKeyPolicy, by policy and rule, as the \
             last audit found them",
            self.violations.clone(),
        );
    }

    /// Replaces every series with `counts` (policy, rule, keys): a deleted policy's or a
    /// mended rule's series go, the others change in place (a scrape never sees them missing).
    pub fn replace(&self, counts: &[(String, &'static str, i64)]) {
        let mut present = self.present.lock().unwrap_or_else(|e| e.into_inner());
        let now: HashSet<PolicyRuleLabels> = counts
            .iter()
            .map(|(policy, rule, keys)| {
                let labels = PolicyRuleLabels {
                    policy: policy.clone(),
                    rule,
                };
                self.violations.get_or_create(&labels).set(*keys);
                labels
            })
            .collect();
        for gone in present.difference(&now) {
            self.violations.remove(gone);
        }
        *present = now;
    }
}
