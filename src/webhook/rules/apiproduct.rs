//! The validating webhook for APIProducts: [`validate_product`] checks that `spec.targetRef` names
//! an existing HTTPRoute in the product's namespace that a platform engineer marked as exposed.

use super::{Change, Reason, Verdict, lookup_failed};
use crate::names::EXPOSED_ANNOTATION;
use crate::resources::APIProduct;
use crate::webhook::lookup::{Lookup, Read};

/// The validating webhook for APIProducts: `targetRef` names an existing, exposed HTTPRoute in the
/// product's namespace. Checked on CREATE and whenever `targetRef` changes.
pub async fn validate_product<C: Lookup>(lookup: &C, change: Change<'_, APIProduct>) -> Verdict {
    let product = change.new_object();
    if let Change::Update { old, new } = change
        && old.spec.target_ref == new.spec.target_ref
    {
        return Verdict::allow(Reason::Unchanged);
    }
    let Some(namespace) = product.metadata.namespace.as_deref() else {
        return Verdict::deny(Reason::BadRequest, "the APIProduct has no namespace");
    };
    let route_name = product.spec.target_ref.name.as_str();
    // A route annotated a moment ago may still be unannotated in the cache: confirm live.
    for read in [Read::Cached, Read::Live] {
        match route_verdict(lookup, namespace, route_name, read).await {
            Verdict {
                reason: Reason::RouteNotExposed,
                ..
            } if read == Read::Cached => continue,
            verdict => return verdict,
        }
    }
    Verdict::allow(Reason::Allowed)
}

async fn route_verdict<C: Lookup>(
    lookup: &C,
    namespace: &str,
    route_name: &str,
    read: Read,
) -> Verdict {
    let route = match lookup.route(namespace, route_name, read).await {
        Ok(route) => route,
        Err(e) => return lookup_failed(&format!("HTTPRoute {namespace}/{route_name}"), e),
    };
    let Some(route) = route else {
        return Verdict::deny(
            Reason::RouteNotFound,
            format!(
                "spec.targetRef: HTTPRoute {route_name:?} not found in namespace {namespace:?}; an \
                 APIProduct must target an existing HTTPRoute in its own namespace"
            ),
        );
    };
    let exposed = route
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPOSED_ANNOTATION))
        .is_some_and(|v| v == "true");
    if !exposed {
        return Verdict::deny(
            Reason::RouteNotExposed,
            format!(
                "spec.targetRef: HTTPRoute {route_name:?} in namespace {namespace:?} is not exposed \
                 to API owners; a platform engineer must annotate it {EXPOSED_ANNOTATION}=\"true\""
            ),
        );
    }
    Verdict::allow(Reason::Allowed)
}
