//! `devportal_policy_violations{policy, rule}`: the existing APIKeys that break each rule of each
//! APIKeyPolicy, as the leader's last audit found them (src/controller/policy/audit.rs). Policy
//! names are a bounded set: cluster-scoped objects only cluster admins create.

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
    /// mended rule's series go.
    pub fn replace(&self, counts: &[(String, &'static str, i64)]) {
        self.violations.clear();
        for (policy, rule, keys) in counts {
            self.violations
                .get_or_create(&PolicyRuleLabels {
                    policy: policy.clone(),
                    rule,
                })
                .set(*keys);
        }
    }
}
