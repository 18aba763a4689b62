//! [`CachedLookup`]'s live calls over the budgets, through the webhook's own answer.

use std::sync::atomic::{AtomicUsize, Ordering};

use kube::client::Body;
use kube::runtime::reflector::store;

use super::*;
use crate::webhook::lookup::rate::{BudgetLimits, Rate};

/// A budget whose ceiling refills practically never during a test, with a burst of `burst`
/// calls for requests (half of the ceiling's), and callers limited by nothing else.
fn requests_burst(burst: u32) -> LiveBudget {
    LiveBudget::new(BudgetLimits {
        ceiling: Rate::new(0.001, 2 * burst),
        per_caller: Rate::new(1000.0, 1000),
        max_callers: 16,
    })
}

/// A lookup over empty caches whose API server answers every call with 404, counting them.
fn lookup(calls: Arc<AtomicUsize>, bucket: LiveBudget) -> CachedLookup {
    let service = tower::service_fn(move |_request: axum::http::Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        async {
            let status = serde_json::json!({
                "kind": "Status", "apiVersion": "v1", "status": "Failure",
                "reason": "NotFound", "code": 404, "message": "not found"
            });
            Ok::<_, std::convert::Infallible>(
                axum::http::Response::builder()
                    .status(404)
                    .header("content-type", "application/json")
                    .body(Body::from(status.to_string().into_bytes()))
                    .unwrap(),
            )
        }
    });
    let (_, keys_synced) = watch::channel(true);
    CachedLookup {
        client: Client::new(service, "default"),
        products: store().0,
        routes: store().0,
        policies: store().0,
        namespaces: store().0,
        keys: Arc::default(),
        keys_synced,
        live_calls: Arc::new(bucket),
    }
}

#[tokio::test]
async fn live_lookups_over_the_rate_are_not_made() {
    let calls = Arc::new(AtomicUsize::new(0));
    // A burst of 3 and practically no refill during the test.
    let lookup = lookup(calls.clone(), requests_burst(3));
    for _ in 0..3 {
        let found = lookup.product("apps", "fresh", Read::Cached).await.unwrap();
        assert!(found.is_none(), "a cache miss is read live");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    for _ in 0..50 {
        let err = lookup
            .product("apps", "fresh", Read::Live)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::RateLimited(_)), "{err}");
        assert!(err.to_string().contains("too many live lookups"), "{err}");
    }
    let user = UserInfo {
        username: Some("owner".into()),
        ..UserInfo::default()
    };
    let err = lookup
        .may_approve(&user, "apps", "fresh")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::RateLimited(_)), "{err}");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "no call reached the API server over the rate"
    );
}

#[tokio::test]
async fn over_the_rate_an_admission_is_denied_with_a_request_to_retry() {
    use crate::webhook::review::{Endpoint, Webhook};
    use crate::webhook::rules::{Limits, Reason};

    let calls = Arc::new(AtomicUsize::new(0));
    let webhook = Webhook::new(
        lookup(calls.clone(), requests_burst(1)),
        Limits {
            max_keys_per_user_per_product: 5,
            expired_key_grace: Duration::from_secs(86_400),
            max_key_lifetime: Duration::from_secs(86_400),
            controller_username: "devportal".into(),
        },
    );
    // A key request for a product the cache has not seen: each needs a live GET.
    let review = serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": GROUP, "version": "v1alpha1", "kind": "APIKey"},
            "resource": {"group": GROUP, "version": "v1alpha1", "resource": "apikeys"},
            "namespace": "apps", "operation": "CREATE",
            "userInfo": {"username": "consumer"},
            "object": {"apiVersion": format!("{GROUP}/v1alpha1"), "kind": "APIKey",
                       "metadata": {"name": "k", "namespace": "apps"},
                       "spec": {"apiProductRef": {"name": "fresh"}, "planTier": "gold",
                                "requestedBy": {"userId": "consumer"}}},
            "oldObject": null
        }
    })
    .to_string();
    let now = k8s_openapi::jiff::Timestamp::now();
    let first = webhook
        .admit(Endpoint::ValidateKeys, review.as_bytes(), now)
        .await;
    assert_eq!(
        first.outcome.reason,
        Reason::ProductNotFound,
        "looked up live"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    for _ in 0..20 {
        let reply = webhook
            .admit(Endpoint::ValidateKeys, review.as_bytes(), now)
            .await;
        assert_eq!(reply.outcome.reason, Reason::LookupFailed);
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        let message = body["response"]["status"]["message"].as_str().unwrap();
        assert!(
            message.contains("too many live lookups") && message.contains("try again"),
            "{message}"
        );
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1, "no further live call");
}

/// An AdmissionReview of `operation` on `kind` (`resource`) by `username`.
fn admission(username: &str, kind: &str, resource: &str, object: serde_json::Value) -> String {
    serde_json::json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {
            "uid": "u-1",
            "kind": {"group": GROUP, "version": "v1alpha1", "kind": kind},
            "resource": {"group": GROUP, "version": "v1alpha1", "resource": resource},
            "namespace": "apps", "operation": "CREATE", "dryRun": true,
            "userInfo": {"username": username},
            "object": object, "oldObject": null
        }
    })
    .to_string()
}

#[tokio::test]
async fn flooding_requesters_leave_reviews_their_lane() {
    use crate::webhook::review::{Endpoint, Webhook};
    use crate::webhook::rules::{Limits, Reason};

    let calls = Arc::new(AtomicUsize::new(0));
    // A ceiling of 40 (requests: 20), 10 per caller, practically no refill.
    let budget = LiveBudget::new(BudgetLimits {
        ceiling: Rate::new(0.001, 40),
        per_caller: Rate::new(0.001, 10),
        max_callers: 64,
    });
    let webhook = Webhook::new(
        lookup(calls.clone(), budget),
        Limits {
            max_keys_per_user_per_product: 5,
            expired_key_grace: Duration::from_secs(86_400),
            max_key_lifetime: Duration::from_secs(86_400),
            controller_username: "devportal".into(),
        },
    );
    let now = k8s_openapi::jiff::Timestamp::now();
    // Dry-run key requests for a product the cache has not seen: one live GET each.
    let key_request = |user: &str| {
        admission(
            user,
            "APIKey",
            "apikeys",
            serde_json::json!({
                "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "APIKey",
                "metadata": {"name": "k", "namespace": "apps"},
                "spec": {"apiProductRef": {"name": "ghost"}, "planTier": "gold",
                         "requestedBy": {"userId": user}}
            }),
        )
    };
    let answer = |reply: &crate::webhook::review::Reply| {
        let body: serde_json::Value = serde_json::from_slice(&reply.body).unwrap();
        body["response"]["status"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };

    // One consumer floods: ten lookups are made, then only they are refused.
    let mut made = 0;
    for _ in 0..30 {
        let reply = webhook
            .admit(
                Endpoint::ValidateKeys,
                key_request("consumer").as_bytes(),
                now,
            )
            .await;
        if reply.outcome.reason == Reason::ProductNotFound {
            made += 1;
        } else {
            assert_eq!(reply.outcome.reason, Reason::LookupFailed);
            let message = answer(&reply);
            assert!(
                message.contains("too many live lookups from your user"),
                "{message}"
            );
        }
    }
    assert_eq!(made, 10, "the caller's own budget");
    // Another requester spends the rest of the requests' half; then requests are refused...
    for _ in 0..10 {
        let reply = webhook
            .admit(
                Endpoint::ValidateKeys,
                key_request("consumer2").as_bytes(),
                now,
            )
            .await;
        assert_eq!(reply.outcome.reason, Reason::ProductNotFound);
    }
    let reply = webhook
        .admit(
            Endpoint::ValidateKeys,
            key_request("consumer3").as_bytes(),
            now,
        )
        .await;
    assert_eq!(reply.outcome.reason, Reason::LookupFailed);
    assert!(
        answer(&reply).contains("too many live lookups at once"),
        "{}",
        answer(&reply)
    );
    // ...and an owner's review still gets its live lookup (the request is then not found).
    let review = admission(
        "owner",
        "APIKeyApproval",
        "apikeyapprovals",
        serde_json::json!({
            "apiVersion": format!("{GROUP}/v1alpha1"), "kind": "APIKeyApproval",
            "metadata": {"name": "a", "namespace": "apps"},
            "spec": {"apiKeyRequestRef": {"name": "r"}, "approved": true, "reviewedBy": "owner"}
        }),
    );
    let before = calls.load(Ordering::SeqCst);
    let reply = webhook
        .admit(Endpoint::ValidateApprovals, review.as_bytes(), now)
        .await;
    assert_eq!(
        reply.outcome.reason,
        Reason::RequestNotFound,
        "{}",
        answer(&reply)
    );
    assert_eq!(calls.load(Ordering::SeqCst), before + 1);
}
