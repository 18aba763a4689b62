//! The owner's inbox through the real API server, with devportal's webhook and controller
//! running: a consumer requests a key for a manual product; the product's owner — bound with
//! `devportal-api-owner` in the product's namespace only, with no access to APIKeys anywhere —
//! lists the APIKeyRequests there and reviews them with APIKeyApprovals. And the attacks on it: a
//! forged reviewer, a review by someone who may not approve the product, rewriting a review.
//!
//! The owner here is `inbox-owner`, impersonated by the admin (the local `owner` user also holds
//! the optional cluster-wide `devportal-key-reviewer`, which this owner must not have).

use crate::support;

use std::time::Duration;

use devportal::names::{
    APIKEY_UID_LABEL, REVIEWED_PRODUCT_UID_ANNOTATION, REVIEWED_TIER_ANNOTATION,
};
use devportal::resources::{
    APIKey, APIKeyApproval, APIKeyApprovalSpec, APIKeyRequest, APIProduct, ApprovalMode,
    RequestNameRef,
};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;
use support::access::assert_forbidden;
use support::secrets::secrets_of;
use support::{
    Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures, stdout_of,
};

const WAIT: Duration = Duration::from_secs(60);
/// The owner of the inbox's product: bound in the product's namespace only.
const OWNER: &str = "inbox-owner";
/// Someone who may create APIKeyApprovals in the product's namespace but not `approve` it.
const INTRUDER: &str = "inbox-intruder";

/// A client that is `user` (in `system:authenticated`), by the admin's impersonation.
async fn as_user(user: &str) -> Client {
    let cp = control_plane_with_devportal();
    let kubeconfig = Kubeconfig::read_from(cp.kubeconfig(Persona::Admin)).expect("kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is valid");
    config.auth_info.impersonate = Some(user.into());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".into()]);
    Client::try_from(config).expect("client builds")
}

/// The product's namespace (owned by [`OWNER`]) with the manual product `toys` and its
/// discovered plans, and a consumer namespace; with an admin client.
async fn inbox() -> (TestNamespace, TestNamespace, Client) {
    let cp = control_plane_with_devportal();
    let product_ns =
        TestNamespace::with_bindings("inbox", &[("devportal-api-owner", &[OWNER])]).await;
    let consumer_ns = TestNamespace::with_bindings(
        "inbox-consumer",
        &[("devportal-api-consumer", &["consumer"])],
    )
    .await;
    let admin = cp.client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &product_ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &product_ns.name, WAIT).await;
    (product_ns, consumer_ns, admin)
}

/// The consumer requests key `name` for `toys` at gold in their namespace.
async fn request(consumer_ns: &str, product_ns: &str, name: &str) -> APIKey {
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let mut key = fixtures::key(name, "toys", "gold");
    key.spec.api_product_ref.namespace = Some(product_ns.into());
    Api::<APIKey>::namespaced(consumer, consumer_ns)
        .create(&PostParams::default(), &key)
        .await
        .expect("the consumer requests a key")
}

/// Waits until `client` sees the APIKeyRequest of `key` in `ns`, in `phase`.
async fn request_in(client: &Client, ns: &str, key: &APIKey, phase: &str) -> APIKeyRequest {
    let requests = Api::<APIKeyRequest>::namespaced(client.clone(), ns);
    let uid = key.uid().unwrap();
    eventually(
        &format!("the request of {} to be {phase}", key.name_any()),
        WAIT,
        || async {
            let listed = requests.list(&ListParams::default()).await.ok()?;
            listed.items.into_iter().find(|r| {
                r.labels().get(APIKEY_UID_LABEL) == Some(&uid)
                    && r.status.as_ref().and_then(|s| s.phase.as_deref()) == Some(phase)
            })
        },
    )
    .await
}

fn approval(request: &str, approved: bool) -> APIKeyApproval {
    let mut approval = APIKeyApproval::new(
        &format!("{request}-review"),
        APIKeyApprovalSpec {
            api_key_request_ref: RequestNameRef {
                name: request.into(),
            },
            approved,
            reviewed_by: Some("user:default/mallory".into()),
            reviewed_at: Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(
                "2020-01-01T00:00:00Z".parse().unwrap(),
            )),
            reason: Some(if approved { "welcome" } else { "not now" }.into()),
            message: None,
        },
    );
    // A forged statement of what was reviewed, overwritten like the reviewer.
    approval.metadata.annotations =
        Some([(REVIEWED_TIER_ANNOTATION.to_string(), "platinum".to_string())].into());
    approval
}

fn holds(request: &APIKeyRequest, type_: &str) -> bool {
    request.status.as_ref().is_some_and(|s| {
        s.conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    })
}

#[tokio::test]
async fn an_owner_without_apikey_access_reviews_requests_in_the_product_namespace() {
    let (product_ns, consumer_ns, admin) = inbox().await;
    let (products, consumers) = (product_ns.name.as_str(), consumer_ns.name.as_str());
    let owner = as_user(OWNER).await;
    let key = request(consumers, products, "mine").await;

    // The inbox: the request, in the product's namespace, as the owner lists it.
    let pending = request_in(&owner, products, &key, "Pending").await;
    assert_eq!(pending.spec.api_key_ref.name, "mine");
    assert_eq!(pending.spec.api_key_ref.namespace, consumers);
    assert_eq!(pending.spec.api_product_ref.name, "toys");
    assert_eq!(pending.spec.plan_tier, "gold");
    assert_eq!(
        pending.spec.requested_by.as_ref().unwrap().user_id,
        "consumer"
    );
    assert!(holds(&pending, "Pending") && !holds(&pending, "Approved"));
    // ...and no access to APIKeys, in the consumer's namespace or anywhere.
    assert_forbidden(
        "the owner reading the consumer's keys",
        Api::<APIKey>::namespaced(owner.clone(), consumers)
            .list(&ListParams::default())
            .await,
    );
    assert_forbidden(
        "the owner listing keys cluster-wide",
        Api::<APIKey>::all(owner.clone())
            .list(&ListParams::default())
            .await,
    );

    // Approve, with a forged reviewer and review time: both are the webhook's.
    let created = Api::<APIKeyApproval>::namespaced(owner.clone(), products)
        .create(&PostParams::default(), &approval(&pending.name_any(), true))
        .await
        .expect("the owner approves");
    assert_eq!(created.spec.reviewed_by.as_deref(), Some(OWNER));
    assert_ne!(
        created.spec.reviewed_at.as_ref().unwrap().0.to_string(),
        "2020-01-01T00:00:00Z"
    );
    let product = Api::<APIProduct>::namespaced(admin.clone(), products)
        .get("toys")
        .await
        .unwrap();
    assert_eq!(created.annotations()[REVIEWED_TIER_ANNOTATION], "gold");
    assert_eq!(
        created.annotations().get(REVIEWED_PRODUCT_UID_ANNOTATION),
        product.metadata.uid.as_ref()
    );

    let approved = request_in(&owner, products, &key, "Approved").await;
    assert!(holds(&approved, "Approved") && !holds(&approved, "Denied"));
    let status = approved.status.as_ref().unwrap();
    assert_eq!(status.reviewed_by.as_deref(), Some(OWNER));
    assert_eq!(
        status.approval_name.as_deref(),
        Some(created.name_any().as_str())
    );
    let keys = Api::<APIKey>::namespaced(admin.clone(), consumers);
    let stored = keys.get("mine").await.unwrap();
    let review = stored
        .spec
        .approval
        .as_ref()
        .expect("the approval is on the key");
    assert!(review.approved);
    assert_eq!(review.reviewed_by.as_deref(), Some(OWNER));
    assert_eq!(review.plan_tier.as_deref(), Some("gold"));
    assert_eq!(review.product_uid, product.metadata.uid);
    assert_eq!(review.reason.as_deref(), Some("welcome"));
    eventually("both Secrets of the approved key", WAIT, || async {
        (secrets_of(&admin, consumers, "mine").await.len() == 2).then_some(())
    })
    .await;

    // A second request, denied.
    let second = request(consumers, products, "second").await;
    let waiting = request_in(&owner, products, &second, "Pending").await;
    Api::<APIKeyApproval>::namespaced(owner.clone(), products)
        .create(
            &PostParams::default(),
            &approval(&waiting.name_any(), false),
        )
        .await
        .expect("the owner denies");
    let denied = request_in(&owner, products, &second, "Denied").await;
    assert!(holds(&denied, "Denied") && !holds(&denied, "Approved"));
    assert_eq!(
        denied.status.as_ref().unwrap().reason.as_deref(),
        Some("not now")
    );
    let key = keys.get("second").await.unwrap();
    assert!(!key.spec.approval.unwrap().approved);
    assert!(secrets_of(&admin, consumers, "second").await.is_empty());

    // `kubectl get apikeyrequests -n <product-ns>` as the owner.
    let table = stdout_of(&control_plane_with_devportal().kubectl(
        Persona::Admin,
        &[
            "--as",
            OWNER,
            "--as-group",
            "system:authenticated",
            "get",
            "apikeyrequests",
            "-n",
            products,
        ],
        None,
    ));
    let header: Vec<&str> = table
        .lines()
        .next()
        .unwrap()
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        header,
        ["NAME", "PHASE", "REQUESTER", "PLAN", "KEY NAMESPACE", "AGE"],
        "{table}"
    );
    let row = table
        .lines()
        .find(|l| l.starts_with(&approved.name_any()))
        .expect(&table);
    for cell in ["Approved", "consumer", "gold", consumers] {
        assert!(row.contains(cell), "{row:?} shows {cell}");
    }
}

#[tokio::test]
async fn a_review_needs_the_approve_verb_and_cannot_be_rewritten() {
    let (product_ns, consumer_ns, admin) = inbox().await;
    let (products, consumers) = (product_ns.name.as_str(), consumer_ns.name.as_str());
    // The intruder may create reviews in the namespace (RBAC), but not approve its product.
    let role = Role {
        metadata: ObjectMeta {
            name: Some("reviews-writer".into()),
            ..ObjectMeta::default()
        },
        rules: Some(vec![PolicyRule {
            api_groups: Some(vec!["devportal.kuadrant.io".into()]),
            resources: Some(vec!["apikeyapprovals".into(), "apikeyrequests".into()]),
            verbs: vec!["get".into(), "list".into(), "create".into()],
            ..PolicyRule::default()
        }]),
    };
    Api::<Role>::namespaced(admin.clone(), products)
        .create(&PostParams::default(), &role)
        .await
        .unwrap();
    let binding = json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "reviews-writer", "namespace": products},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "reviews-writer"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": INTRUDER}],
    });
    stdout_of(&control_plane_with_devportal().kubectl(
        Persona::Admin,
        &["apply", "-f", "-"],
        Some(&binding.to_string()),
    ));
    let intruder = as_user(INTRUDER).await;
    let key = request(consumers, products, "mine").await;
    let pending = request_in(&admin, products, &key, "Pending").await;
    let reviews = Api::<APIKeyApproval>::namespaced(intruder, products);
    let refused = eventually("the intruder's binding to take effect", WAIT, || async {
        match reviews
            .create(&PostParams::default(), &approval(&pending.name_any(), true))
            .await
        {
            Err(kube::Error::Api(status))
                if status.code == 403 && status.message.contains("may not review") =>
            {
                Some(status)
            }
            _ => None,
        }
    })
    .await;
    assert!(refused.message.contains("approve"), "{}", refused.message);

    // A review of a request that does not exist is refused too.
    let owner = as_user(OWNER).await;
    let missing = Api::<APIKeyApproval>::namespaced(owner.clone(), products)
        .create(&PostParams::default(), &approval("nobody-00000000", true))
        .await;
    match missing {
        Err(kube::Error::Api(status)) => {
            assert!(status.message.contains("not found"), "{status:?}")
        }
        other => panic!("a review of a missing request: {other:?}"),
    }

    // The owner's review, which an admin can turn around only as their own review: re-stamped,
    // with the owner's kept in the history.
    let review = Api::<APIKeyApproval>::namespaced(owner, products)
        .create(&PostParams::default(), &approval(&pending.name_any(), true))
        .await
        .unwrap();
    request_in(&admin, products, &key, "Approved").await;
    let rewritten = Api::<APIKeyApproval>::namespaced(admin.clone(), products)
        .patch(
            &review.name_any(),
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approved": false}})),
        )
        .await
        .expect("an approver re-reviews by an update");
    assert_eq!(
        rewritten.spec.reviewed_by.as_deref(),
        Some(Persona::Admin.name())
    );
    assert!(
        rewritten.annotations()[devportal::names::PREVIOUS_REVIEWS_ANNOTATION].contains(OWNER),
        "the owner's review is kept"
    );

    // Deleting the key removes its request, and with it (by owner reference) its reviews.
    Api::<APIKey>::namespaced(admin.clone(), consumers)
        .delete("mine", &Default::default())
        .await
        .unwrap();
    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), products);
    let approvals = Api::<APIKeyApproval>::namespaced(admin.clone(), products);
    eventually(
        "the request and its review to go with the key",
        WAIT,
        || async {
            let gone = requests.get_opt(&pending.name_any()).await.ok()?.is_none()
                && approvals.get_opt(&review.name_any()).await.ok()?.is_none();
            gone.then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn requests_without_their_key_are_swept() {
    let (product_ns, consumer_ns, admin) = inbox().await;
    let (products, consumers) = (product_ns.name.as_str(), consumer_ns.name.as_str());
    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), products);

    // A key that went without its finalizer's cleanup (an admin forcing the finalizer off).
    let key = request(consumers, products, "forced").await;
    let pending = request_in(&admin, products, &key, "Pending").await;
    let keys = Api::<APIKey>::namespaced(admin.clone(), consumers);
    keys.patch(
        "forced",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("the admin forces the finalizer off");
    keys.delete("forced", &Default::default()).await.unwrap();

    // A request nobody's key mirrors (planted, or left from a restored backup).
    let mut planted = pending.clone();
    planted.metadata = ObjectMeta {
        name: Some("planted-00000000".into()),
        labels: Some([(APIKEY_UID_LABEL.to_string(), "no-such-uid".to_string())].into()),
        ..ObjectMeta::default()
    };
    planted.status = None;
    planted.spec.api_key_ref.name = "planted".into();
    requests
        .create(&PostParams::default(), &planted)
        .await
        .expect("the admin plants a request");

    eventually("both requests to be swept", WAIT, || async {
        let gone = requests.get_opt(&pending.name_any()).await.ok()?.is_none()
            && requests.get_opt("planted-00000000").await.ok()?.is_none();
        gone.then_some(())
    })
    .await;
}

/// An automatically approved key's request reaches the owner's inbox (through the inbox's second
/// lane, once the reconciles pause), Approved and with no Event of its own; someone who rewrites
/// its spec or status sees both put back, while the labels they added stay.
#[tokio::test]
async fn automatic_requests_reach_the_inbox_and_edits_are_put_back() {
    let cp = control_plane_with_devportal();
    let admin = cp.client(Persona::Admin).await;
    let product_ns = TestNamespace::new("inbox-auto").await;
    fixtures::published_product(&admin, &admin, &product_ns.name, ApprovalMode::Automatic).await;
    fixtures::product_ready(&admin, &product_ns.name, WAIT).await;
    let key = request(&product_ns.name, &product_ns.name, "auto").await;
    let written = request_in(&admin, &product_ns.name, &key, "Approved").await;
    assert!(holds(&written, "Approved"), "{:?}", written.status);
    assert_eq!(written.spec.api_key_ref.name, "auto");

    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), &product_ns.name);
    let name = written.name_any();
    requests
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"labels": {"team": "reviewers"}},
                "spec": {"useCase": "rewritten by someone else"},
            })),
        )
        .await
        .expect("the admin edits the request");
    requests
        .patch_status(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Denied", "conditions": []}})),
        )
        .await
        .expect("the admin edits the request's status");
    let restored = eventually("the request to be put back", WAIT, || async {
        let now = requests.get(&name).await.ok()?;
        (now.spec == written.spec && holds(&now, "Approved")).then_some(now)
    })
    .await;
    assert_eq!(
        restored.labels().get("team").map(String::as_str),
        Some("reviewers"),
        "labels others add stay"
    );
    assert_eq!(
        restored.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Approved")
    );
    let events = Api::<Event>::namespaced(admin, &product_ns.name)
        .list(&ListParams::default().fields(&format!("involvedObject.name={name}")))
        .await
        .expect("events listed");
    assert!(
        events.items.is_empty(),
        "an automatic approval needs no owner, so its request gets no Event: {:?}",
        events.items.iter().map(|e| &e.reason).collect::<Vec<_>>()
    );
}
