//! Attacks on what the API server stores and shows, performed through the real kube-apiserver as
//! the persona who would try them: control and bidirectional-override characters in free text,
//! oversized fields, and APIKey names too long for a naive Event name. See docs/security.md.

use crate::support;

use std::time::Duration;

use devportal::resources::{APIKey, APIProduct, ApprovalMode, RequestedBy};
use k8s_openapi::api::events::v1::Event;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client, ResourceExt};
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(30);

async fn client(persona: Persona) -> Client {
    control_plane_with_devportal().client(persona).await
}

/// A namespace with the usual automatic product `toys`, returned once its plans are discovered
/// (the admission webhook admits keys only for discovered tiers).
async fn published_and_discovered(prefix: &str) -> (TestNamespace, Client, Api<APIProduct>) {
    control_plane_with_devportal();
    let ns = TestNamespace::new(prefix).await;
    let admin = client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    (ns, admin, products)
}

/// The API server's refusal of `product`, created as the owner.
async fn refused_product(ns: &str, product: APIProduct) -> String {
    let owner = client(Persona::Owner).await;
    match Api::<APIProduct>::namespaced(owner, ns)
        .create(&PostParams::default(), &product)
        .await
    {
        Ok(_) => panic!("the API server stored {:?}", product.spec),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

#[tokio::test]
async fn an_owner_cannot_store_control_or_bidi_characters_in_a_product() {
    control_plane_with_devportal();
    let ns = TestNamespace::new("ctl-chars").await;
    let admin = client(Persona::Admin).await;
    fixtures::platform(
        &admin,
        &ns.name,
        fixtures::plan_policy("plans", "route"),
        fixtures::auth_policy("auth", "route"),
    )
    .await;

    let mut bell = fixtures::product("bell", "route");
    bell.spec.display_name = "Toys\u{7}\u{1b}[2J".into();
    let message = refused_product(&ns.name, bell).await;
    assert!(message.contains("displayName"), "{message}");

    let mut bidi = fixtures::product("bidi", "route");
    bidi.spec.description = Some("harmless \u{202E}gnp.exe".into());
    let message = refused_product(&ns.name, bidi).await;
    assert!(message.contains("description"), "{message}");

    // Line breaks stay allowed where text has lines.
    let mut lines = fixtures::product("lines", "route");
    lines.spec.description = Some("First line.\nSecond line.\tIndented.".into());
    Api::<APIProduct>::namespaced(client(Persona::Owner).await, &ns.name)
        .create(&PostParams::default(), &lines)
        .await
        .expect("multi-line descriptions are fine");
}

#[tokio::test]
async fn an_owner_cannot_store_an_oversized_product() {
    control_plane_with_devportal();
    let ns = TestNamespace::new("big-product").await;
    let admin = client(Persona::Admin).await;
    fixtures::platform(
        &admin,
        &ns.name,
        fixtures::plan_policy("plans", "route"),
        fixtures::auth_policy("auth", "route"),
    )
    .await;
    let mut long = fixtures::product("long", "route");
    long.spec.description = Some("x".repeat(1024 * 1024));
    let message = refused_product(&ns.name, long).await;
    assert!(message.contains("description"), "{message}");

    let mut tags = fixtures::product("tags", "route");
    tags.spec.tags = (0..1000).map(|i| format!("tag-{i}")).collect();
    let message = refused_product(&ns.name, tags).await;
    assert!(message.contains("tags"), "{message}");
}

#[tokio::test]
async fn a_consumer_cannot_store_an_oversized_or_escaping_use_case() {
    control_plane_with_devportal();
    let ns = TestNamespace::new("big-key").await;
    let admin = client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    for (name, use_case) in [
        ("huge", "y".repeat(1024 * 1024)),
        (
            "escape",
            "please \u{1b}]8;;http://evil/\u{7}approve".to_string(),
        ),
    ] {
        let mut key = fixtures::key(name, "toys", "gold");
        key.spec.use_case = Some(use_case);
        match keys.create(&PostParams::default(), &key).await {
            Ok(_) => panic!("the API server stored key {name}"),
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422, "{status:?}");
                assert!(status.message.contains("useCase"), "{}", status.message);
            }
            Err(other) => panic!("unexpected error: {other}"),
        }
    }
}

#[tokio::test]
async fn a_key_with_a_253_character_name_still_leaves_an_event() {
    let (ns, admin, _) = published_and_discovered("long-name").await;
    let name = "k-".repeat(126) + "z";
    assert_eq!(name.len(), 253);
    let mut key = fixtures::key(&name, "toys", "gold");
    key.spec.requested_by = Some(RequestedBy {
        user_id: "consumer".into(),
        email: None,
    });
    Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name)
        .create(&PostParams::default(), &key)
        .await
        .expect("a 253-character name is a valid APIKey name");
    let events = Api::<Event>::namespaced(admin, &ns.name);
    let event = eventually("the approval Event", WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(&name))
    })
    .await;
    assert_eq!(event.reason.as_deref(), Some("Approved"));
    assert!(event.metadata.name.unwrap().len() <= 253);
}

#[tokio::test]
async fn withdrawing_a_route_withdraws_its_keys() {
    use devportal::names::{
        APIKEY_ANNOTATION, EXPOSED_ANNOTATION, MANAGED_SELECTOR, ROLE_LABEL, product_condition,
    };
    use devportal::resources::APIKeyPhase;
    use devportal::resources::gateway::HTTPRoute;
    use k8s_openapi::api::core::v1::Secret;
    use kube::api::{Patch, PatchParams};

    let (ns, admin, products) = published_and_discovered("withdrawn").await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    let phase_of = |name: &'static str| {
        let keys = keys.clone();
        async move { keys.get(name).await.ok()?.status?.phase }
    };
    keys.create(
        &PostParams::default(),
        &fixtures::key("before", "toys", "gold"),
    )
    .await
    .unwrap();
    eventually("the first key to be approved", WAIT, || async {
        (phase_of("before").await == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
    // Enforcement Secrets of this namespace's keys, wherever they live.
    let owner_prefix = format!("{}/", ns.name);
    let enforced = || async {
        Api::<Secret>::all(admin.clone())
            .list(
                &ListParams::default()
                    .labels(&format!("{MANAGED_SELECTOR},{ROLE_LABEL}=enforcement")),
            )
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|s| {
                s.metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(APIKEY_ANNOTATION))
                    .is_some_and(|owner| owner.starts_with(&owner_prefix))
            })
            .count()
    };
    assert_eq!(enforced().await, 1);

    // The platform engineer withdraws the route.
    let route = "toystore";
    let annotations = serde_json::json!({"metadata": {"annotations": {EXPOSED_ANNOTATION: null}}});
    Api::<HTTPRoute>::namespaced(admin.clone(), &ns.name)
        .patch(route, &PatchParams::default(), &Patch::Merge(&annotations))
        .await
        .unwrap();
    eventually(
        "the product to say its route is withdrawn",
        WAIT,
        || async {
            let status = products.get("toys").await.ok()?.status?;
            status
                .conditions
                .iter()
                .any(|c| {
                    c.type_ == product_condition::READY
                        && c.status == "False"
                        && c.reason == "RouteNotExposed"
                })
                .then_some(())
        },
    )
    .await;
    eventually(
        "the approved key to fail, its enforcement withdrawn",
        WAIT,
        || async {
            (phase_of("before").await == Some(APIKeyPhase::Failed) && enforced().await == 0)
                .then_some(())
        },
    )
    .await;
    keys.create(
        &PostParams::default(),
        &fixtures::key("after", "toys", "gold"),
    )
    .await
    .unwrap();
    eventually("a new key to fail too", WAIT, || async {
        (phase_of("after").await == Some(APIKeyPhase::Failed)).then_some(())
    })
    .await;
    assert_eq!(
        enforced().await,
        0,
        "no Secret is written for a withdrawn route"
    );
}

/// Asserts that `refused` is the validating webhook's own refusal of an APIKey write (403 with
/// its message `says`), not RBAC's or another admission plugin's.
fn webhook_refusal(refused: kube::Error, says: &str) {
    let kube::Error::Api(status) = refused else {
        panic!("unexpected error: {refused}")
    };
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains(
            "admission webhook \"apikeys.validate.devportal.kuadrant.io\" denied the request"
        ),
        "the webhook refused, not RBAC: {status:?}"
    );
    assert!(status.message.contains(says), "{says:?}: {status:?}");
}

#[tokio::test]
async fn only_the_controller_removes_the_finalizer_and_owners_cannot_orphan_a_key() {
    use devportal::names::FINALIZER;
    use devportal::resources::APIKeyPhase;
    use kube::api::{DeleteParams, Patch, PatchParams};

    let (ns, admin, _) = published_and_discovered("guarded").await;
    let consumer_keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    consumer_keys
        .create(
            &PostParams::default(),
            &fixtures::key("mine", "toys", "gold"),
        )
        .await
        .unwrap();
    eventually("the key to be approved", WAIT, || async {
        (consumer_keys.get("mine").await.ok()?.status?.phase == Some(APIKeyPhase::Approved))
            .then_some(())
    })
    .await;

    // The consumer strips devportal's finalizer to orphan the enforcement Secret.
    let strip = serde_json::json!({"metadata": {"finalizers": null}});
    let refused = consumer_keys
        .patch("mine", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .expect_err("the webhook refuses");
    webhook_refusal(
        refused,
        &format!("only devportal's controller removes the finalizer {FINALIZER}"),
    );

    // The owner (a reviewer of this namespace's products) plants a dangling owner so the garbage
    // collector would delete the consumer's key.
    let dangling = serde_json::json!({"metadata": {"ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "gone",
        "uid": "00000000-0000-0000-0000-000000000000"
    }]}});
    let owner_keys = Api::<APIKey>::namespaced(client(Persona::Owner).await, &ns.name);
    let refused = owner_keys
        .patch("mine", &PatchParams::default(), &Patch::Merge(&dangling))
        .await
        .expect_err("the owner may not change ownerReferences");
    webhook_refusal(
        refused,
        "only the requester, an admin or devportal's controller may change ownerReferences",
    );
    let key = consumer_keys
        .get("mine")
        .await
        .expect("the key is still there");
    assert!(key.metadata.owner_references.is_none());
    assert!(key.finalizers().iter().any(|f| f == FINALIZER));

    // Labels and annotations still pass for anyone with RBAC to write them.
    let label = serde_json::json!({"metadata": {"labels": {"team": "toys"}}});
    consumer_keys
        .patch("mine", &PatchParams::default(), &Patch::Merge(&label))
        .await
        .expect("metadata-only changes pass");

    // Deleting the key works: the controller removes its own finalizer through the webhook.
    consumer_keys
        .delete("mine", &DeleteParams::default())
        .await
        .unwrap();
    eventually("the key to be gone", WAIT, || async {
        consumer_keys
            .get_opt("mine")
            .await
            .ok()
            .filter(Option::is_none)
            .map(|_| ())
    })
    .await;

    // An admin can still force it, for repairs (the webhook warns).
    consumer_keys
        .create(
            &PostParams::default(),
            &fixtures::key("forced", "toys", "gold"),
        )
        .await
        .unwrap();
    eventually("the second key to carry the finalizer", WAIT, || async {
        consumer_keys
            .get("forced")
            .await
            .ok()?
            .finalizers()
            .iter()
            .any(|f| f == FINALIZER)
            .then_some(())
    })
    .await;
    Api::<APIKey>::namespaced(admin, &ns.name)
        .patch("forced", &PatchParams::default(), &Patch::Merge(&strip))
        .await
        .expect("an admin may remove the finalizer");
}
