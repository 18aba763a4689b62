//! APIProduct reconcile: discover the route, plans, auth scheme, OIDC token endpoint and OpenAPI
//! document, and server-side-apply the full status when it changed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::Context;
use crate::Result;
use crate::conditions::{Desired, merge};
use crate::discovery::{Resolution, resolve};
use crate::kube_ext::plain_ref;
use crate::names::product_condition as condition;
use crate::resources::{APIProduct, APIProductStatus, OidcDiscovery, OpenApiStatus};

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
    conditions.push(match &resolution.plan_policy {
        Some(p) => Desired::holds(
            condition::PLAN_POLICY,
            "Found",
            format!(
                "PlanPolicy {}/{} offers {} tier(s)",
                p.namespace().unwrap_or_default(),
                p.name_any(),
                status.discovered_plans.len()
            ),
        ),
        None => Desired::fails(
            condition::PLAN_POLICY,
            "NotFound",
            "no PlanPolicy targets the route or its Gateways",
        ),
    });
    conditions.push(match (&resolution.auth_policy, selector_problem) {
        (Some(p), Some(why)) => Desired::fails(
            condition::AUTH_POLICY,
            "UnsatisfiableSelector",
            format!(
                "AuthPolicy {}/{}: {why}",
                p.namespace().unwrap_or_default(),
                p.name_any()
            ),
        ),
        (Some(p), None) => Desired::holds(
            condition::AUTH_POLICY,
            "Found",
            format!(
                "AuthPolicy {}/{} is accepted and enforced",
                p.namespace().unwrap_or_default(),
                p.name_any()
            ),
        ),
        (None, _) => Desired::fails(
            condition::AUTH_POLICY,
            "NotFound",
            "no accepted and enforced AuthPolicy targets the route or its Gateways",
        ),
    });

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
                retry_soon = true;
                conditions.push(Desired::fails(
                    condition::OIDC,
                    "FetchFailed",
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
    match openapi_url {
        None => conditions.push(Desired::fails(
            condition::OPENAPI,
            "NotConfigured",
            "spec.documentation.openAPISpecURL is not set",
        )),
        Some(url) => {
            let same_spec = previous.observed_generation == product.metadata.generation;
            let fresh = previous.openapi.as_ref().filter(|doc| {
                same_spec
                    && now.duration_since(doc.last_sync_time.0).unsigned_abs()
                        < ctx.config.openapi_refresh
            });
            if let Some(doc) = fresh {
                status.openapi = Some(doc.clone());
                conditions.push(Desired::holds(
                    condition::OPENAPI,
                    "Fetched",
                    format!("fetched from {url}"),
                ));
            } else {
                match ctx.fetcher.fetch(&url).await {
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
                        retry_soon = true;
                        ctx.metrics.controller.fetch_failed("openapi");
                        // Keep serving the last good document of an unchanged spec.
                        status.openapi = previous.openapi.clone().filter(|_| same_spec);
                        conditions.push(Desired::fails(
                            condition::OPENAPI,
                            "FetchFailed",
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

fn ready(product: &APIProduct, resolution: &Resolution, unsatisfiable_selector: bool) -> Desired {
    let route = &product.spec.target_ref.name;
    match &resolution.route {
        None => Desired::fails(
            condition::READY,
            "RouteNotFound",
            format!("HTTPRoute {route} does not exist"),
        ),
        Some(r) if !r.is_accepted() => Desired::fails(
            condition::READY,
            "RouteNotAccepted",
            format!("no parent Gateway has accepted HTTPRoute {route}"),
        ),
        Some(_) if resolution.plan_policy.is_none() => Desired::fails(
            condition::READY,
            "PlanPolicyNotFound",
            "no PlanPolicy applies to the route",
        ),
        Some(_) if resolution.auth_policy.is_none() => Desired::fails(
            condition::READY,
            "AuthPolicyNotFound",
            "no enforced AuthPolicy applies to the route",
        ),
        Some(_) if unsatisfiable_selector => Desired::fails(
            condition::READY,
            "UnsatisfiableSelector",
            "no enforcement Secret can satisfy the AuthPolicy's apiKey selector (see AuthPolicyDiscovered)",
        ),
        Some(_) => Desired::holds(
            condition::READY,
            "Ready",
            format!("HTTPRoute {route} is accepted, plans and auth discovered"),
        ),
    }
}
