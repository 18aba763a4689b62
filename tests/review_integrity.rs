//! The integrity of an APIKey's request and review, attacked through the real API server (with
//! devportal's webhook and controller running) as the persona who would try: a reviewer
//! rewriting a request, an approval outliving the product it approved, a status written by someone
//! else that the controller cannot apply over, and a key in a namespace the webhook does not
//! cover. See docs/security.md.

mod support;

use std::time::Duration;

use devportal::names::key_reason::{APPROVAL_OUTDATED, NAMESPACE_NOT_COVERED};
use devportal::names::{APIKEY_UID_LABEL, MANAGED_SELECTOR};
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode};
use devportal::secrets::Role;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::access::binding_in_effect;
use support::secrets::secrets_of;
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(30);
/// A rule's group and resource.
const APIKEY_STATUS: (&str, &str) = ("devportal.kuadrant.io", "apikeys/status");
const APIPRODUCTS: (&str, &str) = ("devportal.kuadrant.io", "apiproducts");

async fn client(persona: Persona) -> Client {
    control_plane_with_devportal().client(persona).await
}

fn rule((group, resource): (&str, &str), names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// Creates the ClusterRole `name` (once per control plane) with `rules`, as the admin.
async fn cluster_role(admin: &Client, name: &str, rules: Vec<PolicyRule>) {
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    };
    match Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("cluster role {name}: {error}"),
    }
}

/// Waits until the product `ns/name` has discovered its plans (the webhook admits keys only for
/// discovered tiers) and returns it.
async fn discovered(admin: &Client, ns: &str, name: &str) -> APIProduct {
    let products = Api::<APIProduct>::namespaced(admin.clone(), ns);
    eventually(
        &format!("{name}'s plans to be discovered"),
        WAIT,
        || async {
            let product = products.get(name).await.ok()?;
            let plans = &product.status.as_ref()?.discovered_plans;
            (!plans.is_empty()).then_some(product)
        },
    )
    .await
}

/// Waits until key `name` is in `phase` for `reason`.
async fn wait_reason(keys: &Api<APIKey>, name: &str, phase: APIKeyPhase, reason: &str) -> APIKey {
    eventually(
        &format!("{name} to be {phase:?} ({reason})"),
        WAIT,
        || async {
            let key = keys.get(name).await.ok()?;
            let status = key.status.as_ref()?;
            let holds = status
                .conditions
                .iter()
                .any(|c| c.type_ == phase.as_str() && c.status == "True" && c.reason == reason);
            (status.phase == Some(phase) && holds).then_some(key)
        },
    )
    .await
}

/// The roles of devportal's Secrets of key `ns/name`, sorted.
async fn secret_roles(admin: &Client, ns: &str, name: &str) -> Vec<String> {
    let mut roles: Vec<_> = secrets_of(admin, ns, name)
        .await
        .into_iter()
        .map(|(role, _)| role)
        .collect();
    roles.sort();
    roles
}

/// Waits until key `ns/name` has exactly the Secrets of `roles`.
async fn wait_secret_roles(admin: &Client, ns: &str, name: &str, roles: &[Role]) {
    let mut want: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    want.sort();
    eventually(
        &format!("{ns}/{name} to have Secrets {want:?}"),
        WAIT,
        || async { (secret_roles(admin, ns, name).await == want).then_some(()) },
    )
    .await;
}

fn forbidden_because<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>, needle: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            assert!(
                status.message.contains(needle),
                "{what}: {}",
                status.message
            )
        }
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn merge(value: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(value)
}

#[tokio::test]
async fn an_owner_cannot_rewrite_or_retarget_a_consumers_request() {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;
    // Product owners by name, as docs/operator-guide.md shows: the owner persona owns `games`
    // only, consumer2 owns `toys` only; both review keys (devportal-key-reviewer).
    cluster_role(
        &admin,
        "review-integrity-games-owner",
        vec![rule(APIPRODUCTS, &["games"], &["get", "approve"])],
    )
    .await;
    cluster_role(
        &admin,
        "review-integrity-toys-owner",
        vec![rule(APIPRODUCTS, &["toys"], &["get", "approve"])],
    )
    .await;
    let ns = TestNamespace::with_bindings(
        "retarget",
        &[
            ("devportal-api-consumer", &["consumer"]),
            ("devportal-key-reviewer", &["consumer2"]),
            ("review-integrity-games-owner", &["owner"]),
            ("review-integrity-toys-owner", &["consumer2"]),
        ],
    )
    .await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    let mut games = fixtures::product("games", "toystore");
    games.spec.approval_mode = ApprovalMode::Automatic;
    Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &games)
        .await
        .unwrap();
    let toys = discovered(&admin, &ns.name, "toys").await;
    discovered(&admin, &ns.name, "games").await;
    binding_in_effect(
        Persona::Owner,
        &[
            "approve",
            "apiproducts.devportal.kuadrant.io/games",
            "-n",
            &ns.name,
        ],
    )
    .await;
    binding_in_effect(
        Persona::Consumer2,
        &[
            "approve",
            "apiproducts.devportal.kuadrant.io/toys",
            "-n",
            &ns.name,
        ],
    )
    .await;

    let consumer_keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    consumer_keys
        .create(
            &PostParams::default(),
            &fixtures::key("mine", "toys", "gold"),
        )
        .await
        .unwrap();
    wait_reason(
        &consumer_keys,
        "mine",
        APIKeyPhase::Pending,
        "AwaitingApproval",
    )
    .await;

    // The owner of games moves the request over to their automatic product, or edits it.
    let owner_keys = Api::<APIKey>::namespaced(client(Persona::Owner).await, &ns.name);
    let params = PatchParams::default();
    for (what, patch) in [
        (
            "retarget",
            json!({"spec": {"apiProductRef": {"name": "games"}}}),
        ),
        ("re-tier", json!({"spec": {"planTier": "silver"}})),
        (
            "rewrite the use case",
            json!({"spec": {"useCase": "something else"}}),
        ),
    ] {
        forbidden_because(
            &format!("the owner of games may not {what}"),
            owner_keys.patch("mine", &params, &merge(patch)).await,
            "a reviewer may change only spec.approval",
        );
    }
    // Nor approve it: toys is not theirs.
    forbidden_because(
        "the owner of games approves a key for toys",
        owner_keys
            .patch(
                "mine",
                &params,
                &merge(json!({"spec": {"approval": {"approved": true}}})),
            )
            .await,
        "may not approve keys for APIProduct",
    );

    // The owner of toys reviews the request and does not rewrite it either.
    let reviewer_keys = Api::<APIKey>::namespaced(client(Persona::Consumer2).await, &ns.name);
    forbidden_because(
        "the owner of toys retargets",
        reviewer_keys
            .patch(
                "mine",
                &params,
                &merge(json!({"spec": {"apiProductRef": {"name": "games"}}})),
            )
            .await,
        "a reviewer may change only spec.approval",
    );

    // The requester still may, while Pending.
    consumer_keys
        .patch(
            "mine",
            &params,
            &merge(json!({"spec": {"planTier": "silver"}})),
        )
        .await
        .expect("the requester changes the tier of a Pending request");
    let key = consumer_keys.get("mine").await.unwrap();
    assert_eq!(key.spec.api_product_ref.name, "toys");

    // The owner of toys read the request at gold; it is silver now. An approval that says what it
    // reviewed is refused rather than bound to a tier nobody reviewed.
    let stale = reviewer_keys
        .patch(
            "mine",
            &params,
            &merge(json!({"spec": {"approval": {"approved": true, "planTier": "gold"}}})),
        )
        .await;
    match stale {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(
                status.message.contains("read the request again"),
                "{}",
                status.message
            );
        }
        other => panic!("a stale approval was admitted: {other:?}"),
    }
    assert!(
        consumer_keys
            .get("mine")
            .await
            .unwrap()
            .spec
            .approval
            .is_none()
    );

    // The review itself goes through, stamped with what it approved.
    reviewer_keys
        .patch(
            "mine",
            &params,
            &merge(json!({"spec": {"approval": {"approved": true}}})),
        )
        .await
        .expect("the owner of toys approves");
    let key = wait_reason(&consumer_keys, "mine", APIKeyPhase::Approved, "Approved").await;
    let approval = key.spec.approval.unwrap();
    assert_eq!(approval.reviewed_by.as_deref(), Some("consumer2"));
    assert_eq!(approval.product_uid, toys.metadata.uid);
    assert_eq!(approval.plan_tier.as_deref(), Some("silver"));
}

#[tokio::test]
async fn an_approval_does_not_survive_its_product_being_recreated() {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;
    // Someone who may create products but approves none.
    cluster_role(
        &admin,
        "review-integrity-product-creator",
        vec![rule(APIPRODUCTS, &[], &["get", "list", "create"])],
    )
    .await;
    let ns = TestNamespace::with_bindings(
        "recreated",
        &[
            ("devportal-api-consumer", &["consumer"]),
            ("devportal-api-owner", &["owner"]),
            ("review-integrity-product-creator", &["consumer2"]),
        ],
    )
    .await;
    let owner = client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Manual).await;
    let first = discovered(&admin, &ns.name, "toys").await;

    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("mine", "toys", "gold"),
    )
    .await
    .unwrap();
    wait_reason(&keys, "mine", APIKeyPhase::Pending, "AwaitingApproval").await;
    keys.create(
        &PostParams::default(),
        &fixtures::key("read-earlier", "toys", "gold"),
    )
    .await
    .unwrap();
    Api::<APIKey>::namespaced(owner.clone(), &ns.name)
        .patch(
            "mine",
            &PatchParams::default(),
            &merge(json!({"spec": {"approval": {"approved": true}}})),
        )
        .await
        .expect("the owner approves");
    let approved = wait_reason(&keys, "mine", APIKeyPhase::Approved, "Approved").await;
    let approval = approved.spec.approval.clone().unwrap();
    assert_eq!(approval.product_uid, first.metadata.uid);
    assert_eq!(approval.plan_tier.as_deref(), Some("gold"));
    wait_secret_roles(
        &admin,
        &ns.name,
        "mine",
        &[Role::Consumer, Role::Enforcement],
    )
    .await;

    // The product goes, and someone who cannot approve creates one of the same name.
    Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .delete("toys", &DeleteParams::default())
        .await
        .unwrap();
    wait_reason(&keys, "mine", APIKeyPhase::Failed, "ProductNotFound").await;
    let mut impostor = fixtures::product("toys", "toystore");
    impostor.spec.approval_mode = ApprovalMode::Manual;
    binding_in_effect(
        Persona::Consumer2,
        &[
            "create",
            "apiproducts.devportal.kuadrant.io",
            "-n",
            &ns.name,
        ],
    )
    .await;
    Api::<APIProduct>::namespaced(client(Persona::Consumer2).await, &ns.name)
        .create(&PostParams::default(), &impostor)
        .await
        .expect("consumer2 may create products");
    let second = discovered(&admin, &ns.name, "toys").await;
    assert_ne!(second.metadata.uid, first.metadata.uid);

    // The old approval does not carry over: Pending, saying why, and not enforced.
    let key = wait_reason(&keys, "mine", APIKeyPhase::Pending, APPROVAL_OUTDATED).await;
    let message = &key
        .status
        .as_ref()
        .unwrap()
        .conditions
        .iter()
        .find(|c| c.type_ == "Pending")
        .unwrap()
        .message;
    assert!(
        message.contains(first.metadata.uid.as_deref().unwrap()),
        "{message}"
    );
    assert_eq!(
        secret_roles(&admin, &ns.name, "mine").await,
        [Role::Consumer.as_str()],
        "only the consumer copy is kept; the enforcement Secret is withdrawn"
    );

    // A reviewer who read another request while the old product stood, and approves it now
    // saying which product they reviewed, is refused.
    let stale = Api::<APIKey>::namespaced(owner.clone(), &ns.name)
        .patch(
            "read-earlier",
            &PatchParams::default(),
            &merge(json!({"spec": {"approval": {
                "approved": true, "productUID": first.metadata.uid
            }}})),
        )
        .await;
    match stale {
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 409, "{status:?}");
            assert!(status.message.contains("re-created"), "{}", status.message);
        }
        other => panic!("an approval of the old product was admitted: {other:?}"),
    }

    // A new review binds the new product.
    Api::<APIKey>::namespaced(owner, &ns.name)
        .patch(
            "mine",
            &PatchParams::default(),
            &merge(json!({"spec": {"approval": {"approved": true, "reason": "re-reviewed"}}})),
        )
        .await
        .expect("the owner approves again");
    let key = wait_reason(&keys, "mine", APIKeyPhase::Approved, "Approved").await;
    assert_eq!(key.spec.approval.unwrap().product_uid, second.metadata.uid);
    wait_secret_roles(
        &admin,
        &ns.name,
        "mine",
        &[Role::Consumer, Role::Enforcement],
    )
    .await;
}

#[tokio::test]
async fn the_controller_converges_from_a_status_written_by_someone_else() {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;
    cluster_role(
        &admin,
        "review-integrity-apikey-status",
        vec![rule(APIKEY_STATUS, &[], &["get", "update", "patch"])],
    )
    .await;
    let ns = TestNamespace::with_bindings(
        "foreign-status",
        &[
            ("devportal-api-consumer", &["consumer"]),
            ("review-integrity-apikey-status", &["consumer2"]),
        ],
    )
    .await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    discovered(&admin, &ns.name, "toys").await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("mine", "toys", "gold"),
    )
    .await
    .unwrap();
    wait_reason(&keys, "mine", APIKeyPhase::Approved, "AutoApproved").await;
    wait_secret_roles(
        &admin,
        &ns.name,
        "mine",
        &[Role::Consumer, Role::Enforcement],
    )
    .await;

    // consumer2 holds only apikeys/status: it adds a field under authScheme, a field the
    // controller's apply never sets and so cannot remove.
    binding_in_effect(
        Persona::Consumer2,
        &[
            "patch",
            "apikeys.devportal.kuadrant.io",
            "--subresource=status",
            "-n",
            &ns.name,
        ],
    )
    .await;
    let intruder = Api::<APIKey>::namespaced(client(Persona::Consumer2).await, &ns.name);
    intruder
        .patch_status(
            "mine",
            &PatchParams::apply("intruder").force(),
            &Patch::Apply(json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
                "status": {"authScheme": {"credentials": {"queryString": {"name": "key"}}}}
            })),
        )
        .await
        .expect("a user with apikeys/status rights writes the status");
    support::access::assert_forbidden(
        "consumer2 has no other rights on keys",
        intruder
            .patch(
                "mine",
                &PatchParams::default(),
                &merge(json!({"metadata": {"labels": {"x": "y"}}})),
            )
            .await,
    );

    // The AuthPolicy goes: the key fails and its status drops authScheme, which would leave the
    // intruder's field without its required sibling (422 on every apply, before the fix).
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .delete("auth", &DeleteParams::default())
        .await
        .unwrap();
    let key = wait_reason(&keys, "mine", APIKeyPhase::Failed, "NoAPIKeyAuth").await;
    let status = key.status.unwrap();
    assert!(status.auth_scheme.is_none(), "{:?}", status.auth_scheme);
    assert_eq!(
        status
            .conditions
            .iter()
            .filter(|c| c.status == "True")
            .count(),
        1
    );
    wait_secret_roles(&admin, &ns.name, "mine", &[Role::Consumer]).await;

    // And back: Approved, enforced again.
    let auth = fixtures::auth_policy("auth", "toystore");
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &auth)
        .await
        .unwrap();
    fixtures::enforce_auth_policy(&admin, &ns.name, "auth").await;
    let key = wait_reason(&keys, "mine", APIKeyPhase::Approved, "AutoApproved").await;
    assert!(key.status.unwrap().auth_scheme.is_some());
    wait_secret_roles(
        &admin,
        &ns.name,
        "mine",
        &[Role::Consumer, Role::Enforcement],
    )
    .await;
}

#[tokio::test]
async fn a_key_where_the_webhook_does_not_look_gets_no_secret() {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;
    let ns = TestNamespace::new("uncovered").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Manual).await;
    discovered(&admin, &ns.name, "toys").await;

    // kube-system is outside the webhooks' namespaceSelector: what the admin writes is stored as
    // written, with a requester and an approval nobody checked.
    let name = format!("smuggled-{}", ns.name);
    let key = APIKey::new(
        &name,
        serde_json::from_value(json!({
            "apiProductRef": {"name": "toys", "namespace": ns.name},
            "planTier": "gold",
            "requestedBy": {"userId": "consumer"},
            "approval": {"approved": true, "reviewedBy": "owner"}
        }))
        .unwrap(),
    );
    let system_keys = Api::<APIKey>::namespaced(admin.clone(), "kube-system");
    let created = system_keys
        .create(&PostParams::default(), &key)
        .await
        .unwrap();
    let uid = created.uid().unwrap();
    assert!(
        created.finalizers().is_empty(),
        "no webhook saw it: no finalizer was added"
    );

    let events = Api::<Event>::namespaced(admin.clone(), "kube-system");
    let event = eventually("the warning Event", WAIT, || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.regarding.as_ref().and_then(|r| r.uid.as_deref()) == Some(&uid))
    })
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    assert_eq!(event.reason.as_deref(), Some(NAMESPACE_NOT_COVERED));
    assert!(event.note.unwrap().contains("not covered"));

    // The reconcile that recorded the Event wrote nothing else.
    let secrets = Api::<Secret>::all(admin.clone())
        .list(
            &ListParams::default().labels(&format!("{MANAGED_SELECTOR},{APIKEY_UID_LABEL}={uid}")),
        )
        .await
        .unwrap();
    assert!(secrets.items.is_empty(), "no Secret for an unvalidated key");
    assert!(secrets_of(&admin, "kube-system", &name).await.is_empty());
    let stored = system_keys.get(&name).await.unwrap();
    assert!(stored.status.is_none(), "{:?}", stored.status);
    assert!(stored.finalizers().is_empty());

    system_keys
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
}
