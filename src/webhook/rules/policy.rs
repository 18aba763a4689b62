//! APIKeyPolicies at admission, from the webhook's watch caches (the policies and the namespaces'
//! labels; no live call): the limits in force for a key and the rules it breaks ([`judge`],
//! [`Judged`]) and the verdict on it ([`check`], [`check_key_limit`]) — a `Deny` violation refuses with the policy and rule in the
//! message, a `Warn` one becomes an admission warning, an `Audit` one passes silently (the
//! controller's audit reports it in the policy's status). The key limit itself is counted by
//! [`super::key_limit`] with the effective limit.

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::jiff::Timestamp;

use super::{Checked, Limits, Reason, Verdict, lookup_failed};
use crate::key_limit::Holder;
use crate::policy::{self, Effective, KeyFacts, Violation};
use crate::resources::{APIKey, APIKeyPolicy, APIProduct, PolicyAction};
use crate::webhook::key_counts::Claim;
use crate::webhook::lookup::{Lookup, Read};

/// A key as the policies see it, with the policies that concern it.
pub struct Judged {
    /// The limits in force: the flags tightened by every matching `Deny` policy.
    pub effective: Effective,
    /// The rules the key breaks, key limit aside.
    pub violations: Vec<Violation>,
    /// `Warn` and `Audit` policies' key limits tighter than the effective one: (policy, action,
    /// limit).
    pub reported_key_limits: Vec<(String, PolicyAction, usize)>,
}

/// Judges `key` (for `product`, whose labels and approval mode count) against `policies`, with
/// `consumer_labels` the labels of the key's namespace and `since` the start of its life.
pub fn judge(
    policies: &[Arc<APIKeyPolicy>],
    limits: &Limits,
    key: &APIKey,
    product: Option<&APIProduct>,
    consumer_labels: Option<&BTreeMap<String, String>>,
    since: Timestamp,
) -> Judged {
    let mut facts = KeyFacts::of(key, product, consumer_labels, since);
    let matched = policy::matching(policies.iter().map(|p| &**p), &facts);
    let effective = policy::effective(&matched, &limits.policy_defaults());
    facts.settle(key, product, &effective);
    let reported_key_limits = matched
        .iter()
        .filter(|m| m.action != PolicyAction::Deny)
        .filter_map(|m| {
            let max = m.rules.max_keys_per_requester_per_product? as usize;
            (max < effective.max_keys.value).then(|| (m.name.to_string(), m.action, max))
        })
        .collect();
    Judged {
        violations: policy::violations(&matched, &facts, None),
        effective,
        reported_key_limits,
    }
}

/// Judges `key` with the policies and namespace labels of `lookup`'s caches, reading its product
/// from the cache too (a failed read refuses, as every lookup of the rules does).
pub async fn judge_cached<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    key: &APIKey,
    since: Timestamp,
) -> Checked<Judged> {
    let policies = lookup.policies();
    let namespace = key.metadata.namespace.as_deref().unwrap_or_default();
    let labels = lookup.namespace_labels(namespace);
    let product = match key.product_namespace() {
        Some(ns) => {
            let name = &key.spec.api_product_ref.name;
            lookup
                .product(ns, name, Read::Cached)
                .await
                .map_err(|e| lookup_failed(&format!("APIProduct {ns}/{name}"), e))?
        }
        None => None,
    };
    Ok(judge(
        &policies,
        limits,
        key,
        product.as_deref(),
        labels.as_ref(),
        since,
    ))
}

/// The policies' verdict on `judged`: the first `Deny` violation refuses; `Warn` violations are
/// returned as warnings.
pub fn check(judged: &Judged) -> Checked<Vec<String>> {
    if let Some(denied) = judged
        .violations
        .iter()
        .find(|v| v.action == PolicyAction::Deny)
    {
        return Err(Verdict::deny(Reason::PolicyViolation, denied.describe()));
    }
    Ok(judged
        .violations
        .iter()
        .filter(|v| v.action == PolicyAction::Warn)
        .map(Violation::describe)
        .collect())
}

/// The key limit as the policies have it: warnings for `Warn` policies whose limit `holder`
/// already reaches (counted like the key limit, promising nothing), then the effective limit
/// checked and a place promised (`key_limit::check`; run last).
pub fn check_key_limit<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    judged: &Judged,
    (key, holder): (&APIKey, Holder),
    at: (Timestamp, bool),
) -> Checked<Vec<String>> {
    let warnings = key_limit_warnings(lookup, limits, judged, (key, &holder), at.0);
    super::key_limit::check(lookup, limits, &judged.effective.max_keys, key, holder, at)?;
    Ok(warnings)
}

fn key_limit_warnings<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    judged: &Judged,
    claim_for: (&APIKey, &Holder),
    now: Timestamp,
) -> Vec<String> {
    let (key, holder) = claim_for;
    judged
        .reported_key_limits
        .iter()
        .filter(|(_, action, _)| *action == PolicyAction::Warn)
        .filter_map(|(policy, action, max)| {
            let claim = Claim {
                key: (
                    key.metadata.namespace.clone().unwrap_or_default(),
                    key.metadata.name.clone().unwrap_or_default(),
                ),
                limit: *max,
                cutoff: limits.key_limit().cutoff(now),
                reserve: false,
                holder: holder.clone(),
            };
            let count = lookup.admit_key(&claim, now).err()?;
            Some(
                Violation {
                    policy: policy.clone(),
                    rule: policy::RuleName::MaxKeys,
                    action: *action,
                    message: format!(
                        "{count} other keys of {holder} already count; the policy allows at most \
                         {max}: delete one you no longer need"
                    ),
                }
                .describe(),
            )
        })
        .collect()
}
