//! When the API server cannot be reached the webhook fails closed: every rule that needs a lookup
//! denies with a 500.

use std::sync::Arc;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;

use super::{approve, key, limits, product_on, review, send, user};
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKeyRequest, APIProduct};
use crate::webhook::key_counts::Claim;
use crate::webhook::lookup::{Lookup, Read};
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

/// A lookup whose API server is unreachable.
struct Unreachable;

impl Lookup for Unreachable {
    async fn product(&self, _: &str, _: &str, _: Read) -> crate::Result<Option<Arc<APIProduct>>> {
        Err(crate::Error::Cache("connection refused".into()))
    }
    async fn route(&self, _: &str, _: &str, _: Read) -> crate::Result<Option<Arc<HTTPRoute>>> {
        Err(crate::Error::Cache("connection refused".into()))
    }
    async fn key_request(&self, _: &str, _: &str) -> crate::Result<Option<Arc<APIKeyRequest>>> {
        Err(crate::Error::Cache("connection refused".into()))
    }
    fn admit_key(&self, _: &Claim, _: Timestamp) -> Result<(), usize> {
        Ok(())
    }
    async fn may_approve(&self, _: &UserInfo, _: &str, _: &str) -> crate::Result<bool> {
        Err(crate::Error::Cache("connection refused".into()))
    }
    async fn may_impersonate(&self, _: &UserInfo, _: &str) -> crate::Result<bool> {
        Err(crate::Error::Cache("connection refused".into()))
    }
}

#[tokio::test]
async fn a_failed_lookup_denies_with_a_server_error() {
    let webhook = Webhook::new(Unreachable, limits());
    let body = review(
        "CREATE",
        user("consumer"),
        key("toys", "gold", Some("consumer")),
        None,
    );
    let (reply, response) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    assert_eq!(reply.outcome.reason, Reason::LookupFailed);
    assert_eq!(response["status"]["code"], 500);
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("could not look up APIProduct apps/toys")
    );
    let old = key("toys", "gold", Some("consumer"));
    let body = review(
        "UPDATE",
        user("owner"),
        approve(old.clone(), "owner"),
        Some(old),
    );
    let (_, response) = send(&webhook, Endpoint::ValidateKeys, &body).await;
    assert!(
        response["status"]["message"]
            .as_str()
            .unwrap()
            .contains("SubjectAccessReview")
    );
    let body = review("CREATE", user("owner"), product_on("toystore"), None);
    let (reply, _) = send(&webhook, Endpoint::ValidateProducts, &body).await;
    assert_eq!(reply.outcome.reason, Reason::LookupFailed);
}
