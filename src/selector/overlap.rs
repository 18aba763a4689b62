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
mod tests {
    use super::*;
    use crate::selector::{from_label_selector, parse};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

    const UID: &str = "apikey-uid";
    const AUTHORINO: &str = "authorino.kuadrant.io/managed-by=authorino";

    fn labels(text: &str) -> BTreeMap<String, String> {
        let mut labels: BTreeMap<String, String> = text
            .split(',')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap();
                (k.to_string(), v.to_string())
            })
            .collect();
        labels.insert(
            "authorino.kuadrant.io/managed-by".into(),
            "authorino".into(),
        );
        labels.insert(UID.into(), "stand-in".into());
        labels
    }

    fn rule(selector: &str) -> Vec<Requirement> {
        let mut requirements = parse(AUTHORINO).unwrap();
        requirements.extend(parse(selector).unwrap());
        requirements
    }

    fn claim(product: &str, secret_labels: &str, selector: &str, since: i64) -> Claim {
        Claim {
            product: format!("ns/{product}"),
            policy: format!("ns/{product}-auth"),
            labels: labels(secret_labels),
            rules: vec![rule(selector)],
            since: Timestamp::from_second(since).unwrap(),
        }
    }

    const PRODUCT: &str = "devportal.kuadrant.io/product";

    fn verdicts(me: &Claim, others: &[Claim]) -> Vec<(String, Direction, bool)> {
        let probe = labels(&format!("{PRODUCT}="));
        let marks = Marks {
            per_key: UID,
            product: &[PRODUCT],
            probe: &probe,
        };
        overlaps(me, others, marks)
            .into_iter()
            .map(|o| (o.other, o.direction, o.refuses_me))
            .collect()
    }

    #[test]
    fn match_expressions_decide_whether_one_products_labels_satisfy_anothers_selector() {
        let expression = |key: &str, operator: &str, values: &[&str]| LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| values.iter().map(|v| v.to_string()).collect()),
        };
        let selector = LabelSelector {
            match_labels: Some([("app".to_string(), "shop".to_string())].into()),
            match_expressions: Some(vec![
                expression("tier", "In", &["paid", "trial"]),
                expression("env", "NotIn", &["dev"]),
                expression("team", "Exists", &[]),
                expression("legacy", "DoesNotExist", &[]),
            ]),
        };
        let mut requirements = parse(AUTHORINO).unwrap();
        requirements.extend(from_label_selector(&selector).unwrap());
        let rules = [requirements];
        let accepted = |text: &str| accepts(&rules, &labels(text), UID);
        assert!(accepted("app=shop,tier=paid,team=a"));
        assert!(
            accepted("app=shop,tier=trial,team=a,env=prod"),
            "NotIn: another value"
        );
        assert!(
            !accepted("app=shop,tier=gold,team=a"),
            "In: a value not listed"
        );
        assert!(
            !accepted("app=shop,tier=paid,team=a,env=dev"),
            "NotIn: the listed value"
        );
        assert!(!accepted("app=shop,tier=paid"), "Exists: absent");
        assert!(
            !accepted("app=shop,tier=paid,team=a,legacy=x"),
            "DoesNotExist: present"
        );
        assert!(
            !accepted("app=other,tier=paid,team=a"),
            "matchLabels differ"
        );
        // Any one rule of the AuthPolicy accepting the Secret is enough.
        let two = [rule("app=other"), rule("app=shop")];
        assert!(accepts(&two, &labels("app=shop"), UID));
    }

    #[test]
    fn a_requirement_on_the_per_key_label_is_taken_as_met_unless_it_demands_absence() {
        let secret = labels("app=shop");
        for selector in [
            format!("app=shop,{UID}=some-key"),
            format!("app=shop,{UID}!=some-key"),
            format!("app=shop,{UID}"),
        ] {
            assert!(accepts(&[rule(&selector)], &secret, UID), "{selector}");
        }
        assert!(!accepts(&[rule(&format!("app=shop,!{UID}"))], &secret, UID));
    }

    #[test]
    fn identical_selectors_refuse_both_products_whoever_came_first() {
        let bookshop = claim("bookshop", "app=bookshop", "app=bookshop", 100);
        let copycat = claim("copycat", "app=bookshop", "app=bookshop", 200);
        assert_eq!(
            verdicts(&copycat, std::slice::from_ref(&bookshop)),
            [("ns/bookshop".to_string(), Direction::Both, true)]
        );
        assert_eq!(
            verdicts(&bookshop, &[copycat]),
            [("ns/copycat".to_string(), Direction::Both, true)]
        );
    }

    #[test]
    fn in_a_one_way_overlap_the_newcomer_is_refused_and_the_first_keeps_its_keys() {
        // The newcomer refines the older selector: its keys would work on the older API.
        let bookshop = claim("bookshop", "app=bookshop", "app=bookshop", 100);
        let refined = claim(
            "refined",
            "app=bookshop,extra=x",
            "app=bookshop,extra=x",
            200,
        );
        assert_eq!(
            verdicts(&refined, std::slice::from_ref(&bookshop)),
            [("ns/bookshop".to_string(), Direction::MineThere, true)]
        );
        assert_eq!(
            verdicts(&bookshop, std::slice::from_ref(&refined)),
            [("ns/refined".to_string(), Direction::TheirsHere, false)]
        );
        // The newcomer widens its own selector over the older labels: the older keeps working.
        let wide = claim("wide", "app=x", "app", 300);
        assert_eq!(
            verdicts(&wide, std::slice::from_ref(&bookshop)),
            [("ns/bookshop".to_string(), Direction::TheirsHere, true)]
        );
        assert_eq!(
            verdicts(&bookshop, std::slice::from_ref(&wide)),
            [("ns/wide".to_string(), Direction::MineThere, false)]
        );
        // Claimed in the same second: neither can be said to be first, both are refused.
        let twin = claim("twin", "app=bookshop,extra=x", "app=bookshop,extra=x", 100);
        assert!(verdicts(&bookshop, std::slice::from_ref(&twin))[0].2);
        assert!(verdicts(&twin, &[bookshop])[0].2);
    }

    #[test]
    fn a_selector_accepting_every_devportal_secret_overlaps_everyone_and_only_it_is_refused() {
        let catch_all = claim("all", "", "", 100);
        let bookshop = claim("bookshop", "app=bookshop", "app=bookshop", 200);
        let toys = claim("toys", "app=toys", "app=toys", 300);
        let others = [bookshop.clone(), toys.clone()];
        let seen = verdicts(&catch_all, &others);
        assert_eq!(seen.len(), 2, "an overlap with everyone");
        assert!(seen.iter().all(|(_, _, refused)| *refused));
        // Older than both, yet it refuses neither.
        assert_eq!(
            verdicts(&bookshop, std::slice::from_ref(&catch_all)),
            [("ns/all".to_string(), Direction::MineThere, false)]
        );
        assert!(!verdicts(&toys, &[catch_all])[0].2);
    }

    #[test]
    fn a_selector_naming_other_products_is_at_fault_whatever_its_age() {
        let bookshop = claim(
            "bookshop",
            &format!("{PRODUCT}=bookshop"),
            &format!("{PRODUCT}=bookshop"),
            300,
        );
        let greedy = claim(
            "greedy",
            &format!("{PRODUCT}=greedy"),
            &format!("{PRODUCT} in (greedy,bookshop)"),
            100,
        );
        assert_eq!(
            verdicts(&greedy, std::slice::from_ref(&bookshop)),
            [("ns/bookshop".to_string(), Direction::TheirsHere, true)]
        );
        assert_eq!(
            verdicts(&bookshop, &[greedy]),
            [("ns/greedy".to_string(), Direction::MineThere, false)]
        );
    }

    #[test]
    fn the_api_of_an_authpolicy_no_product_uses_is_protected_too() {
        let mut unpublished = claim("", "", "app=bookshop", 100);
        unpublished.product = String::new();
        unpublished.labels = BTreeMap::new();
        let copycat = claim("copycat", "app=bookshop", "app=bookshop", 200);
        assert_eq!(
            verdicts(&copycat, std::slice::from_ref(&unpublished)),
            [(String::new(), Direction::MineThere, true)]
        );
        // It has no keys: whatever labels its claim holds, none cross back.
        let mut keyless = claim("", "app=lax", "app=bookshop", 100);
        keyless.product = String::new();
        let lax = claim("lax", "app=lax", "app=lax", 300);
        assert!(verdicts(&lax, &[keyless]).is_empty());
        // Older than the policy, a product keeps its keys (the policy chose labels already taken).
        let older = claim("older", "app=bookshop", "app=bookshop", 50);
        assert!(!verdicts(&older, &[unpublished])[0].2);
    }

    #[test]
    fn disjoint_selectors_and_products_sharing_one_policy_do_not_overlap() {
        let pinned = |product: &str, since| {
            let own = format!("{PRODUCT}={product}");
            (claim(product, &own, &own, since), own)
        };
        let (bookshop, own) = pinned("bookshop", 100);
        // A copy of bookshop's pinned selector accepts no Secret of another product (devportal
        // names the product on them): the copier's product cannot even satisfy its own selector.
        assert!(!accepts(
            &[rule(&own)],
            &labels(&format!("{PRODUCT}=copycat")),
            UID
        ));
        let (copycat, _) = pinned("copycat", 200);
        assert!(verdicts(&copycat, std::slice::from_ref(&bookshop)).is_empty());
        let mut sibling = claim("sibling", "app=bookshop", "app=bookshop", 200);
        let mut gateway_wide = claim("bookshop", "app=bookshop", "app=bookshop", 100);
        gateway_wide.product = "other/bookshop".into();
        sibling.policy = gateway_wide.policy.clone();
        assert!(verdicts(&sibling, &[gateway_wide]).is_empty());
    }
}
