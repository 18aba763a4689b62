//! The controller against what others write: a status it cannot apply over, a key nothing
//! validated.

use super::*;

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

#[tokio::test]
async fn a_product_whose_keys_can_come_from_any_namespace_says_so() {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;
    let ns = TestNamespace::new("all-namespaces").await;
    let mut auth = fixtures::auth_policy("auth", "toystore");
    let rules = auth.spec.rules.as_mut().unwrap();
    for rule in rules.authentication.values_mut() {
        rule.api_key.as_mut().unwrap().all_namespaces = true;
    }
    fixtures::platform(
        &admin,
        &ns.name,
        fixtures::plan_policy("plans", "toystore"),
        auth,
    )
    .await;
    Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .unwrap();
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    let condition = eventually("AuthPolicyDiscovered to warn", WAIT, || async {
        products
            .get("toys")
            .await
            .ok()?
            .status?
            .conditions
            .into_iter()
            .find(|c| {
                c.type_ == product_condition::AUTH_POLICY && c.reason == KEYS_FROM_ALL_NAMESPACES
            })
    })
    .await;
    assert_eq!(
        condition.status, "True",
        "the policy is still found and used"
    );
    assert!(
        condition.message.contains("allNamespaces: true")
            && condition.message.contains("anyone who can create Secrets"),
        "{}",
        condition.message
    );

    // Back to the policy's own namespace: the warning goes.
    Api::<AuthPolicy>::namespaced(admin.clone(), &ns.name)
        .patch(
            "auth",
            &PatchParams::default(),
            &merge(json!({"spec": {"rules": {"authentication": {
                "api-key-users": {"apiKey": {"allNamespaces": false}}
            }}}})),
        )
        .await
        .unwrap();
    eventually("AuthPolicyDiscovered to be plain Found", WAIT, || async {
        let status = products.get("toys").await.ok()?.status?;
        status
            .conditions
            .iter()
            .any(|c| c.type_ == product_condition::AUTH_POLICY && c.reason == "Found")
            .then_some(())
    })
    .await;
}
