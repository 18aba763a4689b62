//! The validating webhook for APIProducts: `spec.targetRef` names an existing, exposed HTTPRoute,
//! checked on CREATE and whenever `targetRef` changes; setting the route or `approvalMode:
//! automatic` needs `approve` on the product, and on every other product on the route.

use serde_json::json;

use super::{allowed, cluster, denied, limits, product_on, review, send, user};
use crate::names::EXPOSED_ANNOTATION;
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

#[tokio::test]
async fn products_target_existing_exposed_routes() {
    allowed(
        Endpoint::ValidateProducts,
        &review("CREATE", user("admin"), product_on("toystore"), None),
    )
    .await;
    denied(
        Endpoint::ValidateProducts,
        &review("CREATE", user("owner"), product_on("ghost"), None),
        Reason::RouteNotFound,
        422,
        "HTTPRoute \"ghost\" not found in namespace \"apps\"",
    )
    .await;
    denied(
        Endpoint::ValidateProducts,
        &review("UPDATE", user("owner"), product_on("hidden"), Some(product_on("toystore"))),
        Reason::RouteNotExposed,
        422,
        &format!(
            "HTTPRoute \"hidden\" in namespace \"apps\" is not exposed to API owners; a platform engineer must annotate it {EXPOSED_ANNOTATION}=\"true\""
        ),
    )
    .await;
    // Other spec changes do not re-check the route.
    let old = product_on("ghost");
    let mut new = old.clone();
    new["spec"]["description"] = json!("now with docs");
    allowed(
        Endpoint::ValidateProducts,
        &review("UPDATE", user("owner"), new, Some(old)),
    )
    .await;
}

#[tokio::test]
async fn setting_a_route_or_automatic_approval_needs_approve_on_the_product() {
    // The portal front end's rights: write products, approve nothing.
    let front_end = "system:serviceaccount:backstage:portal-frontend";
    let mut automatic = product_on("toystore");
    automatic["spec"]["approvalMode"] = json!("automatic");
    denied(
        Endpoint::ValidateProducts,
        &review("CREATE", user(front_end), automatic.clone(), None),
        Reason::NotApprover,
        403,
        "may not set spec.targetRef (HTTPRoute \"toystore\") of APIProduct apps/new: that \
         approves keys on the product's behalf, so it needs verb \"approve\"",
    )
    .await;
    // Switching a manual product to automatic.
    let mut manual = product_on("toystore");
    manual["metadata"]["name"] = json!("toys");
    let mut switched = manual.clone();
    switched["spec"]["approvalMode"] = json!("automatic");
    denied(
        Endpoint::ValidateProducts,
        &review(
            "UPDATE",
            user(front_end),
            switched.clone(),
            Some(manual.clone()),
        ),
        Reason::NotApprover,
        403,
        "may not set approvalMode: automatic of APIProduct apps/toys",
    )
    .await;
    allowed(
        Endpoint::ValidateProducts,
        &review("UPDATE", user("owner"), switched, Some(manual.clone())),
    )
    .await;
    // Back to manual, or any other change, needs nothing.
    let mut described = manual.clone();
    described["spec"]["description"] = json!("docs");
    allowed(
        Endpoint::ValidateProducts,
        &review("UPDATE", user(front_end), described, Some(manual)),
    )
    .await;
}

#[tokio::test]
async fn a_product_goes_onto_a_taken_route_only_with_its_other_products_owners_approve() {
    // `owner` may approve toys, draft and bare, which target toystore, but not `other`, which
    // does too: the owner of toys alone cannot retarget toys onto a route other's keys ride.
    let mut toys = product_on("hidden");
    toys["metadata"]["name"] = json!("toys");
    let mut retargeted = toys.clone();
    retargeted["spec"]["targetRef"]["name"] = json!("toystore");
    denied(
        Endpoint::ValidateProducts,
        &review(
            "UPDATE",
            user("owner"),
            retargeted.clone(),
            Some(toys.clone()),
        ),
        Reason::NotApprover,
        403,
        "HTTPRoute \"toystore\" is already the target of APIProduct apps/other",
    )
    .await;
    // An admin may approve every product on the route.
    allowed(
        Endpoint::ValidateProducts,
        &review(
            "UPDATE",
            user("admin"),
            retargeted.clone(),
            Some(toys.clone()),
        ),
    )
    .await;
    // With `approve` on other as well, the owner may.
    let webhook = Webhook::new(cluster().with_approver("owner", "apps", "other"), limits());
    let (reply, _) = send(
        &webhook,
        Endpoint::ValidateProducts,
        &review("UPDATE", user("owner"), retargeted, Some(toys)),
    )
    .await;
    assert_eq!(reply.outcome.reason, Reason::Allowed);
}
