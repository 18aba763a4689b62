//! Issue 27, items 4 and 5, and issue 28's console denial, through the real API server with
//! devportal's webhook and controller running, each attack made as the persona who would try it:
//!
//! - a denial in the same second as the approval is applied (reviews are ordered strictly);
//! - revoking a key on the key itself and then clearing the review does not bring back the older
//!   APIKeyApproval;
//! - an owner denies an active key by updating its APIKeyApproval, exactly as the OpenShift console
//!   plugin does, and someone who may not approve the product cannot;
//! - the owner of one product cannot retarget it onto another product's route;
//! - the shipped portal front end (writes APIProducts, approves nothing) cannot switch a product
//!   to `automatic` or create one.

mod support;

use std::time::Duration;

use devportal::names::approval_condition::VALID;
use devportal::names::approval_reason::{APPLIED, SUPERSEDED};
use devportal::names::{
    APIKEY_UID_LABEL, PREVIOUS_REVIEWS_ANNOTATION, REVIEW_WITHDRAWN_ANNOTATION,
};
use devportal::resources::{
    APIKey, APIKeyApproval, APIKeyPhase, APIKeyRequest, APIProduct, ApprovalMode, PreviousReview,
};
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config, ResourceExt};
use serde_json::json;
use support::secrets::secrets_of;
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(60);

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

/// A namespace (owner, consumers bound) with the manual product `toys`, Ready; and the admin.
async fn manual_product(prefix: &str) -> (TestNamespace, Client) {
    let cp = control_plane_with_devportal();
    let ns = TestNamespace::new(prefix).await;
    let admin = cp.client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    (ns, admin)
}

/// The consumer requests `name` for `toys` at gold; returns the key and its APIKeyRequest's name.
async fn requested(ns: &str, name: &str) -> (APIKey, String) {
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let key = Api::<APIKey>::namespaced(consumer, ns)
        .create(&PostParams::default(), &fixtures::key(name, "toys", "gold"))
        .await
        .expect("the consumer requests a key");
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let requests = Api::<APIKeyRequest>::namespaced(admin, ns);
    let uid = key.uid().unwrap();
    let request = eventually(&format!("the request of {name}"), WAIT, || async {
        let listed = requests.list(&ListParams::default()).await.ok()?;
        listed
            .items
            .into_iter()
            .find(|r| r.labels().get(APIKEY_UID_LABEL) == Some(&uid))
    })
    .await;
    (key, request.name_any())
}

/// An APIKeyApproval as the OpenShift console plugin writes it (`handleAPIKeyApprovalOrDenial`).
fn console_review(name: &str, request: &str, approved: bool, reviewer: &str) -> APIKeyApproval {
    serde_json::from_value(json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyApproval",
        "metadata": {"name": name},
        "spec": console_spec(request, approved, reviewer)
    }))
    .unwrap()
}

/// The spec the console sends for a decision (`reviewedAt: new Date().toISOString()`).
fn console_spec(request: &str, approved: bool, reviewer: &str) -> serde_json::Value {
    let now = k8s_openapi::jiff::Timestamp::now();
    json!({
        "apiKeyRequestRef": {"name": request}, "approved": approved,
        "reviewedBy": reviewer,
        "reviewedAt": now.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        "reason": if approved { "ApprovedByOwner" } else { "DeniedByOwner" },
        "message": if approved { "Approved" } else { "Denied" }
    })
}

/// Waits until the key `ns/name` is in `phase`.
async fn phase(admin: &Client, ns: &str, name: &str, phase: APIKeyPhase) -> APIKey {
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns);
    eventually(&format!("{name} to be {phase:?}"), WAIT, || async {
        let key = keys.get(name).await.ok()?;
        (key.status.as_ref()?.phase == Some(phase)).then_some(key)
    })
    .await
}

/// How many enforcement Secrets the key `ns/name` has.
async fn enforced(admin: &Client, ns: &str, name: &str) -> usize {
    secrets_of(admin, ns, name)
        .await
        .iter()
        .filter(|(role, _)| role == "enforcement")
        .count()
}

/// Waits until the key `ns/name` is Approved and enforced.
async fn active(admin: &Client, ns: &str, name: &str) {
    phase(admin, ns, name, APIKeyPhase::Approved).await;
    eventually("the enforcement Secret", WAIT, || async {
        (enforced(admin, ns, name).await == 1).then_some(())
    })
    .await;
}

/// Holds for a few seconds: the key `ns/name` stays in `wanted` and has no enforcement Secret.
async fn stays_unenforced(admin: &Client, ns: &str, name: &str, wanted: APIKeyPhase) {
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns);
    eventually("the enforcement Secret to be gone", WAIT, || async {
        (enforced(admin, ns, name).await == 0).then_some(())
    })
    .await;
    for _ in 0..10 {
        let key = keys.get(name).await.unwrap();
        assert_eq!(
            key.status.as_ref().and_then(|s| s.phase),
            Some(wanted),
            "{:?}",
            key.spec.approval
        );
        assert_eq!(
            enforced(admin, ns, name).await,
            0,
            "the key is not enforced"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Waits until the APIKeyApproval `ns/name` says, for its current generation, `Valid` with
/// `status` and `reason`; returns its message.
async fn valid(admin: &Client, ns: &str, name: &str, status: &str, reason: &str) -> String {
    let approvals = Api::<APIKeyApproval>::namespaced(admin.clone(), ns);
    eventually(
        &format!("APIKeyApproval {name} to say Valid={status} {reason}"),
        WAIT,
        || async {
            let approval = approvals.get(name).await.ok()?;
            let current = approval.status.as_ref()?;
            let condition = current.conditions.iter().find(|c| c.type_ == VALID)?;
            (current.observed_generation == approval.metadata.generation
                && condition.status == status
                && condition.reason == reason)
                .then(|| condition.message.clone())
        },
    )
    .await
}

/// The message of a refusal.
fn refusal<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) -> String {
    match result {
        Err(kube::Error::Api(status)) => status.message,
        other => panic!("{what}: expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn approve_then_deny_within_a_second_leaves_the_key_denied_and_unenforced() {
    let (ns, admin) = manual_product("w3-same-second").await;
    let ns = ns.name.as_str();
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    let approvals = Api::<APIKeyApproval>::namespaced(owner.clone(), ns);

    // Two APIKeyApprovals back to back; the denial's name sorts first, so the earlier order
    // (whole seconds, then creation time, then name) took the approval.
    let (_, request) = requested(ns, "inbox").await;
    approvals
        .create(
            &PostParams::default(),
            &console_review("b-approve", &request, true, "owner"),
        )
        .await
        .expect("the owner approves");
    approvals
        .create(
            &PostParams::default(),
            &console_review("a-deny", &request, false, "owner"),
        )
        .await
        .expect("and denies at once");
    let denied = phase(&admin, ns, "inbox", APIKeyPhase::Denied).await;
    let review = denied.spec.approval.unwrap();
    assert_eq!(review.reviewed_by.as_deref(), Some("owner"));
    stays_unenforced(&admin, ns, "inbox", APIKeyPhase::Denied).await;
    valid(&admin, ns, "a-deny", "True", APPLIED).await;
    let superseded = valid(&admin, ns, "b-approve", "False", SUPERSEDED).await;
    assert!(superseded.contains("APIKeyApproval a-deny"), "{superseded}");

    // Approved on the key itself, then denied in the inbox within the same second.
    let (_, request) = requested(ns, "direct").await;
    let keys = Api::<APIKey>::namespaced(owner.clone(), ns);
    keys.patch(
        "direct",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"approval": {"approved": true}}})),
    )
    .await
    .expect("the owner approves on the key");
    approvals
        .create(
            &PostParams::default(),
            &console_review("direct-deny", &request, false, "owner"),
        )
        .await
        .expect("and denies in the inbox");
    let denied = phase(&admin, ns, "direct", APIKeyPhase::Denied).await;
    let stamped = serde_json::to_value(&denied.spec.approval.unwrap().reviewed_at).unwrap();
    assert!(
        stamped.as_str().unwrap().contains('.'),
        "reviews are stamped below the second: {stamped}"
    );
    stays_unenforced(&admin, ns, "direct", APIKeyPhase::Denied).await;
    valid(&admin, ns, "direct-deny", "True", APPLIED).await;
}

#[tokio::test]
async fn revoking_on_the_key_then_clearing_the_review_does_not_resurrect_the_inbox_approval() {
    let (ns, admin) = manual_product("w3-withdraw").await;
    let ns = ns.name.as_str();
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    let (_, request) = requested(ns, "mine").await;
    Api::<APIKeyApproval>::namespaced(owner.clone(), ns)
        .create(
            &PostParams::default(),
            &console_review("mine-approval", &request, true, "owner"),
        )
        .await
        .expect("the owner approves in the inbox");
    active(&admin, ns, "mine").await;

    // Revoked on the key, then the review cleared.
    let keys = Api::<APIKey>::namespaced(owner.clone(), ns);
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"approval": {"approved": false, "reason": "revoked"}}})),
    )
    .await
    .expect("the owner revokes on the key");
    phase(&admin, ns, "mine", APIKeyPhase::Denied).await;
    let cleared = keys
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": null}})),
        )
        .await
        .expect("the owner clears the key's review");
    assert!(cleared.spec.approval.is_none());
    let withdrawn = cleared.annotations()[REVIEW_WITHDRAWN_ANNOTATION].clone();

    // The older inbox approval stays superseded: the key waits for a new review, unenforced.
    phase(&admin, ns, "mine", APIKeyPhase::Pending).await;
    stays_unenforced(&admin, ns, "mine", APIKeyPhase::Pending).await;
    let message = valid(&admin, ns, "mine-approval", "False", SUPERSEDED).await;
    assert!(message.contains("withdrawn"), "{message}");

    // The requester cannot erase the record to bring the approval back.
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let kept = Api::<APIKey>::namespaced(consumer, ns)
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {REVIEW_WITHDRAWN_ANNOTATION: null}}}),
            ),
        )
        .await
        .expect("the webhook restores the annotation");
    assert_eq!(kept.annotations()[REVIEW_WITHDRAWN_ANNOTATION], withdrawn);
    stays_unenforced(&admin, ns, "mine", APIKeyPhase::Pending).await;
}

#[tokio::test]
async fn an_owner_denies_an_active_key_by_updating_its_approval_as_the_console_does() {
    let (ns, admin) = manual_product("w3-console").await;
    let ns = ns.name.as_str();
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    let approvals = Api::<APIKeyApproval>::namespaced(owner.clone(), ns);
    let (_, request) = requested(ns, "mine").await;
    // Approve: a new APIKeyApproval `<request>-approval`.
    let created = approvals
        .create(
            &PostParams::default(),
            &console_review(&format!("{request}-approval"), &request, true, "owner"),
        )
        .await
        .expect("the owner approves");
    active(&admin, ns, "mine").await;
    valid(&admin, ns, &created.name_any(), "True", APPLIED).await;

    // Deny the active key: list the namespace's approvals, take the request's, send it back with
    // the new spec (k8sUpdate: a PUT of the whole object).
    let listed = approvals.list(&ListParams::default()).await.unwrap();
    let mut existing = listed
        .items
        .into_iter()
        .find(|a| a.spec.api_key_request_ref.name == request)
        .expect("the approval of the request");
    existing.spec = serde_json::from_value(console_spec(&request, false, "owner")).unwrap();
    let updated = approvals
        .replace(&existing.name_any(), &PostParams::default(), &existing)
        .await
        .expect("the owner's update is admitted");
    assert_eq!(updated.spec.reviewed_by.as_deref(), Some("owner"));
    assert!(updated.spec.reviewed_at.as_ref().unwrap().0 > created.spec.reviewed_at.unwrap().0);
    let history: Vec<PreviousReview> =
        serde_json::from_str(&updated.annotations()[PREVIOUS_REVIEWS_ANNOTATION]).unwrap();
    assert_eq!(history.len(), 1);
    assert!(history[0].approved, "the approval it replaced is kept");
    assert_eq!(history[0].reason.as_deref(), Some("ApprovedByOwner"));

    let denied = phase(&admin, ns, "mine", APIKeyPhase::Denied).await;
    assert_eq!(
        denied.spec.approval.unwrap().reason.as_deref(),
        Some("DeniedByOwner: Denied")
    );
    stays_unenforced(&admin, ns, "mine", APIKeyPhase::Denied).await;
    let message = valid(&admin, ns, &updated.name_any(), "True", APPLIED).await;
    assert!(message.contains("denied"), "{message}");
}

#[tokio::test]
async fn someone_without_approve_cannot_update_an_approval() {
    let (ns, admin) = manual_product("w3-no-approve").await;
    let ns = ns.name.as_str();
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    let (_, request) = requested(ns, "mine").await;
    let name = format!("{request}-approval");
    Api::<APIKeyApproval>::namespaced(owner, ns)
        .create(
            &PostParams::default(),
            &console_review(&name, &request, true, "owner"),
        )
        .await
        .expect("the owner approves");
    active(&admin, ns, "mine").await;

    // A team member who may edit the namespace's approvals, but not approve `toys`.
    let intruder = "w3-approval-editor";
    grant(
        &admin,
        ns,
        intruder,
        vec![rule(
            "apikeyapprovals",
            &[],
            &["get", "list", "update", "patch"],
        )],
    )
    .await;
    let approvals = Api::<APIKeyApproval>::namespaced(as_user(intruder).await, ns);
    let mut existing = eventually("the editor's role to take effect", WAIT, || async {
        approvals.get(&name).await.ok()
    })
    .await;
    existing.spec = serde_json::from_value(console_spec(&request, false, intruder)).unwrap();
    let message = refusal(
        "an update by someone who may not approve",
        approvals
            .replace(&name, &PostParams::default(), &existing)
            .await,
    );
    assert!(
        message.contains(&format!(
            "user \"{intruder}\" may not review requests for APIProduct {ns}/toys"
        )),
        "{message}"
    );
    let message = refusal(
        "a patch by someone who may not approve",
        approvals
            .patch(
                &name,
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"approved": false}})),
            )
            .await,
    );
    assert!(message.contains("may not review requests"), "{message}");
    // Nothing changed: the approval, the key, its enforcement.
    let kept = approvals.get(&name).await.unwrap();
    assert!(kept.spec.approved);
    assert_eq!(kept.spec.reviewed_by.as_deref(), Some("owner"));
    phase(&admin, ns, "mine", APIKeyPhase::Approved).await;
    assert_eq!(enforced(&admin, ns, "mine").await, 1);
}

/// A rule on `resource` of devportal's group, for `names` (all when empty).
fn rule(resource: &str, names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec!["devportal.kuadrant.io".into()]),
        resources: Some(vec![resource.into()]),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// A Role of `rules` in `ns`, bound to `user`.
async fn grant(admin: &Client, ns: &str, user: &str, rules: Vec<PolicyRule>) {
    let role = Role {
        metadata: ObjectMeta {
            name: Some(user.into()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
    };
    Api::<Role>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &role)
        .await
        .expect("role created");
    let binding = RoleBinding {
        metadata: ObjectMeta {
            name: Some(user.into()),
            ..ObjectMeta::default()
        },
        role_ref: RoleRef {
            api_group: "rbac.authorization.k8s.io".into(),
            kind: "Role".into(),
            name: user.into(),
        },
        subjects: Some(vec![Subject {
            api_group: Some("rbac.authorization.k8s.io".into()),
            kind: "User".into(),
            name: user.into(),
            namespace: None,
        }]),
    };
    Api::<RoleBinding>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &binding)
        .await
        .expect("binding created");
}

#[tokio::test]
async fn the_owner_of_one_product_cannot_retarget_it_onto_anothers_route() {
    let (ns, admin) = manual_product("w3-retarget").await;
    let ns = ns.name.as_str();
    // A second exposed route, and the product `games` on it, owned by `games-owner` alone
    // (a per-product Role with resourceNames, as manifests/rbac/personas.yaml suggests).
    Api::<devportal::resources::gateway::HTTPRoute>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &fixtures::route("arcade"))
        .await
        .expect("route created");
    let mut games = fixtures::product("games", "arcade");
    games.spec.approval_mode = ApprovalMode::Manual;
    Api::<APIProduct>::namespaced(admin.clone(), ns)
        .create(&PostParams::default(), &games)
        .await
        .expect("games created");
    let games_owner = "w3-games-owner";
    grant(
        &admin,
        ns,
        games_owner,
        vec![rule(
            "apiproducts",
            &["games"],
            &["get", "update", "patch", "approve"],
        )],
    )
    .await;
    let products = Api::<APIProduct>::namespaced(as_user(games_owner).await, ns);
    eventually("the games owner's role to take effect", WAIT, || async {
        products
            .patch(
                "games",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"description": "Arcade games"}})),
            )
            .await
            .ok()
    })
    .await;

    // Onto toys' route: toys' labels, tier and hostname, reviewed by nobody who may approve toys.
    let message = refusal(
        "retargeting games onto toys' route",
        products
            .patch(
                "games",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"targetRef": {"name": "toystore"}}})),
            )
            .await,
    );
    assert!(
        message.contains(&format!(
            "HTTPRoute \"toystore\" is already the target of APIProduct {ns}/toys"
        )) && message.contains("user \"w3-games-owner\" may not"),
        "{message}"
    );
    let kept = Api::<APIProduct>::namespaced(admin, ns)
        .get("games")
        .await
        .unwrap();
    assert_eq!(kept.spec.target_ref.name, "arcade");
}

#[tokio::test]
async fn the_portal_front_end_cannot_switch_a_product_to_automatic_or_create_an_automatic_one() {
    let (ns, admin) = manual_product("w3-front-end").await;
    let ns = ns.name.as_str();
    let (plugin, username) = support::portal::shipped_plugin(&admin).await;
    let products = Api::<APIProduct>::namespaced(plugin.client.clone(), ns);

    let message = refusal(
        "the front end switching toys to automatic",
        products
            .patch(
                "toys",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"approvalMode": "automatic"}})),
            )
            .await,
    );
    assert!(
        message.contains(&format!(
            "user \"{username}\" may not set approvalMode: automatic of APIProduct {ns}/toys"
        )) && message.contains("verb \"approve\""),
        "{message}"
    );
    let mut automatic = fixtures::product("free-for-all", "toystore");
    automatic.spec.approval_mode = ApprovalMode::Automatic;
    let message = refusal(
        "the front end creating an automatic product",
        products.create(&PostParams::default(), &automatic).await,
    );
    assert!(
        message.contains(&format!(
            "may not set spec.targetRef (HTTPRoute \"toystore\") of APIProduct {ns}/free-for-all"
        )),
        "{message}"
    );
    // The front end still edits what approves nothing.
    products
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"description": "Toys for everyone"}})),
        )
        .await
        .expect("the front end edits a description");
    let toys = Api::<APIProduct>::namespaced(admin.clone(), ns)
        .get("toys")
        .await
        .unwrap();
    assert_eq!(toys.spec.approval_mode, ApprovalMode::Manual);
    assert!(
        Api::<APIProduct>::namespaced(admin, ns)
            .get_opt("free-for-all")
            .await
            .unwrap()
            .is_none()
    );
}
