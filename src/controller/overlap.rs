//! Products whose keys would work on each other's API (see [`crate::selector::overlap`] for the
//! rule), acted on: the product reconcile records in `status.enforcement` the labels its keys'
//! enforcement Secrets get, checks them against every other product's record and AuthPolicy in
//! the caches, and reports an overlap on its conditions; a refused product's keys get no
//! enforcement Secret ([`key_gate`]). Products that overlap are linked in
//! [`Context::overlaps`](super::context::Context), so a change of one reconciles the others.

use std::collections::{BTreeMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::reflector::ObjectRef;

use super::context::Context;
use crate::names::product_reason::SELECTOR_OVERLAP;
use crate::names::{APIKEY_UID_LABEL, PRODUCT_LABEL, PRODUCT_NAMESPACE_LABEL, product_condition};

use crate::resources::kuadrant::AuthPolicy;
use crate::resources::{APIProduct, ProductEnforcement};
use crate::secrets::{self, ProductId};
use crate::selector::overlap::{self, Claim, Direction, Marks, Overlap};
use crate::selector::{self, Requirement};

/// A uid standing in for the keys' in the labels of a product's enforcement Secrets.
pub(super) const SAMPLE_UID: &str = "00000000-0000-0000-0000-000000000000";

/// How soon a key whose product has not checked its labels yet is looked at again.
pub(super) const NOT_YET_RECHECK: std::time::Duration = std::time::Duration::from_secs(2);

/// At most this many overlapping products are named in a condition message.
const NAMED: usize = 5;

/// `namespace/name` of an object.
fn id(namespace: Option<&str>, name: &str) -> String {
    format!("{}/{name}", namespace.unwrap_or_default())
}

/// The apiKey rules of `policy`, each with Authorino's own selector: what its AuthConfigs accept.
/// A rule whose selector is invalid accepts nothing (Authorino cannot build it either).
fn rules_of(policy: &AuthPolicy, authorino: &[Requirement]) -> Vec<Vec<Requirement>> {
    policy
        .spec
        .effective_authentication()
        .into_values()
        .filter_map(|rule| rule.api_key)
        .filter_map(|auth| selector::from_label_selector(&auth.selector).ok())
        .map(|rule| authorino.iter().cloned().chain(rule).collect())
        .collect()
}

/// The record of a product whose keys get `labels` (with [`SAMPLE_UID`]) for `policy`: since
/// the previous record's time while labels and policy are unchanged, else since `now`.
pub(super) fn record(
    previous: Option<&ProductEnforcement>,
    policy: &AuthPolicy,
    labels: &BTreeMap<String, String>,
    now: Timestamp,
) -> ProductEnforcement {
    let auth_policy = id(policy.metadata.namespace.as_deref(), &policy.name_any());
    let mut labels = labels.clone();
    labels.remove(APIKEY_UID_LABEL);
    let since = previous
        .filter(|p| p.auth_policy == auth_policy && p.labels == labels)
        .map_or(Time(now), |p| p.since.clone());
    ProductEnforcement {
        auth_policy,
        labels,
        since,
    }
}

/// The claim recorded in `product`'s status, if its AuthPolicy is in force.
fn claim_of(product: &APIProduct, ctx: &Context) -> Option<Claim> {
    if product.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let record = product.status.as_ref()?.enforcement.as_ref()?;
    let (namespace, name) = record.auth_policy.split_once('/')?;
    let policy = ctx
        .caches
        .auth_policies
        .get(&ObjectRef::new(name).within(namespace))
        .filter(|p| p.is_enforced() && p.metadata.deletion_timestamp.is_none())?;
    let mut labels = record.labels.clone();
    labels.insert(APIKEY_UID_LABEL.into(), SAMPLE_UID.into());
    Some(Claim {
        product: id(product.metadata.namespace.as_deref(), &product.name_any()),
        policy: record.auth_policy.clone(),
        labels,
        rules: rules_of(&policy, &ctx.config.authorino_selector),
        since: record.since.0,
    })
}

/// The overlaps of `product`, whose record is `mine` and AuthPolicy `policy`, with every other
/// product in the cache and every enforced AuthPolicy no product uses; links the products in [`Context::overlaps`](super::context::Context).
pub(super) fn check(
    product: &APIProduct,
    mine: Option<(&ProductEnforcement, &AuthPolicy)>,
    ctx: &Context,
) -> Vec<Overlap> {
    let me = ObjectRef::from_obj(product);
    let Some((record, policy)) = mine else {
        ctx.overlaps.set(me, []);
        return Vec::new();
    };
    let mut labels = record.labels.clone();
    labels.insert(APIKEY_UID_LABEL.into(), SAMPLE_UID.into());
    let claim = Claim {
        product: id(product.metadata.namespace.as_deref(), &product.name_any()),
        policy: record.auth_policy.clone(),
        labels,
        rules: rules_of(policy, &ctx.config.authorino_selector),
        since: record.since.0,
    };
    let mut others: Vec<Claim> = ctx
        .products
        .state()
        .iter()
        .filter(|p| ObjectRef::from_obj(&***p) != me)
        .filter_map(|p| claim_of(p, ctx))
        .collect();
    // An AuthPolicy no product uses still has an AuthConfig that accepts matching Secrets: its
    // API is protected too (it has no keys of its own; its claim dates from its creation).
    let claimed: HashSet<String> = others
        .iter()
        .map(|c| c.policy.clone())
        .chain([claim.policy.clone()])
        .collect();
    others.extend(ctx.caches.auth_policies.state().iter().filter_map(|p| {
        let policy = id(p.metadata.namespace.as_deref(), &p.name_any());
        let rules = rules_of(p, &ctx.config.authorino_selector);
        let usable = p.is_enforced() && p.metadata.deletion_timestamp.is_none();
        (usable && !rules.is_empty() && !claimed.contains(&policy)).then(|| Claim {
            product: String::new(),
            policy,
            labels: BTreeMap::new(),
            rules,
            since: p
                .metadata
                .creation_timestamp
                .as_ref()
                .map_or(Timestamp::UNIX_EPOCH, |t| t.0),
        })
    }));
    others.sort_by(|a, b| (&a.product, &a.policy).cmp(&(&b.product, &b.policy)));
    let nobody = ProductId {
        namespace: "",
        name: "",
    };
    let probe = secrets::enforcement_labels(SAMPLE_UID, nobody, &ctx.config.authorino_selector)
        .unwrap_or_default();
    let marks = Marks {
        per_key: APIKEY_UID_LABEL,
        product: &[PRODUCT_NAMESPACE_LABEL, PRODUCT_LABEL],
        probe: &probe,
    };
    let overlaps = overlap::overlaps(&claim, &others, marks);
    ctx.overlaps.set(
        me,
        overlaps.iter().filter_map(|o| {
            let (namespace, name) = o.other.split_once('/')?;
            Some(ObjectRef::new(name).within(namespace))
        }),
    );
    overlaps
}

/// The products a change of `product` concerns: those it overlaps with and those that overlap
/// with it. A product gone from the cache is forgotten.
pub(super) fn affected(product: &APIProduct, ctx: &Context) -> Vec<ObjectRef<APIProduct>> {
    let me = ObjectRef::from_obj(product);
    let mut affected = ctx.overlaps.lookup(&me);
    affected.extend(ctx.overlaps.keys_of(&me));
    if ctx.products.get(&me).is_none() {
        ctx.overlaps.set(me, []);
    }
    affected.sort_by_key(ToString::to_string);
    affected.dedup();
    affected
}

/// The products a change of `policy` may concern besides those on its target: those whose keys
/// its apiKey rules accept (it may be an AuthPolicy no product uses, checked by theirs), and
/// those that report an overlap now (it may have been the other side).
pub(super) fn concerned_by(policy: &AuthPolicy, ctx: &Context) -> Vec<ObjectRef<APIProduct>> {
    let rules = rules_of(policy, &ctx.config.authorino_selector);
    ctx.products
        .state()
        .iter()
        .filter(|product| {
            let Some(status) = product.status.as_ref() else {
                return false;
            };
            let overlapping = status
                .conditions
                .iter()
                .any(|c| c.type_ == product_condition::AUTH_POLICY && c.reason == SELECTOR_OVERLAP);
            let accepted = status.enforcement.as_ref().is_some_and(|record| {
                let mut labels = record.labels.clone();
                labels.insert(APIKEY_UID_LABEL.into(), SAMPLE_UID.into());
                overlap::accepts(&rules, &labels, APIKEY_UID_LABEL)
            });
            overlapping || accepted
        })
        .map(|product| ObjectRef::from_obj(&**product))
        .collect()
}

/// How an overlap reads in a condition: the other product, its AuthPolicy, which way keys cross.
fn describe(overlaps: &[Overlap]) -> String {
    let mut parts: Vec<String> = overlaps
        .iter()
        .take(NAMED)
        .map(|o| {
            let crossing = match o.direction {
                Direction::Both => "each product's keys would work on the other's API",
                Direction::MineThere => "this product's keys would work on its API",
                Direction::TheirsHere => "its keys would work on this product's API",
            };
            if o.other.is_empty() {
                format!("AuthPolicy {} (of no APIProduct): {crossing}", o.policy)
            } else {
                format!(
                    "APIProduct {} (AuthPolicy {}): {crossing}",
                    o.other, o.policy
                )
            }
        })
        .collect();
    if overlaps.len() > NAMED {
        parts.push(format!("and {} more", overlaps.len() - NAMED));
    }
    parts.join("; ")
}

/// What to require in an AuthPolicy's apiKey selector so it accepts `product`'s keys only.
fn remedy(product: &APIProduct) -> String {
    let id = ProductId {
        namespace: product.metadata.namespace.as_deref().unwrap_or_default(),
        name: product.metadata.name.as_deref().unwrap_or_default(),
    };
    let [(ns_key, ns), (name_key, name)] = id.labels();
    format!(
        "give each AuthPolicy an apiKey selector that requires its own product's labels (for this \
         product: {ns_key}={ns}, {name_key}={name})"
    )
}

/// The `AuthPolicyDiscovered` message and status for a product with `overlaps`, after the usual
/// `discovered` sentence: refused (False) or kept with a warning (True); `None` without overlaps.
pub(super) fn auth_condition(
    product: &APIProduct,
    discovered: &str,
    overlaps: &[Overlap],
) -> Option<(bool, String)> {
    if overlaps.is_empty() {
        return None;
    }
    let refused = overlaps.iter().any(|o| o.refuses_me);
    let what = describe(overlaps);
    let remedy = remedy(product);
    Some(if refused {
        (
            false,
            format!(
                "{discovered}; refused: labels are a shared space in the enforcement namespace, and \
                 the labels of this product's enforcement Secrets and another product's apiKey \
                 selector overlap — {what}. devportal writes no enforcement Secret for this \
                 product's keys while they overlap; {remedy}"
            ),
        )
    } else {
        (
            true,
            format!(
                "{discovered}; warning: the labels of this product's enforcement Secrets and another \
                 product's apiKey selector overlap — {what}. This product claimed its labels first \
                 (or the other's selector accepts any product's keys), so it keeps its keys and the \
                 other is refused; {remedy}"
            ),
        )
    })
}

/// What a key's product says about writing the key's enforcement Secret with `labels`.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Gate {
    /// Write it.
    Open,
    /// Write none (the product is refused for an overlap): the Failed message.
    Refused(String),
    /// The product's record does not show these labels yet: leave the Secrets as they are and
    /// look again shortly (the product reconcile is about to check them).
    NotYet,
}

/// Whether the key of `product` may have an enforcement Secret with `labels`: only once the
/// product recorded exactly these labels (so they were checked against every other product) and
/// it is not refused for an overlap.
pub(super) fn key_gate(product: &APIProduct, labels: &BTreeMap<String, String>) -> Gate {
    let Some(status) = product.status.as_ref() else {
        return Gate::NotYet;
    };
    let mut mine = labels.clone();
    mine.remove(APIKEY_UID_LABEL);
    if status.enforcement.as_ref().map(|r| &r.labels) != Some(&mine) {
        return Gate::NotYet;
    }
    let refused = status.conditions.iter().any(|c| {
        c.type_ == product_condition::READY && c.status == "False" && c.reason == SELECTOR_OVERLAP
    });
    if refused {
        Gate::Refused(format!(
            "APIProduct {} is refused enforcement Secrets: its keys would also work on another \
             product's API, or another product's keys on its own (its AuthPolicyDiscovered \
             condition names the other product); the key's value is kept",
            id(product.metadata.namespace.as_deref(), &product.name_any())
        ))
    } else {
        Gate::Open
    }
}

#[cfg(test)]
#[path = "overlap_tests.rs"]
mod tests;
