//! APIProduct reconcile: discover the route, plans, auth scheme, OIDC token endpoint and OpenAPI
//! document, and server-side-apply the full status when it changed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::Context;
use crate::conditions::{Desired, merge};
use crate::discovery::{Resolution, resolve};
use crate::kube_ext::plain_ref;
use crate::names::product_condition as condition;
use crate::names::product_reason::{KEYS_FROM_ALL_NAMESPACES, TIERS_SKIPPED};
use crate::resources::kuadrant::PolicyTargetRef;
use crate::resources::{APIProduct, APIProductStatus, OidcDiscovery, OpenApiStatus};
use crate::{Error, Result};

/// A uid standing in for the keys' when checking that enforcement Secrets can satisfy a selector.
const SAMPLE_UID: &str = "00000000-0000-0000-0000-000000000000";

/// Reconciles one APIProduct.
pub async fn reconcile(product: Arc<APIProduct>, ctx: Arc<Context>) -> Result<Action> {
    let resolution = resolve(&product, &ctx.caches);
    ctx.targets
        .set(plain_ref(&*product), resolution.watched.clone());
    let previous = product.status.clone().unwrap_or_default();
    let now = Timestamp::now();

    let mut status = APIProductStatus {
        observed_generation: product.metadata.generation,
        discovered_policies: resolution.policies(),
        discovered_auth_scheme: resolution.auth_scheme(),
        ..APIProductStatus::default()
    };
    status.set_plans(resolution.plans());
    let mut retry_soon = false;
    // A selector no Secret can satisfy leaves every key of the product unusable: say so here.
    let selector_problem = resolution.api_key_rule().and_then(|(auth, _, _)| {
        crate::secrets::labels_for_rule(SAMPLE_UID, &ctx.config.authorino_selector, &auth.selector)
            .err()
    });
    let mut conditions = vec![ready(&product, &resolution, selector_problem.is_some())];
    let skipped = resolution.skipped_tiers();
    conditions.push(match &resolution.plan_policy {
        Some(p) if !skipped.is_empty() => Desired::holds(
            condition::PLAN_POLICY,
            TIERS_SKIPPED,
            format!(
                "{}; tiers {} skipped: their names hold control, format or invisible characters",
                discovered("PlanPolicy", &p.name_any(), &p.spec.target_ref),
                skipped
                    .iter()
                    .map(|t| format!("\"{t}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        Some(p) => Desired::holds(
            condition::PLAN_POLICY,
            "Found",
            discovered("PlanPolicy", &p.name_any(), &p.spec.target_ref),
        ),
        None => Desired::fails(
            condition::PLAN_POLICY,
            "NotFound",
            "no PlanPolicy targets the route or its Gateways",
        ),
    });
    conditions.push(auth_condition(&resolution, selector_problem));

    match resolution.jwt_issuer() {
        None => conditions.push(Desired::fails(
            condition::OIDC,
            "NoJWTIssuer",
            "the AuthPolicy has no JWT rule",
        )),
        Some(issuer) => match ctx.token_endpoint(&issuer).await {
            Ok(endpoint) => {
                status.oidc_discovery = Some(OidcDiscovery {
                    token_endpoint: Some(endpoint),
                });
                conditions.push(Desired::holds(
                    condition::OIDC,
                    "Discovered",
                    format!("discovered from {issuer}"),
                ));
            }
            Err(e) => {
                retry_soon |= is_transient(&e);
                conditions.push(Desired::fails(
                    condition::OIDC,
                    fetch_reason(&e),
                    e.to_string(),
                ));
            }
        },
    }

    let openapi_url = product
        .spec
        .documentation
        .as_ref()
        .and_then(|d| d.openapi_spec_url.clone());
    // Without a URL there is nothing to be ready: no `OpenAPISpecReady` at all (as upstream).
    match openapi_url {
        None => {}
        Some(url) => {
            let same_spec = previous.observed_generation == product.metadata.generation;
            // A stored document is reused or kept only while it still passes the checks (one
            // stored by an older devportal may not).
            let fresh = previous.openapi.as_ref().filter(|doc| {
                same_spec
                    && now.duration_since(doc.last_sync_time.0).unsigned_abs()
                        < ctx.config.openapi_refresh
                    && ctx.fetcher.is_openapi(&doc.raw)
            });
            if let Some(doc) = fresh {
                status.openapi = Some(doc.clone());
                conditions.push(Desired::holds(
                    condition::OPENAPI,
                    "Fetched",
                    format!("fetched from {url}"),
                ));
            } else {
                match ctx.fetcher.openapi(&url).await {
                    Ok(raw) => {
                        status.openapi = Some(OpenApiStatus {
                            raw,
                            last_sync_time: Time(now),
                        });
                        conditions.push(Desired::holds(
                            condition::OPENAPI,
                            "Fetched",
                            format!("fetched from {url}"),
                        ));
                    }
                    Err(e) => {
                        let transient = e.failure.is_transient();
                        retry_soon |= transient;
                        ctx.metrics.controller.fetch_failed("openapi");
                        // Keep serving the last good document of an unchanged spec through a
                        // passing failure; never after a refusal or a wrong document.
                        status.openapi = previous.openapi.clone().filter(|doc| {
                            same_spec && transient && ctx.fetcher.is_openapi(&doc.raw)
                        });
                        conditions.push(Desired::fails(
                            condition::OPENAPI,
                            e.failure.condition_reason(),
                            e.to_string(),
                        ));
                    }
                }
            }
        }
    }
    status.conditions = merge(
        &previous.conditions,
        conditions,
        product.metadata.generation,
        now,
    );

    if product.status.as_ref() != Some(&status) {
        ctx.apply_status(&*product, &status).await?;
    }
    Ok(if retry_soon {
        Action::requeue(Duration::from_secs(30))
    } else if status.openapi.is_some() {
        Action::requeue(ctx.config.openapi_refresh.min(ctx.config.resync))
    } else {
        Action::requeue(ctx.config.resync)
    })
}

/// The condition reason of a failed discovery fetch: `DestinationNotAllowed`, `FetchFailed`,
/// `NotAnOpenAPIDocument`...
fn fetch_reason(error: &Error) -> &'static str {
    match error {
        Error::Fetch(e) => e.failure.condition_reason(),
        _ => "FetchFailed",
    }
}

/// Whether a failed discovery fetch is worth retrying soon.
fn is_transient(error: &Error) -> bool {
    !matches!(error, Error::Fetch(e) if !e.failure.is_transient())
}

/// Upstream's condition message for a discovered policy: "Discovered AuthPolicy auth targeting
/// HTTPRoute toystore". Front ends (the Kuadrant Backstage plugin) take the third word as the
/// policy's name, so every message of a discovered policy starts with this sentence.
fn discovered(kind: &str, name: &str, target: &PolicyTargetRef) -> String {
    format!(
        "Discovered {kind} {name} targeting {} {}",
        target.kind, target.name
    )
}

/// `AuthPolicyDiscovered`: found (with a warning when the apiKey rule reads Secrets from every
/// namespace), not found, or found with a selector no enforcement Secret can satisfy.
fn auth_condition(resolution: &Resolution, selector_problem: Option<String>) -> Desired {
    let all_namespaces = resolution.auth_policy.as_ref().is_some_and(|p| {
        p.spec
            .effective_authentication()
            .values()
            .any(|rule| rule.api_key.as_ref().is_some_and(|a| a.all_namespaces))
    });
    match (&resolution.auth_policy, selector_problem) {
        (Some(p), Some(why)) => Desired::fails(
            condition::AUTH_POLICY,
            "UnsatisfiableSelector",
            format!(
                "AuthPolicy {}/{}: {why}",
                p.namespace().unwrap_or_default(),
                p.name_any()
            ),
        ),
        (Some(p), None) if all_namespaces => Desired::holds(
            condition::AUTH_POLICY,
            KEYS_FROM_ALL_NAMESPACES,
            format!(
                "{}; warning: its apiKey rule has allNamespaces: true, so Authorino accepts a \
                 matching labelled Secret from any namespace, and anyone who can create Secrets \
                 anywhere in the cluster can mint a working key past devportal's review; remove \
                 allNamespaces (devportal does not need it) or restrict who may create Secrets",
                discovered("AuthPolicy", &p.name_any(), &p.spec.target_ref)
            ),
        ),
        (Some(p), None) => Desired::holds(
            condition::AUTH_POLICY,
            "Found",
            discovered("AuthPolicy", &p.name_any(), &p.spec.target_ref),
        ),
        (None, _) => Desired::fails(
            condition::AUTH_POLICY,
            "NotFound",
            "no accepted and enforced AuthPolicy targets the route or its Gateways",
        ),
    }
}

fn ready(product: &APIProduct, resolution: &Resolution, unsatisfiable_selector: bool) -> Desired {
    let route = &product.spec.target_ref.name;
    if let Some((reason, message)) = resolution.route_problem(product) {
        Desired::fails(condition::READY, reason, message)
    } else if resolution.plan_policy.is_none() {
        Desired::fails(
            condition::READY,
            "PlanPolicyNotFound",
            "no PlanPolicy applies to the route",
        )
    } else if resolution.auth_policy.is_none() {
        Desired::fails(
            condition::READY,
            "AuthPolicyNotFound",
            "no enforced AuthPolicy applies to the route",
        )
    } else if unsatisfiable_selector {
        Desired::fails(
            condition::READY,
            "UnsatisfiableSelector",
            "no enforcement Secret can satisfy the AuthPolicy's apiKey selector (see AuthPolicyDiscovered)",
        )
    } else {
        Desired::holds(
            condition::READY,
            "Ready",
            format!("HTTPRoute {route} is exposed and accepted, plans and auth discovered"),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::resources::kuadrant::{
        ApiKeyAuth, AuthPolicy, AuthPolicySpec, AuthRules, AuthenticationRule, PolicyTargetRef,
    };

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
        let confined = auth_condition(&with_api_key_rules(&[false]), None);
        assert_eq!((confined.status, confined.reason), (true, "Found"));
        assert_eq!(
            confined.message,
            "Discovered AuthPolicy auth targeting HTTPRoute r"
        );

        for rules in [&[true][..], &[false, true]] {
            let open = auth_condition(&with_api_key_rules(rules), None);
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
        let broken = auth_condition(&with_api_key_rules(&[true]), Some("no".into()));
        assert_eq!(broken.reason, "UnsatisfiableSelector");
    }
}
