//! Labels are a shared space: every AuthConfig in the enforcement namespace selects, by labels
//! alone, every Secret there that matches its apiKey rule. This module decides, from what each
//! product claims (the labels of its enforcement Secrets and the apiKey rules of its AuthPolicy),
//! which products' keys would also work on another product's API, and which of two such
//! products devportal refuses:
//!
//! - a product whose AuthPolicy accepts another product's keys *by its own choice* — a selector
//!   that accepts any product's Secrets (it asks for nothing a product's Secrets must carry, e.g.
//!   only `authorino.kuadrant.io/managed-by`), or one that looks at the labels naming the product
//!   and still accepts another's — is refused, and never causes the other's refusal: its only
//!   victim is its own API;
//! - otherwise, when each product's keys would work on the other's API, both are refused
//!   (neither can be made safe by the other's going first: an identical selector is this case);
//! - when only one product's keys would work on the other's API, the product that claimed its
//!   labels later is refused (on a tie, both): the product that was there first keeps working,
//!   whether the newcomer refined its selector into the older one's labels or widened its own
//!   over them. The claim's time is when devportal first saw the product with these labels and
//!   this AuthPolicy, so editing an old product's selector makes it a newcomer.
//!
//! A selector that requires the product's own labels (`devportal.kuadrant.io/product-namespace`,
//! `devportal.kuadrant.io/product`) accepts no other product's keys, whatever anyone else does.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use super::{Operator, Requirement};

/// What one product claims in the enforcement namespace.
#[derive(Clone, Debug)]
pub struct Claim {
    /// The product, `namespace/name`; empty for an AuthPolicy no product uses, which accepts
    /// keys but has none of its own.
    pub product: String,
    /// Its AuthPolicy, `namespace/name`.
    pub policy: String,
    /// The labels of its enforcement Secrets (with a stand-in for the per-key label).
    pub labels: BTreeMap<String, String>,
    /// The requirements of each apiKey rule of its AuthPolicy, Authorino's own selector
    /// included: a Secret is accepted when it meets every requirement of any one rule.
    pub rules: Vec<Vec<Requirement>>,
    /// When devportal first saw the product with these labels and this AuthPolicy.
    pub since: Timestamp,
}

/// Which way keys cross between two overlapping products.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Each product's keys would work on the other's API.
    Both,
    /// This product's keys would work on the other's API.
    MineThere,
    /// The other product's keys would work on this product's API.
    TheirsHere,
}

/// One overlap of a product with another.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overlap {
    /// The other product, `namespace/name` (empty: an AuthPolicy no product uses).
    pub other: String,
    /// The other product's AuthPolicy, `namespace/name`.
    pub policy: String,
    /// Which way keys cross.
    pub direction: Direction,
    /// Whether this overlap refuses this product its enforcement Secrets.
    pub refuses_me: bool,
}

/// Whether an AuthPolicy with apiKey `rules` accepts a Secret with `labels`. A requirement on
/// `per_key` (a label whose value differs for every key, present in `labels` with a stand-in
/// value) is taken as met unless it demands the label be absent: some key could meet it.
pub fn accepts(
    rules: &[Vec<Requirement>],
    labels: &BTreeMap<String, String>,
    per_key: &str,
) -> bool {
    rules.iter().any(|rule| rule_accepts(rule, labels, per_key))
}

fn rule_accepts(rule: &[Requirement], labels: &BTreeMap<String, String>, per_key: &str) -> bool {
    rule.iter().all(|requirement| {
        if requirement.key == per_key && labels.contains_key(per_key) {
            requirement.operator != Operator::DoesNotExist
        } else {
            requirement.matches(labels)
        }
    })
}

/// The labels that tell products apart: `per_key` (the key's uid, a stand-in in claims), the
/// product labels devportal sets from the product itself, and the `probe` — the labels of a
/// product that asks for nothing (devportal's own labels only, another product's name).
#[derive(Clone, Copy, Debug)]
pub struct Marks<'a> {
    /// The per-key label.
    pub per_key: &'a str,
    /// The labels naming the product.
    pub product: &'a [&'a str],
    /// A Secret any selector that does not tell products apart accepts.
    pub probe: &'a BTreeMap<String, String>,
}

/// Whether `rules` accept another product's `labels` by their own choice: through a rule that
/// accepts any product's keys (it accepts the probe), or one that looks at the labels naming the
/// product and still accepts another product's. Such a policy's only victim is its own API.
fn reaches_over(
    rules: &[Vec<Requirement>],
    labels: &BTreeMap<String, String>,
    marks: Marks<'_>,
) -> bool {
    rules.iter().any(|rule| {
        rule_accepts(rule, labels, marks.per_key)
            && (rule_accepts(rule, marks.probe, marks.per_key)
                || rule.iter().any(|r| marks.product.contains(&r.key.as_str())))
    })
}

/// The overlaps of `me` with `others`, in the others' order, deciding for each whether it refuses
/// `me`. Products on the same AuthPolicy share it by the platform's choice and are not compared.
pub fn overlaps(me: &Claim, others: &[Claim], marks: Marks<'_>) -> Vec<Overlap> {
    others
        .iter()
        .filter(|other| other.product != me.product && other.policy != me.policy)
        .filter_map(|other| {
            let mine_there = accepts(&other.rules, &me.labels, marks.per_key);
            let theirs_here =
                !other.product.is_empty() && accepts(&me.rules, &other.labels, marks.per_key);
            let direction = match (mine_there, theirs_here) {
                (true, true) => Direction::Both,
                (true, false) => Direction::MineThere,
                (false, true) => Direction::TheirsHere,
                (false, false) => return None,
            };
            let my_fault = theirs_here && reaches_over(&me.rules, &other.labels, marks);
            let their_fault = mine_there && reaches_over(&other.rules, &me.labels, marks);
            let refuses_me = if my_fault {
                true
            } else if their_fault {
                false
            } else {
                direction == Direction::Both || me.since >= other.since
            };
            Some(Overlap {
                other: other.product.clone(),
                policy: other.policy.clone(),
                direction,
                refuses_me,
            })
        })
        .collect()
}

#[cfg(test)]
#[path = "overlap_tests.rs"]
mod tests;
