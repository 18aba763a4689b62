//! Unit tests of the APIProduct reconcile's conditions.

use std::sync::Arc;

use super::*;
use crate::resources::kuadrant::{
    ApiKeyAuth, AuthPolicy, AuthPolicySpec, AuthRules, AuthenticationRule, PolicyTargetRef,
};

fn sample() -> APIProduct {
    let mut product = APIProduct::new(
        "copycat",
        crate::resources::APIProductSpec {
            display_name: "Copycat".into(),
            description: None,
            version: None,
            tags: vec![],
            approval_mode: crate::resources::ApprovalMode::Automatic,
            publish_status: crate::resources::PublishStatus::Published,
            target_ref: crate::resources::HTTPRouteRef::route("r"),
            documentation: None,
            contact: None,
        },
    );
    product.metadata.namespace = Some("tenant".into());
    product
}

fn with_api_key_rules(all_namespaces: &[bool]) -> Resolution {
    let rules = all_namespaces
        .iter()
        .enumerate()
        .map(|(i, all)| {
            let rule = AuthenticationRule {
                api_key: Some(ApiKeyAuth {
                    selector: Default::default(),
                    all_namespaces: *all,
                }),
                ..AuthenticationRule::default()
            };
            (format!("keys-{i}"), rule)
        })
        .collect();
    let mut policy = AuthPolicy::new(
        "auth",
        AuthPolicySpec {
            target_ref: PolicyTargetRef {
                group: crate::names::GATEWAY_GROUP.into(),
                kind: "HTTPRoute".into(),
                name: "r".into(),
                section_name: None,
            },
            rules: Some(AuthRules {
                authentication: rules,
                ..AuthRules::default()
            }),
            defaults: None,
            overrides: None,
        },
    );
    policy.metadata.namespace = Some("apps".into());
    Resolution {
        route: None,
        plan_policy: None,
        auth_policy: Some(Arc::new(policy)),
        watched: vec![],
    }
}

#[test]
fn an_api_key_rule_reading_every_namespace_is_flagged_on_the_product() {
    let confined = auth_condition(&sample(), &with_api_key_rules(&[false]), None, &[]);
    assert_eq!((confined.status, confined.reason), (true, "Found"));
    assert_eq!(
        confined.message,
        "Discovered AuthPolicy auth targeting HTTPRoute r"
    );

    for rules in [&[true][..], &[false, true]] {
        let open = auth_condition(&sample(), &with_api_key_rules(rules), None, &[]);
        assert_eq!(
            (open.type_, open.status, open.reason),
            (condition::AUTH_POLICY, true, KEYS_FROM_ALL_NAMESPACES)
        );
        assert!(
            open.message
                .starts_with("Discovered AuthPolicy auth targeting HTTPRoute r; warning")
                && open.message.split(' ').nth(2) == Some("auth")
                && open.message.contains("allNamespaces: true")
                && open.message.contains("anyone who can create Secrets"),
            "{}",
            open.message
        );
    }
    // A selector problem is the more urgent news.
    let broken = auth_condition(
        &sample(),
        &with_api_key_rules(&[true]),
        Some("no".into()),
        &[],
    );
    assert_eq!(broken.reason, "UnsatisfiableSelector");
}

#[test]
fn an_overlap_is_reported_naming_the_other_product_refused_or_kept() {
    use crate::selector::overlap::Direction;
    let overlap = |refuses_me| Overlap {
        other: "shop/bookshop".into(),
        policy: "shop/bookshop-auth".into(),
        direction: Direction::Both,
        refuses_me,
    };
    let resolution = with_api_key_rules(&[false]);
    let refused = auth_condition(&sample(), &resolution, None, &[overlap(true)]);
    assert_eq!((refused.status, refused.reason), (false, SELECTOR_OVERLAP));
    assert!(
        refused
            .message
            .starts_with("Discovered AuthPolicy auth targeting HTTPRoute r; refused")
            && refused
                .message
                .contains("APIProduct shop/bookshop (AuthPolicy shop/bookshop-auth)")
            && refused
                .message
                .contains("devportal.kuadrant.io/product-namespace=tenant")
            && refused
                .message
                .contains("devportal.kuadrant.io/product=copycat"),
        "{}",
        refused.message
    );
    let kept = auth_condition(&sample(), &resolution, None, &[overlap(false)]);
    assert_eq!((kept.status, kept.reason), (true, SELECTOR_OVERLAP));
    assert!(kept.message.contains("keeps its keys"), "{}", kept.message);
}
