use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

use super::*;

/// matchLabels, matchExpressions (key, operator, values), and what the outcome must mention.
type Case<'a> = (
    &'a [(&'a str, &'a str)],
    &'a [(&'a str, &'a str, &'a [&'a str])],
    &'a str,
);

fn selector(labels: &[(&str, &str)], expressions: &[(&str, &str, &[&str])]) -> LabelSelector {
    LabelSelector {
        match_labels: Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        ),
        match_expressions: Some(
            expressions
                .iter()
                .map(|(key, op, values)| LabelSelectorRequirement {
                    key: key.to_string(),
                    operator: op.to_string(),
                    values: (!values.is_empty())
                        .then(|| values.iter().map(|v| v.to_string()).collect()),
                })
                .collect(),
        ),
    }
}

fn fixed() -> BTreeMap<String, String> {
    BTreeMap::from([("devportal.kuadrant.io/role".into(), "enforcement".into())])
}

#[test]
fn match_expressions_are_honoured() {
    let authorino = parse("authorino.kuadrant.io/managed-by=authorino").unwrap();
    let rule = from_label_selector(&selector(
        &[("app", "toystore")],
        &[
            ("tier", "In", &["paid", "trial"]),
            ("team", "Exists", &[]),
            ("env", "NotIn", &["dev"]),
            ("legacy", "DoesNotExist", &[]),
        ],
    ))
    .unwrap();
    let all: Vec<_> = authorino.iter().chain(&rule).cloned().collect();
    let labels = satisfy(&all, &fixed()).unwrap();
    let expected: BTreeMap<String, String> = [
        ("app", "toystore"),
        ("authorino.kuadrant.io/managed-by", "authorino"),
        ("devportal.kuadrant.io/role", "enforcement"),
        ("team", "true"),
        ("tier", "paid"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(labels, expected, "NotIn and DoesNotExist set nothing");
    assert!(matches(&all, &labels));
}

#[test]
fn combined_requirements_on_one_key_narrow_the_choice() {
    let rule = from_label_selector(&selector(
        &[],
        &[
            ("tier", "In", &["a", "b", "c"]),
            ("tier", "In", &["c", "b"]),
            ("tier", "NotIn", &["b"]),
            ("flag", "Exists", &[]),
            ("flag", "NotIn", &["true", "true-1"]),
        ],
    ))
    .unwrap();
    let labels = satisfy(&rule, &BTreeMap::new()).unwrap();
    assert_eq!(labels["tier"], "c");
    assert_eq!(labels["flag"], "true-2");
}

#[test]
fn unsatisfiable_selectors_say_why() {
    let cases: &[Case] = &[
        (
            &[("a", "x")],
            &[("a", "NotIn", &["x"])],
            "no value of label a",
        ),
        (
            &[],
            &[("a", "In", &["x"]), ("a", "In", &["y"])],
            "no value of label a",
        ),
        (
            &[],
            &[("a", "Exists", &[]), ("a", "DoesNotExist", &[])],
            "both set and unset",
        ),
        (
            &[("devportal.kuadrant.io/role", "consumer")],
            &[],
            "devportal sets devportal.kuadrant.io/role=enforcement",
        ),
        (
            &[],
            &[("devportal.kuadrant.io/role", "DoesNotExist", &[])],
            "!devportal.kuadrant.io/role",
        ),
    ];
    for (labels, expressions, why) in cases {
        let rule = from_label_selector(&selector(labels, expressions)).unwrap();
        let error = satisfy(&rule, &fixed()).unwrap_err();
        assert!(error.contains(why), "{error}");
    }
}

#[test]
fn malformed_selectors_are_refused_as_kubernetes_refuses_them() {
    let cases: &[Case] = &[
        (&[], &[("a", "Gt", &["1"])], "operator \"Gt\""),
        (&[], &[("a", "In", &[])], "needs at least one value"),
        (&[], &[("a", "Exists", &["x"])], "takes no values"),
        (&[("bad key", "x")], &[], "label key \"bad key\""),
        (&[("a", "not valid!")], &[], "label value"),
        (&[("Example.com/a", "x")], &[], "DNS subdomain"),
    ];
    for (labels, expressions, why) in cases {
        let error = from_label_selector(&selector(labels, expressions)).unwrap_err();
        assert!(error.contains(why), "{error}");
    }
    assert!(
        from_label_selector(&LabelSelector::default())
            .unwrap()
            .is_empty()
    );
}

#[test]
fn selector_strings_parse_like_kubectl() {
    let parsed = parse("a=b, c==d,e!=f,g in (h, i),j notin (k),l,!m").unwrap();
    let rendered: Vec<String> = parsed.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        ["a=b", "c=d", "e!=f", "g in (h,i)", "j!=k", "l", "!m"]
    );
    assert!(parse("").unwrap().is_empty());
    for (bad, why) in [
        ("a>1", "numeric comparisons"),
        ("a in (b", "unbalanced"),
        ("a,,b", "empty requirement"),
        ("a within (b)", "expected \"in\" or \"notin\""),
    ] {
        let error = parse(bad).unwrap_err();
        assert!(error.contains(why), "{bad}: {error}");
    }
}

#[test]
fn matching_follows_the_operators() {
    let labels = BTreeMap::from([("a".to_string(), "x".to_string())]);
    let req = |text: &str| parse(text).unwrap();
    assert!(matches(&req("a=x,!b,b notin (y),a"), &labels));
    assert!(!matches(&req("a!=x"), &labels));
    assert!(!matches(&req("b"), &labels));
    assert!(!matches(&req("a in (y,z)"), &labels));
}
