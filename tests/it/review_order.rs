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

use crate::support;

use devportal::names::approval_reason::{APPLIED, SUPERSEDED};
use devportal::names::{PREVIOUS_REVIEWS_ANNOTATION, REVIEW_WITHDRAWN_ANNOTATION};
use devportal::resources::{
    APIKey, APIKeyApproval, APIKeyPhase, APIProduct, ApprovalMode, PreviousReview,
};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use support::reviews::{
    WAIT, active, as_user, console_review, console_spec, enforced, grant, manual_product, phase,
    refusal, requested, rule, stays_unenforced, valid,
};
use support::{Persona, control_plane_with_devportal, eventually, fixtures};

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
