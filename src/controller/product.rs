//! APIProduct reconcile: discover the route, plans, auth scheme, OIDC token endpoint and OpenAPI
//! document, and server-side-apply the full status when it changed.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::runtime::controller::Action;

use super::context::Context;
use super::overlap::{self, SAMPLE_UID};
use crate::conditions::{Desired, merge};
use crate::discovery::{Resolution, resolve};
use crate::kube_ext::plain_ref;
use crate::names::product_condition as condition;
use crate::names::product_reason::{KEYS_FROM_ALL_NAMESPACES, SELECTOR_OVERLAP, TIERS_SKIPPED};
use crate::resources::kuadrant::PolicyTargetRef;
use crate::resources::{APIProduct, APIProductStatus, OidcDiscovery, OpenApiStatus};
use crate::secrets::ProductId;
use crate::selector::overlap::Overlap;
use crate::{Error, Result};

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
    // The labels of the product's enforcement Secrets. A selector no Secret can satisfy leaves
    // every key of the product unusable; labels another product's AuthPolicy also accepts (or a
    // selector accepting another product's labels) may get the product refused: say so here.
    let id = ProductId {
        namespace: product.metadata.namespace.as_deref().unwrap_or_default(),
        name: product.metadata.name.as_deref().unwrap_or_default(),
    };
    let labels = resolution.api_key_rule().map(|(auth, _, _)| {
        crate::secrets::labels_for_rule(
            SAMPLE_UID,
            id,
            &ctx.config.authorino_selector,
            &auth.selector,
        )
    });
    let selector_problem = labels.as_ref().and_then(|l| l.as_ref().err().cloned());
    status.enforcement = match (&labels, &resolution.auth_policy) {
        (Some(Ok(labels)), Some(policy)) => Some(overlap::record(
            previous.enforcement.as_ref(),
            policy,
            labels,
            now,
        )),
        _ => None,
    };
    let overlaps = overlap::check(
        &product,
        status
            .enforcement
            .as_ref()
            .zip(resolution.auth_policy.as_deref()),
        &ctx,
    );
    let mut conditions = vec![ready(
        &product,
        &resolution,
        selector_problem.is_some(),
        overlaps.iter().any(|o| o.refuses_me),
    )];
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
    conditions.push(auth_condition(
        &product,
        &resolution,
        selector_problem,
        &overlaps,
    ));

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
                            max_size_used: i64::try_from(ctx.fetcher.max_bytes()).ok(),
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
/// namespace), not found, found with a selector no enforcement Secret can satisfy, or found with
/// labels that overlap another product's selector (refused, or kept with a warning).
fn auth_condition(
    product: &APIProduct,
    resolution: &Resolution,
    selector_problem: Option<String>,
    overlaps: &[Overlap],
) -> Desired {
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
        (Some(p), None) if !overlaps.is_empty() => {
            let found = discovered("AuthPolicy", &p.name_any(), &p.spec.target_ref);
            match overlap::auth_condition(product, &found, overlaps) {
                Some((true, message)) => {
                    Desired::holds(condition::AUTH_POLICY, SELECTOR_OVERLAP, message)
                }
                Some((false, message)) => {
                    Desired::fails(condition::AUTH_POLICY, SELECTOR_OVERLAP, message)
                }
                None => Desired::holds(condition::AUTH_POLICY, "Found", found),
            }
        }
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

fn ready(
    product: &APIProduct,
    resolution: &Resolution,
    unsatisfiable_selector: bool,
    refused_for_overlap: bool,
) -> Desired {
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
    } else if refused_for_overlap {
        Desired::fails(
            condition::READY,
            SELECTOR_OVERLAP,
            "this product's keys would also work on another product's API, or another's on this one's: \
             devportal writes no enforcement Secret for its keys (see AuthPolicyDiscovered)",
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
#[path = "product_tests.rs"]
mod tests;
