//! The validating webhook for APIProducts: `spec.targetRef` names an existing, exposed HTTPRoute,
//! checked on CREATE and whenever `targetRef` changes.

use serde_json::json;

use super::{allowed, denied, product_on, review, user};
use crate::names::EXPOSED_ANNOTATION;
use crate::webhook::review::Endpoint;
use crate::webhook::rules::Reason;

#[tokio::test]
async fn products_target_existing_exposed_routes() {
    allowed(
        Endpoint::ValidateProducts,
        &review("CREATE", user("owner"), product_on("toystore"), None),
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
