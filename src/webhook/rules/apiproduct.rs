//! The validating webhook for APIProducts: [`validate_product`] checks that `spec.targetRef` names
//! an existing HTTPRoute in the product's namespace that a platform engineer marked as exposed,
//! and that whoever sets the route or `approvalMode: automatic` may approve (since an
//! automatic product approves keys on its owner's behalf, and a route's keys carry its
//! AuthPolicy's labels): `approve` on the product itself, and on every other product that already
//! targets the route (a route is bound to the products its owners agree on).

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::ResourceExt;

use super::{Change, Checked, Reason, Verdict, lookup_failed};
use crate::names::{EXPOSED_ANNOTATION, GROUP};
use crate::resources::{APIProduct, ApprovalMode};
use crate::webhook::lookup::{Lookup, Read};

/// What an APIProduct change asks of its author's power to approve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Needs {
    /// `targetRef` is set (CREATE) or changed: the route must exist and be exposed, and its other
    /// products' owners must agree.
    pub route: bool,
    /// `approve` on the product itself: the route is set or changed, or `approvalMode` becomes
    /// `automatic`.
    pub approve: bool,
}

/// What `change` needs checked (pure).
pub fn needs(change: Change<'_, APIProduct>) -> Needs {
    match change {
        Change::Create(_) => Needs {
            route: true,
            approve: true,
        },
        Change::Update { old, new } => {
            let route = old.spec.target_ref != new.spec.target_ref;
            let automatic = new.spec.approval_mode == ApprovalMode::Automatic
                && old.spec.approval_mode != ApprovalMode::Automatic;
            Needs {
                route,
                approve: route || automatic,
            }
        }
    }
}

/// The validating webhook for APIProducts: `targetRef` names an existing, exposed HTTPRoute in the
/// product's namespace (checked on CREATE and whenever `targetRef` changes), and who sets the
/// route or `approvalMode: automatic` may approve the product and every other product on the
/// route.
pub async fn validate_product<C: Lookup>(
    lookup: &C,
    change: Change<'_, APIProduct>,
    user: &UserInfo,
) -> Verdict {
    let product = change.new_object();
    let needs = needs(change);
    if !needs.approve {
        return Verdict::allow(Reason::Unchanged);
    }
    let Some(namespace) = product.metadata.namespace.as_deref() else {
        return Verdict::deny(Reason::BadRequest, "the APIProduct has no namespace");
    };
    let route_name = product.spec.target_ref.name.as_str();
    if needs.route {
        // A route annotated a moment ago may still be unannotated in the cache: confirm live.
        for read in [Read::Cached, Read::Live] {
            match route_verdict(lookup, namespace, route_name, read).await {
                Verdict {
                    reason: Reason::RouteNotExposed,
                    ..
                } if read == Read::Cached => continue,
                verdict if !verdict.allowed() => return verdict,
                _ => break,
            }
        }
    }
    match may_set(lookup, product, namespace, needs, user).await {
        Ok(()) => Verdict::allow(Reason::Allowed),
        Err(denial) => denial,
    }
}

/// Checks that `user` may approve `product` and, when its route is set, every other product on
/// that route.
async fn may_set<C: Lookup>(
    lookup: &C,
    product: &APIProduct,
    namespace: &str,
    needs: Needs,
    user: &UserInfo,
) -> Checked {
    let who = user.username.as_deref().unwrap_or_default();
    let name = product.name_any();
    let route = product.spec.target_ref.name.as_str();
    if !approves(lookup, user, namespace, &name).await? {
        let what = if needs.route {
            format!("set spec.targetRef (HTTPRoute {route:?})")
        } else {
            "set approvalMode: automatic".to_string()
        };
        return Err(Verdict::deny(
            Reason::NotApprover,
            format!(
                "user {who:?} may not {what} of APIProduct {namespace}/{name}: that approves keys \
                 on the product's behalf, so it needs verb \"approve\" on apiproducts.{GROUP} \
                 {name:?} in namespace {namespace:?} (a front end must impersonate the product's \
                 owner)"
            ),
        ));
    }
    if !needs.route {
        return Ok(());
    }
    let mut others: Vec<String> = lookup
        .products_on_route(namespace, route)
        .into_iter()
        .map(|p| p.name_any())
        .filter(|other| *other != name)
        .collect();
    others.sort();
    for other in others {
        if !approves(lookup, user, namespace, &other).await? {
            return Err(Verdict::deny(
                Reason::NotApprover,
                format!(
                    "HTTPRoute {route:?} is already the target of APIProduct {namespace}/{other}: \
                     its keys carry that route's AuthPolicy labels, so only someone who may \
                     approve {other:?} (verb \"approve\" on apiproducts.{GROUP} {other:?} in \
                     namespace {namespace:?}) may put another product on it; user {who:?} may not"
                ),
            ));
        }
    }
    Ok(())
}

/// Whether `user` may approve `namespace/product` (a SubjectAccessReview).
async fn approves<C: Lookup>(
    lookup: &C,
    user: &UserInfo,
    namespace: &str,
    product: &str,
) -> Checked<bool> {
    lookup
        .may_approve(user, namespace, product)
        .await
        .map_err(|e| lookup_failed("approval permissions (SubjectAccessReview)", e))
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
