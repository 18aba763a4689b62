//! The audit of existing keys: when an APIKeyPolicy is created or changed (and every
//! [`AUDIT_INTERVAL`] after), the leader judges every live key against every policy and reports
//! what breaks them — in each policy's status (a count, counts by rule and the first
//! [`LISTED`] violations, like Gatekeeper's `totalViolations` and `violations`), as a Warning
//! Event on a key when it starts breaking a rule, and as `devportal_policy_violations{policy,
//! rule}`. The audit never changes a key: revoking is not its business. [`findings`] is the pure
//! part; [`run`] acts on it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, ResourceExt};
use tokio_util::sync::CancellationToken;

use super::{PolicyView, created};
use crate::conditions::{self, Desired};
use crate::controller::context::Context;
use crate::key_limit::{self, Holder, Place};
use crate::names::CONTROLLER_MANAGER;
use crate::names::key_reason::POLICY_VIOLATION;
use crate::names::policy_condition::{ACCEPTED, AUDITED, INVALID, READY};
use crate::policy::{self, Defaults, KeyFacts, RuleName};
use crate::resources::cached_key::CachedKey;
use crate::resources::{
    APIKeyPolicy, APIKeyPolicyStatus, APIProduct, KeyViolation, PolicyViolations,
};
use crate::watches::Feed;

/// How many violations a policy's status lists (the count has them all).
pub const LISTED: usize = 20;
/// The audit runs again this long after the last, whether or not a policy changed (keys do).
pub const AUDIT_INTERVAL: Duration = Duration::from_secs(60);
/// Policy changes arriving within this time are audited together.
const SETTLE: Duration = Duration::from_millis(500);

/// One rule one key breaks, with the key's uid (for Events once per transition).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// The key, its uid and the rule, as the policy's status lists them.
    pub violation: KeyViolation,
    /// The key's uid.
    pub uid: String,
    /// The rule.
    pub rule: RuleName,
}

/// Looks a product up (the controller's product store).
pub type ProductOf<'a> = dyn Fn(&ObjectRef<APIProduct>) -> Option<Arc<APIProduct>> + 'a;

/// Every policy's findings, by policy name (policies without any included, empty).
pub type Findings = BTreeMap<String, Vec<Finding>>;

/// Judges every key of `keys` that counts against the key limit at `now` (not rejected, not
/// being deleted, not expired) against every policy of `policies`: the rules each breaks, with
/// its place in its requester's line for the key limit (keys counting with `defaults`' grace,
/// by creation) as the number of keys ahead of it.
pub fn findings(
    policies: &[Arc<APIKeyPolicy>],
    keys: &[Arc<CachedKey>],
    view: (&PolicyView, &ProductOf<'_>),
    grace_cutoff: Timestamp,
    now: Timestamp,
) -> Findings {
    let (view, product_of) = view;
    let mut out: Findings = policies
        .iter()
        .map(|p| (p.name_any(), Vec::new()))
        .collect();
    // The key limit's lines: each holder's counting keys, by place.
    let mut lines: HashMap<Holder, Vec<&CachedKey>> = HashMap::new();
    for key in keys.iter().filter(|k| key_limit::counts(k, grace_cutoff)) {
        if let Some(holder) = Holder::of(key) {
            lines.entry(holder).or_default().push(key);
        }
    }
    let mut ahead: HashMap<String, usize> = HashMap::new();
    for line in lines.values_mut() {
        line.sort_by(|a, b| Place::of(a).cmp(&Place::of(b)));
        for (place, key) in line.iter().enumerate() {
            ahead.insert(key.uid().unwrap_or_default(), place);
        }
    }
    let no_defaults = Defaults {
        max_keys: usize::MAX,
        max_lifetime: None,
        min_own_key_length: 0,
    };
    for cached in keys.iter().filter(|k| key_limit::counts(k, now)) {
        let key = cached.to_key();
        let product_ref = ObjectRef::<APIProduct>::new(&key.spec.api_product_ref.name)
            .within(key.product_namespace().unwrap_or_default());
        let product = product_of(&product_ref);
        let labels = view.namespace_labels(key.metadata.namespace.as_deref().unwrap_or_default());
        let mut facts = KeyFacts::of(&key, product.as_deref(), labels.as_ref(), created(&key));
        let matched = policy::matching(policies.iter().map(|p| &**p), &facts);
        if matched.is_empty() {
            continue;
        }
        let effective = policy::effective(&matched, &no_defaults);
        facts.settle(&key, product.as_deref(), &effective);
        let uid = key.metadata.uid.clone().unwrap_or_default();
        for broken in policy::violations(&matched, &facts, ahead.get(&uid).copied()) {
            out.entry(broken.policy.clone()).or_default().push(Finding {
                violation: KeyViolation {
                    namespace: key.metadata.namespace.clone().unwrap_or_default(),
                    name: key.name_any(),
                    rule: broken.rule.to_string(),
                    message: broken.message,
                },
                uid: uid.clone(),
                rule: broken.rule,
            });
        }
    }
    for found in out.values_mut() {
        found.sort_by(|a, b| a.violation.cmp(&b.violation));
    }
    out
}

/// A policy's `status.violations` from its findings: keys counted once, rules each, the first
/// [`LISTED`] listed.
pub fn summary(found: &[Finding]) -> PolicyViolations {
    let keys: HashSet<&str> = found.iter().map(|f| f.uid.as_str()).collect();
    let mut by_rule = BTreeMap::new();
    for f in found {
        *by_rule.entry(f.rule.to_string()).or_insert(0u32) += 1;
    }
    PolicyViolations {
        count: u32::try_from(keys.len()).unwrap_or(u32::MAX),
        by_rule,
        keys: found
            .iter()
            .take(LISTED)
            .map(|f| f.violation.clone())
            .collect(),
    }
}

/// The status `policy` should have after an audit that found `found`.
pub fn desired_status(
    policy: &APIKeyPolicy,
    found: &[Finding],
    now: Timestamp,
) -> APIKeyPolicyStatus {
    let previous = policy
        .status
        .as_ref()
        .map(|s| s.conditions.as_slice())
        .unwrap_or_default();
    let problems = policy::problems(policy);
    let conditions = if problems.is_empty() {
        vec![
            Desired::holds(ACCEPTED, AUDITED, "the policy is in force"),
            Desired::holds(
                READY,
                AUDITED,
                format!("in force; {} existing keys break it", summary(found).count),
            ),
        ]
    } else {
        let why = format!("devportal ignores this policy: {}", problems.join("; "));
        vec![
            Desired::fails(ACCEPTED, INVALID, why.clone()),
            Desired::fails(READY, INVALID, why),
        ]
    };
    APIKeyPolicyStatus {
        observed_generation: policy.metadata.generation,
        conditions: conditions::merge(previous, conditions, policy.metadata.generation, now),
        violations: Some(summary(found)),
    }
}

/// Audits on every policy change and every [`AUDIT_INTERVAL`], while this replica is active;
/// after a policy change, every key is reconciled again so the controller applies the new limits.
pub async fn run(ctx: Arc<Context>, policies: Feed<APIKeyPolicy>, shutdown: CancellationToken) {
    let store = policies.store.clone();
    let mut events = std::pin::pin!(policies.events());
    // Rules each key was last seen breaking: an Event goes out only when one starts. A replica
    // that starts (or takes over) begins from what the policies' status lists.
    let mut seen: Option<HashSet<SeenId>> = None;
    let mut changed = true;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            event = events.next() => match event {
                Some(_) => changed = true,
                None => return,
            },
            () = tokio::time::sleep(AUDIT_INTERVAL) => {}
        }
        // Let a burst of changes settle.
        let settle = tokio::time::sleep(SETTLE);
        tokio::pin!(settle);
        loop {
            tokio::select! {
                () = &mut settle => break,
                () = shutdown.cancelled() => return,
                event = events.next() => match event {
                    Some(_) => changed = true,
                    // The watch ended (shutdown): polling it again would panic.
                    None => return,
                },
            }
        }
        if !*ctx.active.borrow() {
            continue;
        }
        let policies = store.state();
        let keys = ctx.keys.state();
        let now = Timestamp::now();
        let found = findings(
            &policies,
            &keys,
            (&ctx.policies, &|r| ctx.products.get(r)),
            ctx.config.key_limit.cutoff(now),
            now,
        );
        let before = seen.take().unwrap_or_else(|| listed(&policies));
        let mut now_seen = HashSet::new();
        let mut counts = Vec::new();
        for policy in &policies {
            let name = policy.name_any();
            let found = found.get(&name).map(Vec::as_slice).unwrap_or_default();
            write_status(&ctx, policy, found, now).await;
            for (rule, n) in summary(found).by_rule {
                if let Some(rule) = RuleName::ALL.into_iter().find(|r| r.as_str() == rule) {
                    counts.push((name.clone(), rule.as_str(), i64::from(n)));
                }
            }
            for f in found {
                let id = seen_id(&name, &f.violation);
                if !before.contains(&id) {
                    event_on_key(&ctx, policy, f).await;
                }
                now_seen.insert(id);
            }
        }
        ctx.metrics.policies.replace(&counts);
        seen = Some(now_seen);
        if std::mem::take(&mut changed) {
            for key in &keys {
                let _ = ctx.nudge.send(ObjectRef::from_obj(&**key));
            }
        }
    }
}

/// A violation as remembered between audits: policy, key (namespace/name) and rule.
type SeenId = (String, String, String);

fn seen_id(policy: &str, v: &KeyViolation) -> SeenId {
    (
        policy.to_string(),
        format!("{}/{}", v.namespace, v.name),
        v.rule.clone(),
    )
}

/// The violations the policies' status lists: those a previous audit reported already.
fn listed(policies: &[Arc<APIKeyPolicy>]) -> HashSet<SeenId> {
    policies
        .iter()
        .flat_map(|p| {
            let name = p.name_any();
            p.status
                .iter()
                .flat_map(|s| s.violations.iter())
                .flat_map(|v| v.keys.iter())
                .map(move |v| seen_id(&name, v))
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Writes `policy`'s status when the audit changed it (a merge patch of the whole status, as
/// devportal's field manager; only the controller writes it).
async fn write_status(ctx: &Context, policy: &APIKeyPolicy, found: &[Finding], now: Timestamp) {
    let desired = desired_status(policy, found, now);
    if policy.status.as_ref() == Some(&desired) {
        return;
    }
    let api = Api::<APIKeyPolicy>::all(ctx.client.clone());
    let params = PatchParams {
        field_manager: Some(CONTROLLER_MANAGER.into()),
        ..PatchParams::default()
    };
    let patch = serde_json::json!({"status": desired});
    if let Err(error) = api
        .patch_status(&policy.name_any(), &params, &Patch::Merge(&patch))
        .await
    {
        tracing::warn!(policy = %policy.name_any(), %error, "could not write the policy's audit");
    }
}

/// A Warning Event on the key that started breaking a rule of `policy` (regarding the key; the
/// note names the policy and the rule).
async fn event_on_key(ctx: &Context, policy: &APIKeyPolicy, found: &Finding) {
    let regarding = k8s_openapi::api::core::v1::ObjectReference {
        api_version: Some(crate::names::API_VERSION.into()),
        kind: Some("APIKey".into()),
        namespace: Some(found.violation.namespace.clone()),
        name: Some(found.violation.name.clone()),
        uid: Some(found.uid.clone()),
        ..Default::default()
    };
    let note = policy::Violation {
        policy: policy.name_any(),
        rule: found.rule,
        action: policy.spec.action,
        message: found.violation.message.clone(),
    }
    .describe();
    ctx.publish_event_about(regarding, true, POLICY_VIOLATION, &note)
        .await;
}

#[cfg(test)]
#[path = "audit_tests.rs"]
mod tests;
