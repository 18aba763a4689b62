//! APIKeyPolicies in the controller, the webhook's backstop: the limits in force for a key
//! ([`PolicyView::effective`], the flags tightened by matching `Deny` policies) drive the key
//! limit's line, the expiry of keys without `spec.expiresAt` and the hold on an automatic
//! product's key that a policy wants an owner to approve ([`hold_for_owner`]); [`audit`] finds
//! the existing keys that break each policy and reports them.

pub mod audit;
mod view;

pub use view::{PolicyView, created};

use kube::runtime::reflector::{ObjectRef, Store};

use super::apikey::phase::Evaluation;
use super::args::Settings;
use crate::key_limit::KeyLimitArgs;
use crate::names::key_reason::APPROVAL_REQUIRED_BY_POLICY;
use crate::policy::{self, Defaults, Effective, Limit};
use crate::resources::{APIKey, APIKeyPhase, APIProduct};

/// The controller's flags as the defaults policies tighten.
pub fn defaults(settings: &Settings) -> Defaults {
    Defaults {
        max_keys: settings.key_limit.max_keys_per_user_per_product,
        max_lifetime: settings.key_limit.max_lifetime(),
        min_own_key_length: settings.own_key_min_length,
    }
}

/// The key limit's settings with the effective limit in place of the flag's.
pub fn key_limit(settings: &Settings, effective: &Effective) -> KeyLimitArgs {
    KeyLimitArgs {
        max_keys_per_user_per_product: effective.max_keys.value,
        ..settings.key_limit
    }
}

/// The shortest key `key` may bring in `spec.secretRef`: `--own-key-min-length`, or the longer
/// minimum of a matching `Deny` policy (named in the limit). `products` is the controller's
/// product store.
pub fn min_own_key_length(
    key: &APIKey,
    view: &PolicyView,
    products: &Store<APIProduct>,
    settings: &Settings,
) -> Limit<usize> {
    let product = ObjectRef::<APIProduct>::new(&key.spec.api_product_ref.name)
        .within(key.product_namespace().unwrap_or_default());
    let product = products.get(&product);
    view.effective(key, product.as_deref(), &defaults(settings))
        .min_own_key_length
}

/// `evaluation` held back for an owner when a `Deny` policy requires one: a key its automatic
/// product is about to approve (the approval not yet recorded) stays Pending, and nothing is
/// recorded. A key already approved stays approved (policies never revoke by themselves).
pub fn hold_for_owner(evaluation: Evaluation, effective: &Effective) -> Evaluation {
    match &effective.manual_approval {
        Some(policy) if evaluation.record_automatic => Evaluation {
            phase: APIKeyPhase::Pending,
            reason: APPROVAL_REQUIRED_BY_POLICY,
            message: format!(
                "waiting for an owner's approval: APIKeyPolicy {policy:?} (rule {}) requires one, \
                 although the product approves keys automatically",
                policy::RuleName::ManualApproval
            ),
            record_automatic: false,
            ..evaluation
        },
        _ => evaluation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evaluation(record_automatic: bool) -> Evaluation {
        Evaluation {
            phase: APIKeyPhase::Approved,
            reason: "AutoApproved",
            message: "approves automatically".into(),
            plan: None,
            auth: None,
            hostname: None,
            record_automatic,
        }
    }

    fn effective(manual: Option<&str>) -> Effective {
        Effective {
            max_keys: Limit {
                value: 5,
                policy: None,
            },
            max_lifetime: None,
            expiry_required: None,
            manual_approval: manual.map(str::to_string),
            min_own_key_length: Limit {
                value: 32,
                policy: None,
            },
            allowed_tiers: None,
            forbidden_tiers: Vec::new(),
        }
    }

    #[test]
    fn an_automatic_approval_waits_for_an_owner_only_under_a_deny_policy() {
        let held = hold_for_owner(evaluation(true), &effective(Some("partners")));
        assert_eq!(held.phase, APIKeyPhase::Pending);
        assert_eq!(held.reason, APPROVAL_REQUIRED_BY_POLICY);
        assert!(!held.record_automatic, "nothing recorded");
        assert!(held.message.contains("APIKeyPolicy \"partners\""));
        let free = hold_for_owner(evaluation(true), &effective(None));
        assert_eq!(free.phase, APIKeyPhase::Approved);
        // An approval already recorded (or an owner's) is never taken back.
        let recorded = hold_for_owner(evaluation(false), &effective(Some("partners")));
        assert_eq!(recorded.phase, APIKeyPhase::Approved);
    }
}
