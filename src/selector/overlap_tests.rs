//! Unit tests of the overlap rule: whose keys would work on whose API, and who is refused.

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
