//! When the API server cannot be reached the webhook fails closed: every lookup a rule makes, when
//! it fails, denies the request with a 500 that says what could not be looked up, and never lets
//! it through. Each admission below runs once against the in-memory cluster to count its lookups,
//! then once per lookup with exactly that one failing (the ones before it answer). And what each
//! `lookup_failed` in src/webhook/rules/ names (an APIProduct, an HTTPRoute, an APIKeyRequest,
//! approval, impersonation or other permissions) is named by one of these failures, so a rule
//! that adds a new kind of lookup needs an admission here.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

use super::{approve, cluster, key, limits, product, product_on, request, review, send, user};
use crate::names::{AUTOMATIC_REVIEWER, FINALIZER, ROTATION_REQUEST_ANNOTATION};
use crate::resources::gateway::HTTPRoute;
use crate::resources::{APIKeyRequest, APIProduct};
use crate::webhook::key_counts::Claim;
use crate::webhook::lookup::{Lookup, MemoryLookup, Read};
use crate::webhook::review::{Endpoint, Webhook};
use crate::webhook::rules::Reason;

const FRONT_END: &str = "system:serviceaccount:portal:backstage";
const ALICE: &str = "user:default/alice";

/// The usual cluster, whose lookups are counted, and whose `fail_at`-th lookup (from 1) fails as
/// an unreachable API server would.
struct Flaky {
    cluster: MemoryLookup,
    calls: Arc<AtomicUsize>,
    fail_at: Option<usize>,
}

impl Flaky {
    fn new(fail_at: Option<usize>, calls: Arc<AtomicUsize>) -> Self {
        let mut auto = product("auto", true, &["gold"]);
        auto["spec"]["approvalMode"] = json!("automatic");
        Flaky {
            cluster: cluster()
                .with_product(serde_json::from_value(auto).unwrap())
                .with_impersonator(FRONT_END, ALICE),
            calls,
            fail_at,
        }
    }

    /// Counts one lookup; fails it if it is the chosen one.
    fn call(&self) -> crate::Result<()> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if Some(n) == self.fail_at {
            return Err(crate::Error::Cache("connection refused".into()));
        }
        Ok(())
    }
}

impl Lookup for Flaky {
    async fn product(
        &self,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> crate::Result<Option<Arc<APIProduct>>> {
        self.call()?;
        self.cluster.product(namespace, name, read).await
    }
    async fn route(
        &self,
        namespace: &str,
        name: &str,
        read: Read,
    ) -> crate::Result<Option<Arc<HTTPRoute>>> {
        self.call()?;
        self.cluster.route(namespace, name, read).await
    }
    async fn key_request(
        &self,
        namespace: &str,
        name: &str,
    ) -> crate::Result<Option<Arc<APIKeyRequest>>> {
        self.call()?;
        self.cluster.key_request(namespace, name).await
    }
    fn admit_key(&self, claim: &Claim, now: Timestamp) -> Result<(), usize> {
        // The key limit's count is the process's own (fed by the watch): no API call to fail.
        self.cluster.admit_key(claim, now)
    }
    async fn may_approve(
        &self,
        user: &UserInfo,
        namespace: &str,
        product: &str,
    ) -> crate::Result<bool> {
        self.call()?;
        self.cluster.may_approve(user, namespace, product).await
    }
    async fn may_impersonate(&self, user: &UserInfo, target: &str) -> crate::Result<bool> {
        self.call()?;
        self.cluster.may_impersonate(user, target).await
    }
}

/// An APIKeyApproval of the usual request `mine-1234abcd`, naming `reviewer`.
fn review_of_request(reviewer: &str) -> Value {
    json!({
        "apiVersion": crate::names::API_VERSION, "kind": "APIKeyApproval",
        "metadata": {"name": "mine-1234abcd-approval-0a1b2c3d", "namespace": "apps"},
        "spec": {"apiKeyRequestRef": {"name": "mine-1234abcd"}, "approved": true,
                 "reviewedBy": reviewer, "reviewedAt": "2026-06-01T12:00:00Z", "reason": "ok"}
    })
}

/// Admissions that between them reach every lookup of every rule: (what, endpoint, review).
fn admissions() -> Vec<(&'static str, Endpoint, Value)> {
    let consumer_key = key("toys", "gold", Some("consumer"));
    let mut for_alice = key("toys", "gold", None);
    for_alice["spec"]["requestedBy"] = json!({"userId": ALICE});
    let mut edited_for_alice = for_alice.clone();
    edited_for_alice["spec"]["useCase"] = json!("a better reason");
    let approved = approve(consumer_key.clone(), "owner");
    let mut automatic = key("auto", "gold", Some("consumer"));
    automatic["spec"]["approval"] = json!({
        "approved": true, "reviewedBy": AUTOMATIC_REVIEWER, "reviewedAt": "2026-06-01T11:59:00Z",
        "productUID": "p-1", "planTier": "gold"
    });
    let mut finalized = approved.clone();
    finalized["metadata"]["finalizers"] = json!([FINALIZER]);
    let mut rotating = approved.clone();
    rotating["metadata"]["annotations"] =
        json!({ROTATION_REQUEST_ANNOTATION: "2026-12-01T07:00:00Z"});
    let controller = user(&limits().controller_username);
    let create = |who: &str, object: &Value| review("CREATE", user(who), object.clone(), None);
    let update = |who: Value, new: &Value, old: &Value| {
        review("UPDATE", who, new.clone(), Some(old.clone()))
    };
    vec![
        (
            "a key request",
            Endpoint::MutateKeys,
            create("consumer", &key("auto", "gold", None)),
        ),
        (
            "a key request",
            Endpoint::ValidateKeys,
            create("consumer", &consumer_key),
        ),
        (
            "a request for a Draft",
            Endpoint::ValidateKeys,
            create("consumer", &key("draft", "gold", Some("consumer"))),
        ),
        (
            "a front end's request for its user",
            Endpoint::MutateKeys,
            create(FRONT_END, &for_alice),
        ),
        (
            "a front end's request for its user",
            Endpoint::ValidateKeys,
            create(FRONT_END, &for_alice),
        ),
        (
            "a front end's edit of its user's request",
            Endpoint::ValidateKeys,
            update(user(FRONT_END), &edited_for_alice, &for_alice),
        ),
        (
            "an owner's approval on the key",
            Endpoint::MutateKeys,
            update(user("owner"), &approved, &consumer_key),
        ),
        (
            "an owner's approval on the key",
            Endpoint::ValidateKeys,
            update(user("owner"), &approved, &consumer_key),
        ),
        (
            "the controller writing a review onto the key",
            Endpoint::MutateKeys,
            update(controller.clone(), &approved, &consumer_key),
        ),
        (
            "the controller recording an automatic approval",
            Endpoint::ValidateKeys,
            update(
                controller,
                &automatic,
                &key("auto", "gold", Some("consumer")),
            ),
        ),
        (
            "an owner removing the finalizer",
            Endpoint::ValidateKeys,
            update(user("owner"), &approved, &finalized),
        ),
        (
            "an owner asking for a rotation",
            Endpoint::ValidateKeys,
            update(user("owner"), &rotating, &approved),
        ),
        (
            "a product",
            Endpoint::ValidateProducts,
            create("owner", &product_on("toystore")),
        ),
        (
            "an owner's review",
            Endpoint::MutateApprovals,
            create("owner", &review_of_request("owner")),
        ),
        (
            "an owner's review",
            Endpoint::ValidateApprovals,
            create("owner", &review_of_request("owner")),
        ),
        (
            "a front end's review for its user",
            Endpoint::MutateApprovals,
            create(FRONT_END, &review_of_request(ALICE)),
        ),
        (
            "a front end's review for its user",
            Endpoint::ValidateApprovals,
            create(FRONT_END, &review_of_request(ALICE)),
        ),
        (
            "a request written by someone other than the controller",
            Endpoint::ValidateRequests,
            create("owner", &request("forged-00000000", "toys", "gold")),
        ),
    ]
}

/// What `lookup_failed` names in each place the rules call it: the text before the first `{` of
/// its first string argument, read from src/webhook/rules/.
fn lookup_failure_sites() -> Vec<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/webhook/rules");
    let mut sites = Vec::new();
    for entry in std::fs::read_dir(dir).expect("src/webhook/rules") {
        let path = entry.unwrap().path();
        let source = std::fs::read_to_string(&path).unwrap();
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for call in source.split("lookup_failed(").skip(1) {
            let Some(argument) = call.strip_prefix("&format!(\"").or(call.strip_prefix('"')) else {
                continue; // the function's own definition
            };
            let what = argument.split(['"', '{']).next().unwrap().to_string();
            sites.push((file.clone(), what));
        }
    }
    assert!(
        !sites.is_empty(),
        "the rules turn failed lookups into denials"
    );
    sites
}

#[tokio::test]
async fn every_lookup_of_every_rule_fails_closed() {
    let unreachable = crate::Error::Cache("connection refused".into());
    let mut named = Vec::new();
    for (what, endpoint, body) in admissions() {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = Webhook::new(Flaky::new(None, calls.clone()), limits());
        send(&counted, endpoint, &body).await;
        let lookups = calls.load(Ordering::SeqCst);
        assert!(lookups > 0, "{what} ({endpoint:?}) looks something up");
        for failing in 1..=lookups {
            let flaky = Flaky::new(Some(failing), Arc::new(AtomicUsize::new(0)));
            let webhook = Webhook::new(flaky, limits());
            let (reply, response) = send(&webhook, endpoint, &body).await;
            let context = format!("{what} ({endpoint:?}), lookup {failing} of {lookups} failing");
            assert_eq!(response["allowed"], false, "{context}: {response}");
            assert_eq!(
                reply.outcome.reason,
                Reason::LookupFailed,
                "{context}: {response}"
            );
            assert_eq!(response["status"]["code"], 500, "{context}");
            let message = response["status"]["message"].as_str().unwrap();
            let looked_up = message
                .strip_prefix("devportal could not look up ")
                .and_then(|m| m.strip_suffix(&format!(": {unreachable}; try again")))
                .unwrap_or_else(|| panic!("{context}: {message:?}"));
            named.push(looked_up.to_string());
        }
    }
    for (file, what) in lookup_failure_sites() {
        assert!(
            named.iter().any(|n| n.starts_with(&what)),
            "src/webhook/rules/{file}: no admission here fails on looking up {what:?}; add one"
        );
    }
}
