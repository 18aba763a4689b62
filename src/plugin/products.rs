//! `kubectl devportal products`: the published APIProducts, with what a consumer needs to pick
//! one: the plans and their limits, how the key is sent, whether an owner reviews requests, and
//! (under the table) the limits APIKeyPolicies set on keys requested in the session's namespace.

use clap::Args;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, ResourceExt};

use super::listing::{Format, ListArgs};
use super::output::{self, Table};
use super::session::Session;
use crate::Result;
use crate::names::product_condition;
use crate::resources::kuadrant::AuthenticationRule;
use crate::resources::{APIProduct, ApprovalMode, DiscoveredPlan, Limits, PublishStatus};

/// Arguments of `products`.
#[derive(Debug, Args)]
pub struct ProductsArgs {
    /// Namespace selection and output format.
    #[command(flatten)]
    pub list: ListArgs,

    /// Include products still in Draft (which only their owners may request keys for).
    #[arg(long)]
    pub drafts: bool,
}

/// Lists the products.
pub async fn run(session: &Session, args: &ProductsArgs) -> Result<()> {
    let api: Api<APIProduct> = if args.list.all_namespaces {
        Api::all(session.client.clone())
    } else {
        Api::namespaced(session.client.clone(), &session.namespace)
    };
    let mut products: Vec<APIProduct> = api
        .list(&args.list.params())
        .await?
        .items
        .into_iter()
        .filter(|p| args.drafts || p.spec.publish_status == PublishStatus::Published)
        .collect();
    products.sort_by_key(|p| (p.namespace(), p.name_any()));
    let all = args.list.all_namespaces;
    output::print_list(
        &args.list,
        "apiproduct",
        &products,
        |_| table(&products, all, Timestamp::now()),
        &format!("No published products in {}.", scope(session, args)),
    )?;
    if matches!(args.list.output, Format::Table | Format::Wide)
        && let Some((policies, labels)) = super::policy_limits::read(session).await
    {
        let lines = super::policy_limits::lines(&products, &policies, &labels);
        if !lines.is_empty() {
            println!(
                "\nAPIKeyPolicies on keys requested in namespace {}:",
                session.namespace
            );
            for line in lines {
                println!("  {line}");
            }
        }
    }
    Ok(())
}

fn scope(session: &Session, args: &ProductsArgs) -> String {
    if args.list.all_namespaces {
        "any namespace".into()
    } else {
        format!("namespace {}", session.namespace)
    }
}

/// The products as a table.
pub fn table(products: &[APIProduct], all_namespaces: bool, now: Timestamp) -> Table {
    let mut table = Table::of_objects(
        all_namespaces,
        &[
            "NAME",
            "DISPLAY NAME",
            "APPROVAL",
            "PLANS",
            "AUTH",
            "READY",
            "AGE",
        ],
    );
    for product in products {
        let status = product.status.as_ref();
        let plans = status
            .map(|s| plans(&s.discovered_plans))
            .unwrap_or_default();
        let auth = status
            .and_then(|s| s.discovered_auth_scheme.as_ref())
            .map(|scheme| {
                scheme
                    .authentication
                    .values()
                    .filter_map(auth_scheme)
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default();
        let ready = status
            .and_then(|s| {
                s.conditions
                    .iter()
                    .find(|c| c.type_ == product_condition::READY)
            })
            .map(|c| c.status.clone())
            .unwrap_or_default();
        let mut name = product.name_any();
        if product.spec.publish_status == PublishStatus::Draft {
            name.push_str(" (draft)");
        }
        let approval = match product.spec.approval_mode {
            ApprovalMode::Automatic => "automatic",
            ApprovalMode::Manual => "manual",
        };
        table.object_row(
            product.metadata.namespace.as_deref(),
            vec![
                name,
                product.spec.display_name.clone(),
                approval.into(),
                plans,
                auth,
                ready,
                output::age(product.metadata.creation_timestamp.as_ref(), now),
            ],
        );
    }
    table
}

/// The plans as `gold: 100/day, silver: 10/day`.
pub fn plans(plans: &[DiscoveredPlan]) -> String {
    plans
        .iter()
        .map(|plan| match limits(&plan.limits) {
            limits if limits.is_empty() => plan.tier.clone(),
            limits => format!("{}: {limits}", plan.tier),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// A tier's limits as `100/day 1000/month 10/1m`.
pub fn limits(limits: &Limits) -> String {
    let windows = [
        (limits.daily, "day"),
        (limits.weekly, "week"),
        (limits.monthly, "month"),
        (limits.yearly, "year"),
    ];
    windows
        .into_iter()
        .filter_map(|(limit, window)| limit.map(|n| format!("{n}/{window}")))
        .chain(
            limits
                .custom
                .iter()
                .map(|c| format!("{}/{}", c.limit, c.window)),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// How a client authenticates under one rule: `apiKey (Authorization: APIKEY)`,
/// `apiKey (header X-Api-Key)`, `jwt`; `None` for a rule of another kind.
pub fn auth_scheme(rule: &AuthenticationRule) -> Option<String> {
    if rule.api_key.is_none() {
        return rule.jwt.as_ref().map(|_| "jwt".to_string());
    }
    let location = rule.credentials.as_ref().and_then(|c| {
        if let Some(header) = &c.authorization_header {
            Some(match header.prefix.as_deref() {
                Some(prefix) => format!("Authorization: {prefix}"),
                None => "Authorization".into(),
            })
        } else if let Some(header) = &c.custom_header {
            Some(format!("header {}", header.name))
        } else if let Some(query) = &c.query_string {
            Some(format!("query {}", query.name))
        } else {
            c.cookie
                .as_ref()
                .map(|cookie| format!("cookie {}", cookie.name))
        }
    });
    Some(match location {
        Some(location) => format!("apiKey ({location})"),
        None => "apiKey".into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn product(value: serde_json::Value) -> APIProduct {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn plans_show_each_tier_with_its_limits() {
        let discovered: Vec<DiscoveredPlan> = serde_json::from_value(json!([
            {"tier": "gold", "limits": {"daily": 100, "monthly": 2000}},
            {"tier": "silver", "limits": {"custom": [{"limit": 10, "window": "1m"}]}},
            {"tier": "free"}
        ]))
        .unwrap();
        assert_eq!(
            plans(&discovered),
            "gold: 100/day 2000/month, silver: 10/1m, free"
        );
    }

    #[test]
    fn auth_schemes_name_the_credential_location() {
        let rule = |value| serde_json::from_value::<AuthenticationRule>(value).unwrap();
        let header = rule(json!({"apiKey": {"selector": {}},
            "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}}));
        assert_eq!(
            auth_scheme(&header).as_deref(),
            Some("apiKey (Authorization: APIKEY)")
        );
        let custom = rule(json!({"apiKey": {"selector": {}},
            "credentials": {"customHeader": {"name": "X-Api-Key"}}}));
        assert_eq!(
            auth_scheme(&custom).as_deref(),
            Some("apiKey (header X-Api-Key)")
        );
        let bare = rule(json!({"apiKey": {"selector": {}}}));
        assert_eq!(auth_scheme(&bare).as_deref(), Some("apiKey"));
        let jwt = rule(json!({"jwt": {"issuerUrl": "https://issuer"}}));
        assert_eq!(auth_scheme(&jwt).as_deref(), Some("jwt"));
    }

    #[test]
    fn the_table_shows_mode_plans_auth_and_readiness() {
        let toys = product(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
            "metadata": {"name": "toys", "namespace": "shop",
                         "creationTimestamp": "2026-01-09T00:00:00Z"},
            "spec": {"displayName": "Toys", "approvalMode": "manual", "publishStatus": "Draft",
                     "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                   "name": "toystore"}},
            "status": {"discoveredPlans": [{"tier": "gold", "limits": {"daily": 100}}],
                       "discoveredAuthScheme": {"authentication": {"keys": {
                           "apiKey": {"selector": {}},
                           "credentials": {"authorizationHeader": {"prefix": "APIKEY"}}}}},
                       "conditions": [{"type": "Ready", "status": "True", "reason": "Ready",
                           "message": "", "lastTransitionTime": "2026-01-09T00:00:00Z"}]}
        }));
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let text = table(&[toys], true, now).render("");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0].split_whitespace().collect::<Vec<_>>(),
            [
                "NAMESPACE",
                "NAME",
                "DISPLAY",
                "NAME",
                "APPROVAL",
                "PLANS",
                "AUTH",
                "READY",
                "AGE"
            ]
        );
        for cell in [
            "shop",
            "toys (draft)",
            "manual",
            "gold: 100/day",
            "apiKey (Authorization: APIKEY)",
            "True",
            "24h",
        ] {
            assert!(lines[1].contains(cell), "{cell:?} missing from {text}");
        }
    }
}
