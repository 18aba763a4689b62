//! APIKeyPolicies, evaluated: which policies concern a key ([`matching`]), the limits in force
//! for it ([`effective()`]: the flags as defaults, tightened by every matching `Deny` policy, the
//! most restrictive winning), and the rules it breaks ([`violations()`], each naming the policy, the
//! rule and the action). Pure functions of the policies and [`KeyFacts`]; the webhook
//! (`webhook::rules::policy`), the controller's audit and the kubectl plugin act on them.

mod effective;
mod violations;

pub use effective::{Defaults, Effective, Limit, effective};
pub use violations::{Violation, violations};

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use k8s_openapi::jiff::Timestamp;

use crate::names::AUTOMATIC_REVIEWER;
use crate::resources::{APIKey, APIKeyPolicy, APIProduct, ApprovalMode, PolicyAction, PolicyRules};
use crate::selector;

/// What the policies look at in a key.
#[derive(Clone, Debug, Default)]
pub struct KeyFacts<'a> {
    /// Labels of the key's own (consumer) namespace.
    pub consumer_labels: Option<&'a BTreeMap<String, String>>,
    /// The product's namespace.
    pub product_namespace: &'a str,
    /// The product's labels.
    pub product_labels: Option<&'a BTreeMap<String, String>>,
    /// The tier asked for.
    pub tier: &'a str,
    /// How long the key lives: from its creation (at admission: now) to `spec.expiresAt`; `None`
    /// without an expiry.
    pub lifetime: Option<Duration>,
    /// The length of a brought key (`spec.secretRef`), when known.
    pub own_key_length: Option<usize>,
    /// Whether the key is (or would be) approved automatically, with no owner involved.
    pub automatic: bool,
}

impl<'a> KeyFacts<'a> {
    /// The facts of `key` for `product` (its labels count), in a namespace labelled
    /// `consumer_labels`, living from `since` (its creation; now for a new key). Whether it is
    /// approved automatically is left false: that depends on the policies ([`Self::settle`]).
    pub fn of(
        key: &'a APIKey,
        product: Option<&'a APIProduct>,
        consumer_labels: Option<&'a BTreeMap<String, String>>,
        since: Timestamp,
    ) -> Self {
        KeyFacts {
            consumer_labels,
            product_namespace: key.product_namespace().unwrap_or_default(),
            product_labels: product.and_then(|p| p.metadata.labels.as_ref()),
            tier: &key.spec.plan_tier,
            lifetime: lifetime(key, since),
            own_key_length: None,
            automatic: false,
        }
    }

    /// Settles [`Self::automatic`] once the limits in force are known: approved with no owner
    /// involved — recorded so, or about to be by an automatic product that no `Deny` policy holds
    /// back.
    pub fn settle(&mut self, key: &APIKey, product: Option<&APIProduct>, effective: &Effective) {
        self.automatic = match &key.spec.approval {
            Some(a) => a.approved && a.reviewed_by.as_deref() == Some(AUTOMATIC_REVIEWER),
            None => {
                effective.manual_approval.is_none()
                    && product.is_some_and(|p| p.spec.approval_mode == ApprovalMode::Automatic)
            }
        };
    }
}

/// How long `key` lives from `since`: `None` without an expiry, zero for one already past.
pub fn lifetime(key: &APIKey, since: Timestamp) -> Option<Duration> {
    let expires = key.spec.expires_at.as_ref()?.0;
    Some(Duration::try_from(expires.duration_since(since)).unwrap_or(Duration::ZERO))
}

/// A rule of [`PolicyRules`], by the name it has there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RuleName {
    /// `maxKeysPerRequesterPerProduct`.
    MaxKeys,
    /// `maxLifetime`.
    MaxLifetime,
    /// `expiryRequired`.
    ExpiryRequired,
    /// `tiers`.
    Tiers,
    /// `manualApproval`.
    ManualApproval,
    /// `minOwnKeyLength`.
    MinOwnKeyLength,
}

impl RuleName {
    /// Every rule.
    pub const ALL: [RuleName; 6] = [
        RuleName::MaxKeys,
        RuleName::MaxLifetime,
        RuleName::ExpiryRequired,
        RuleName::Tiers,
        RuleName::ManualApproval,
        RuleName::MinOwnKeyLength,
    ];

    /// The field name in `spec.rules`, also the `rule` metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            RuleName::MaxKeys => "maxKeysPerRequesterPerProduct",
            RuleName::MaxLifetime => "maxLifetime",
            RuleName::ExpiryRequired => "expiryRequired",
            RuleName::Tiers => "tiers",
            RuleName::ManualApproval => "manualApproval",
            RuleName::MinOwnKeyLength => "minOwnKeyLength",
        }
    }
}

impl fmt::Display for RuleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy that concerns a key, with its lifetime parsed.
#[derive(Clone, Debug)]
pub struct Matched<'a> {
    /// The policy's name.
    pub name: &'a str,
    /// Its action.
    pub action: PolicyAction,
    /// Its rules.
    pub rules: &'a PolicyRules,
    /// `rules.maxLifetime`, parsed.
    pub max_lifetime: Option<Duration>,
}

/// What is wrong with a policy that makes devportal ignore it (the CRD's CEL rules refuse these,
/// so only an object stored before them, or written past them, has any): its selectors and its
/// lifetime. Empty when the policy is in force.
pub fn problems(policy: &APIKeyPolicy) -> Vec<String> {
    let mut problems = Vec::new();
    let spec = &policy.spec;
    if let Some(s) = &spec.match_.consumer_namespace_selector
        && let Err(e) = selector::from_label_selector(s)
    {
        problems.push(format!("spec.match.consumerNamespaceSelector: {e}"));
    }
    if let Some(s) = spec
        .match_
        .products
        .as_ref()
        .and_then(|p| p.selector.as_ref())
        && let Err(e) = selector::from_label_selector(s)
    {
        problems.push(format!("spec.match.products.selector: {e}"));
    }
    if let Some(lifetime) = &spec.rules.max_lifetime {
        match crate::flags::parse_duration(lifetime) {
            Ok(d) if d.as_secs() == 0 => {
                problems.push("spec.rules.maxLifetime: must be positive".into())
            }
            Ok(_) => {}
            Err(e) => problems.push(format!("spec.rules.maxLifetime: {e}")),
        }
    }
    problems
}

fn selects(
    selector: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector>,
    labels: Option<&BTreeMap<String, String>>,
) -> bool {
    let Some(selector) = selector else {
        return true;
    };
    let empty = BTreeMap::new();
    selector::from_label_selector(selector)
        .is_ok_and(|requirements| selector::matches(&requirements, labels.unwrap_or(&empty)))
}

/// Whether `policy` concerns the key `facts` describes (a policy with problems concerns none).
pub fn concerns(policy: &APIKeyPolicy, facts: &KeyFacts<'_>) -> bool {
    let m = &policy.spec.match_;
    if !m.tiers.is_empty() && !m.tiers.iter().any(|t| t == facts.tier) {
        return false;
    }
    if let Some(products) = &m.products {
        if !products.namespaces.is_empty()
            && !products
                .namespaces
                .iter()
                .any(|n| n == facts.product_namespace)
        {
            return false;
        }
        if !selects(products.selector.as_ref(), facts.product_labels) {
            return false;
        }
    }
    selects(
        m.consumer_namespace_selector.as_ref(),
        facts.consumer_labels,
    )
}

/// The policies among `policies` that concern the key, by name, with their lifetimes parsed.
/// Policies whose lifetime does not parse are left out (see [`problems`]).
pub fn matching<'a, I>(policies: I, facts: &KeyFacts<'_>) -> Vec<Matched<'a>>
where
    I: IntoIterator<Item = &'a APIKeyPolicy>,
{
    let mut matched: Vec<Matched<'a>> = policies
        .into_iter()
        .filter(|p| concerns(p, facts))
        .filter_map(|p| {
            let max_lifetime = match &p.spec.rules.max_lifetime {
                None => None,
                Some(text) => match crate::flags::parse_duration(text) {
                    Ok(d) if !d.is_zero() => Some(d),
                    _ => return None,
                },
            };
            Some(Matched {
                name: p.metadata.name.as_deref().unwrap_or_default(),
                action: p.spec.action,
                rules: &p.spec.rules,
                max_lifetime,
            })
        })
        .collect();
    matched.sort_by(|a, b| a.name.cmp(b.name));
    matched
}

#[cfg(test)]
mod tests;
