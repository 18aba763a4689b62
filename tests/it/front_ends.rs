//! Portal front ends through the real API server, with devportal's webhook and controller running:
//! a ServiceAccount with manifests/rbac/portal-frontend.yaml's API rights that acts as itself and
//! names the user (the Kuadrant Backstage plugin's way) is believed exactly for the users it may
//! `impersonate`; one that impersonates the user (Impersonate-User headers) is simply that user.
//! And automatic approvals are recorded, so a product switched to manual keeps the keys it
//! granted. See docs/front-ends.md and docs/security.md.

use crate::support;

use std::time::Duration;

use devportal::names::{AUTOMATIC_REVIEWER, REQUESTED_VIA_ANNOTATION};
use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode, RequestedBy};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::front_end::{
    authorizer_says, bind, create_with_warnings, front_end, impersonating, may_impersonate,
};
use support::secrets::secrets_of;
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(30);
const ALICE: &str = "user:default/alice";

async fn admin() -> Client {
    control_plane_with_devportal().client(Persona::Admin).await
}

/// The plugin's request: a key for `toys` at gold naming `user_id` with `email`.
fn plugin_request(name: &str, user_id: &str, email: &str) -> APIKey {
    let mut key = fixtures::key(name, "toys", "gold");
    key.spec.requested_by = Some(RequestedBy {
        user_id: user_id.into(),
        email: Some(email.into()),
    });
    key
}

fn requested_via(key: &APIKey) -> Option<&str> {
    key.annotations()
        .get(REQUESTED_VIA_ANNOTATION)
        .map(String::as_str)
}

#[tokio::test]
async fn a_front_end_that_may_impersonate_a_user_requests_keys_for_them() {
    let admin = admin().await;
    let ns = TestNamespace::new("frontend-b").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    let (username, config) = front_end(&admin, &ns.name, "portal").await;
    may_impersonate(&admin, &ns.name, "portal", &[ALICE], &[]).await;
    authorizer_says(&admin, &username, impersonating(ALICE)).await;
    let client = Client::try_from(config).unwrap();

    // What the plugin sends: the Backstage user, and "unknown" when it knows no e-mail.
    let (stored, warnings) = create_with_warnings(
        &client,
        &ns.name,
        &plugin_request("alices", ALICE, "unknown"),
    )
    .await;
    assert_eq!(
        stored.spec.requested_by,
        Some(RequestedBy {
            user_id: ALICE.into(),
            email: Some("unknown".into())
        }),
        "the user and e-mail the trusted front end gave are kept"
    );
    assert_eq!(requested_via(&stored), Some(username.as_str()));
    // Only the expiry devportal sets on a key without one (--max-key-lifetime) is announced.
    assert!(
        warnings
            .iter()
            .all(|w| w.contains("spec.expiresAt was set to")),
        "{warnings:?}"
    );

    // A user it may not impersonate: the front end itself is recorded.
    let (bobs, warnings) = create_with_warnings(
        &client,
        &ns.name,
        &plugin_request("bobs", "user:default/bob", "unknown@example.com"),
    )
    .await;
    assert_eq!(bobs.spec.requested_by.as_ref().unwrap().user_id, username);
    assert_eq!(requested_via(&bobs), None);
    assert!(
        warnings.join("\n").contains("user:default/bob"),
        "{warnings:?}"
    );

    // The plugin edits its user's Pending request as the user would.
    let keys = Api::<APIKey>::namespaced(client.clone(), &ns.name);
    let edited = keys
        .patch(
            "alices",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"useCase": "load tests", "planTier": "silver"}})),
        )
        .await
        .expect("the front end edits alice's Pending request");
    assert_eq!(edited.spec.plan_tier, "silver");

    // Nor can the front end rewrite who it acted through.
    let rewritten = keys
        .patch(
            "alices",
            &PatchParams::default(),
            &Patch::Merge(
                json!({"metadata": {"annotations": {REQUESTED_VIA_ANNOTATION: "nobody"}}}),
            ),
        )
        .await
        .expect("the patch is admitted, the annotation restored");
    assert_eq!(requested_via(&rewritten), Some(username.as_str()));
}

#[tokio::test]
async fn a_front_end_without_impersonate_cannot_name_another_requester() {
    let admin = admin().await;
    let ns = TestNamespace::new("frontend-plain").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    // The shipped API rights, and no impersonate at all.
    let (username, config) = front_end(&admin, &ns.name, "portal").await;
    let client = Client::try_from(config).unwrap();

    let mut forged = plugin_request("alices", ALICE, "alice@example.com");
    forged.metadata.annotations =
        Some([(REQUESTED_VIA_ANNOTATION.into(), "someone".into())].into());
    let (stored, warnings) = create_with_warnings(&client, &ns.name, &forged).await;
    let requester = stored.spec.requested_by.clone().unwrap();
    assert_eq!(requester.user_id, username, "overwritten with the caller");
    assert_eq!(requested_via(&stored), None, "and no front end recorded");
    let warnings = warnings.join("\n");
    assert!(
        warnings.contains("was replaced with your username") && warnings.contains(ALICE),
        "{warnings}"
    );

    // A consumer naming alice is the consumer, whatever the front end may do.
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let (stored, _) = create_with_warnings(
        &consumer,
        &ns.name,
        &plugin_request("consumers", ALICE, "alice@example.com"),
    )
    .await;
    assert_eq!(
        stored.spec.requested_by.unwrap().user_id,
        Persona::Consumer.name()
    );
}

#[tokio::test]
async fn a_front_end_impersonating_a_user_is_that_user() {
    let admin = admin().await;
    let ns = TestNamespace::new("frontend-a").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    let (username, mut config) = front_end(&admin, &ns.name, "portal").await;
    may_impersonate(&admin, &ns.name, "portal", &[ALICE], &["portal-users"]).await;
    authorizer_says(&admin, &username, impersonating(ALICE)).await;
    // Alice may request keys here, as any consumer.
    bind(
        &admin,
        &ns.name,
        "devportal-api-consumer",
        json!({"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": ALICE}),
    )
    .await;
    config.auth_info.impersonate_groups = Some(vec!["portal-users".into()]);
    // A user outside the grant: the API server refuses before devportal sees anything.
    let mut as_bob = config.clone();
    as_bob.auth_info.impersonate = Some("user:default/bob".into());
    support::access::assert_forbidden(
        "impersonating a user outside the grant",
        Api::<APIKey>::namespaced(Client::try_from(as_bob).unwrap(), &ns.name)
            .create(
                &PostParams::default(),
                &fixtures::key("bobs", "toys", "gold"),
            )
            .await,
    );
    config.auth_info.impersonate = Some(ALICE.into());
    let as_alice = Api::<APIKey>::namespaced(Client::try_from(config).unwrap(), &ns.name);
    let created = eventually("alice's request through the front end", WAIT, || async {
        as_alice
            .create(
                &PostParams::default(),
                &fixtures::key("mine", "toys", "gold"),
            )
            .await
            .ok()
    })
    .await;
    assert_eq!(created.spec.requested_by.as_ref().unwrap().user_id, ALICE);
    assert_eq!(
        requested_via(&created),
        None,
        "the API server made the request as alice; nothing was delegated"
    );
}

#[tokio::test]
async fn automatic_approvals_outlive_a_switch_to_manual() {
    let admin = admin().await;
    let ns = TestNamespace::new("automatic").await;
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Automatic).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let keys = Api::<APIKey>::namespaced(consumer, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("granted", "toys", "gold"),
    )
    .await
    .expect("key requested");
    let products = Api::<APIProduct>::namespaced(owner, &ns.name);
    let uid = products.get("toys").await.unwrap().uid();
    let granted = eventually("the automatic approval to be recorded", WAIT, || async {
        let key = keys.get("granted").await.ok()?;
        let approval = key.spec.approval.clone()?;
        (key.status.as_ref()?.phase == Some(APIKeyPhase::Approved)).then_some(approval)
    })
    .await;
    assert!(granted.approved);
    assert_eq!(granted.reviewed_by.as_deref(), Some(AUTOMATIC_REVIEWER));
    assert!(granted.reviewed_at.is_some());
    assert_eq!(granted.product_uid, uid);
    assert_eq!(granted.plan_tier.as_deref(), Some("gold"));
    eventually("both Secrets of the granted key", WAIT, || async {
        (secrets_of(&admin, &ns.name, "granted").await.len() == 2).then_some(())
    })
    .await;

    products
        .patch(
            "toys",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approvalMode": "manual"}})),
        )
        .await
        .expect("the owner switches to manual");
    // The webhook's product cache follows the switch within moments; a key created before it
    // does is still approved automatically (and keeps it). A dry-run create (which reserves
    // nothing) shows when the webhook has it.
    eventually("the webhook to see the product as manual", WAIT, || async {
        let probe = keys
            .create(
                &PostParams {
                    dry_run: true,
                    ..PostParams::default()
                },
                &fixtures::key("probe", "toys", "gold"),
            )
            .await
            .ok()?;
        probe.spec.approval.is_none().then_some(())
    })
    .await;
    keys.create(
        &PostParams::default(),
        &fixtures::key("later", "toys", "gold"),
    )
    .await
    .expect("key requested");
    eventually("the new request to wait for review", WAIT, || async {
        let key = keys.get("later").await.ok()?;
        (key.status?.phase == Some(APIKeyPhase::Pending)).then_some(())
    })
    .await;
    assert!(
        keys.get("later").await.unwrap().spec.approval.is_none(),
        "nothing approved the new request"
    );
    let kept = keys.get("granted").await.unwrap();
    assert_eq!(kept.status.unwrap().phase, Some(APIKeyPhase::Approved));
    assert_eq!(kept.spec.approval, Some(granted), "the record stands");
    assert_eq!(
        secrets_of(&admin, &ns.name, "granted").await.len(),
        2,
        "the granted key keeps its Secrets"
    );
}

#[tokio::test]
async fn nobody_but_the_controller_approves_as_the_automatic_reviewer() {
    let admin = admin().await;
    let ns = TestNamespace::new("not-automatic").await;
    let owner = control_plane_with_devportal().client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let mine = Api::<APIKey>::namespaced(consumer, &ns.name);
    mine.create(
        &PostParams::default(),
        &fixtures::key("mine", "toys", "gold"),
    )
    .await
    .expect("key requested");
    let automatic = Patch::Merge(json!({"spec": {"approval": {
        "approved": true, "reviewedBy": AUTOMATIC_REVIEWER
    }}}));
    // The consumer passing their own request off as approved automatically.
    support::access::assert_forbidden(
        "a consumer's automatic approval",
        mine.patch("mine", &PatchParams::default(), &automatic)
            .await,
    );
    // An owner may approve, but under their own name.
    let approved = Api::<APIKey>::namespaced(owner, &ns.name)
        .patch("mine", &PatchParams::default(), &automatic)
        .await
        .expect("the owner approves");
    assert_eq!(
        approved.spec.approval.unwrap().reviewed_by.as_deref(),
        Some(Persona::Owner.name())
    );
}
