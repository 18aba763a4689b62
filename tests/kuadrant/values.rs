//! A key's value and its two Secrets in the operator's layout: a tier change replaces the
//! enforcement Secret (the new one first) with the same value, policy blips and a missing product
//! keep it, a selector no Secret can satisfy is reported, a foreign Secret at the consumer Secret's
//! name is never adopted, and drift on either Secret is restored exactly.

use super::*;

#[tokio::test]
async fn a_tier_change_replaces_the_secret_new_one_first_with_the_same_key() {
    let (ns, admin) = published(
        "tier",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let gold = one_enforcement(&admin, &uid, |_| true).await;
    let gold_name = gold.metadata.name.clone().unwrap();

    // Watch the key's enforcement Secrets to see the order of creation and deletion.
    let watched = Api::<Secret>::namespaced(admin.clone(), kuadrant_namespace());
    let config =
        watcher::Config::default().labels(&format!("devportal.kuadrant.io/apikey-uid={uid}"));
    let events = tokio::spawn(async move {
        let mut seen: Vec<(Instant, &'static str, String, Option<String>)> = Vec::new();
        let mut stream = std::pin::pin!(watcher(watched, config));
        while let Some(Ok(event)) = stream.next().await {
            let (kind, secret) = match event {
                watcher::Event::Apply(s) | watcher::Event::InitApply(s) => ("present", s),
                watcher::Event::Delete(s) => ("deleted", s),
                _ => continue,
            };
            let plan = annotation(&secret, "secret.kuadrant.io/plan-id").map(String::from);
            seen.push((Instant::now(), kind, secret.metadata.name.unwrap(), plan));
            if seen
                .iter()
                .any(|(_, kind, name, _)| *kind == "deleted" && name.starts_with("apikey-"))
            {
                return seen;
            }
        }
        seen
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"planTier": "silver"}})),
    )
    .await
    .unwrap();
    let silver = one_enforcement(&admin, &uid, |s| {
        annotation(s, "secret.kuadrant.io/plan-id") == Some("silver")
    })
    .await;
    assert_ne!(
        silver.metadata.uid, gold.metadata.uid,
        "a new Secret object"
    );
    assert_ne!(silver.metadata.name.as_deref(), Some(gold_name.as_str()));
    assert_eq!(value(&silver), value(&gold), "the same key");
    authorino::indexed_key(
        &silver,
        &auth_policy(&admin, &ns.name).await,
        kuadrant_namespace(),
    );

    let seen = tokio::time::timeout(WAIT, events)
        .await
        .expect("the old Secret is deleted")
        .unwrap();
    let created = seen
        .iter()
        .find(|(_, kind, _, plan)| *kind == "present" && plan.as_deref() == Some("silver"))
        .expect("the silver Secret appeared")
        .0;
    let deleted = seen
        .iter()
        .find(|(_, kind, name, _)| *kind == "deleted" && *name == gold_name)
        .expect("the gold Secret was deleted")
        .0;
    assert!(
        created <= deleted,
        "the new Secret exists before the old one goes: {seen:?}"
    );
    println!(
        "tier change: old Secret gone {:?} after the new one existed",
        deleted - created
    );
}

/// Records every deletion of Secret `name` in `ns` until the returned handle is aborted.
fn deletions_of(client: Client, ns: &str, name: &str) -> tokio::task::JoinHandle<Vec<String>> {
    let api = Api::<Secret>::namespaced(client, ns);
    let config = watcher::Config::default().fields(&format!("metadata.name={name}"));
    tokio::spawn(async move {
        let mut deleted = Vec::new();
        let mut stream = std::pin::pin!(watcher(api, config));
        while let Some(event) = stream.next().await {
            if let Ok(watcher::Event::Delete(s)) = event {
                deleted.push(s.metadata.uid.unwrap_or_default());
            }
        }
        deleted
    })
}

async fn set_enforced(admin: &Client, ns: &str, enforced: bool) {
    let status = if enforced { "True" } else { "False" };
    Api::<AuthPolicy>::namespaced(admin.clone(), ns)
        .patch_status(
            "auth",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"conditions": [
                fixtures::true_condition("Accepted"),
                {"type": "Enforced", "status": status, "reason": "Blip", "message": "",
                 "lastTransitionTime": "2026-01-01T00:00:00Z"}
            ]}})),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn policy_blips_and_a_missing_product_keep_the_key_value() {
    let (ns, admin) = published(
        "blips",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let original = value(&one_enforcement(&admin, &uid, |_| true).await);
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    let copies = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let copy_uid = copies.get(&copy_name).await.unwrap().metadata.uid;
    let deletions = deletions_of(admin.clone(), &ns.name, &copy_name);
    let withdrawn = || async {
        eventually("the enforcement Secret to be withdrawn", WAIT, || async {
            enforcement_in(&admin, kuadrant_namespace(), &uid)
                .await
                .is_empty()
                .then_some(())
        })
        .await
    };
    let restored = |what: &'static str| {
        let admin = admin.clone();
        let uid = uid.clone();
        let original = original.clone();
        async move {
            let secret = one_enforcement(&admin, &uid, |_| true).await;
            assert_eq!(value(&secret), original, "{what}: the same key comes back");
        }
    };

    // 1. The AuthPolicy is briefly not enforced.
    set_enforced(&admin, &ns.name, false).await;
    let failed = wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "NoAPIKeyAuth");
    assert!(
        message.contains(&format!("whose value is kept in Secret {copy_name}")),
        "{message}"
    );
    withdrawn().await;
    set_enforced(&admin, &ns.name, true).await;
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    restored("Enforced=False and back").await;

    // 2. The PlanPolicy loses the tier for a moment.
    let plans = Api::<PlanPolicy>::namespaced(admin.clone(), &ns.name);
    plans
        .patch(
            "plans",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"plans": [
                {"tier": "silver", "limits": {"daily": 10}}
            ]}})),
        )
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    withdrawn().await;
    plans
        .replace("plans", &PostParams::default(), &{
            let mut p = plans.get("plans").await.unwrap();
            p.spec.plans = fixtures::plan_policy("plans", "toystore").spec.plans;
            p
        })
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    restored("a PlanPolicy edit").await;

    // 3. The product is deleted and created again.
    let products =
        Api::<APIProduct>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    products
        .delete("toys", &DeleteParams::default())
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    withdrawn().await;
    products
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    restored("a re-created product").await;

    deletions.abort();
    let deleted = deletions.await.unwrap_or_default();
    assert!(
        deleted.is_empty(),
        "the consumer Secret was deleted: {deleted:?}"
    );
    assert_eq!(
        copies.get(&copy_name).await.unwrap().metadata.uid,
        copy_uid,
        "never replaced"
    );
}

#[tokio::test]
async fn a_selector_no_secret_can_satisfy_is_reported_on_the_product_and_its_keys() {
    let mut policy = fixtures::auth_policy("auth", "toystore");
    policy
        .spec
        .rules
        .as_mut()
        .unwrap()
        .authentication
        .get_mut("api-key-users")
        .unwrap()
        .api_key
        .as_mut()
        .unwrap()
        .selector
        .match_expressions = Some(vec![LabelSelectorRequirement {
        key: "app".into(),
        operator: "NotIn".into(),
        values: Some(vec!["toystore".into()]),
    }]);
    let (ns, admin) = published("unsat", policy, ApprovalMode::Automatic).await;
    let products = Api::<APIProduct>::namespaced(admin.clone(), &ns.name);
    let condition = eventually("AuthPolicyDiscovered to explain", WAIT, || async {
        let p = products.get("toys").await.ok()?;
        p.status?
            .conditions
            .into_iter()
            .find(|c| c.type_ == "AuthPolicyDiscovered" && c.reason == "UnsatisfiableSelector")
    })
    .await;
    assert_eq!(condition.status, "False");
    assert!(
        condition
            .message
            .contains("no value of label app meets app=toystore, app!=toystore"),
        "{}",
        condition.message
    );
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    // (Until the PlanPolicy reaches the caches, the key may first be Failed for its tier.)
    let failed = eventually("the key to fail for the selector", WAIT, || async {
        let key = keys.get("mine").await.ok()?;
        (key.status.as_ref()?.phase == Some(APIKeyPhase::Failed)
            && holding(&key).0 == "UnsatisfiableSelector")
            .then_some(key)
    })
    .await;
    assert!(holding(&failed).1.contains("no value of label app"));
    assert!(
        enforcement_in(&admin, kuadrant_namespace(), &uid)
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_foreign_secret_at_the_consumer_name_is_never_adopted() {
    let (ns, admin) = published(
        "foreign",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Manual,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    wait_phase(&keys, "mine", APIKeyPhase::Pending).await;
    // Someone plants a Secret where the consumer copy will go, hoping devportal adopts it.
    let name = format!("mine-{uid}");
    let planted = Secret {
        metadata: ObjectMeta {
            name: Some(name.clone()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                "api_key".to_string(),
                ByteString(b"planted-value-0123456789abcdef0123".to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    };
    // Planted by someone who may write Secrets in the namespace (here the admin).
    let consumer_secrets = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let planted = consumer_secrets
        .create(&PostParams::default(), &planted)
        .await
        .unwrap();
    let owner = Api::<APIKey>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    owner
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true, "reviewedBy": "owner"}}})),
        )
        .await
        .unwrap();
    let failed = wait_phase(&keys, "mine", APIKeyPhase::Failed).await;
    let (reason, message) = holding(&failed);
    assert_eq!(reason, "SecretConflict");
    assert!(
        message.contains(&format!("Secret {}/{name}", ns.name)),
        "{message}"
    );
    let untouched = consumer_secrets.get(&name).await.unwrap();
    assert_eq!(
        untouched.metadata.resource_version, planted.metadata.resource_version,
        "not written"
    );
    assert!(
        enforcement_in(&admin, kuadrant_namespace(), &uid)
            .await
            .is_empty(),
        "its value is never enforced"
    );

    consumer_secrets
        .delete(&name, &DeleteParams::default())
        .await
        .unwrap();
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {"nudge": "1"}}})),
    )
    .await
    .unwrap();
    wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let enforced = one_enforcement(&admin, &uid, |_| true).await;
    assert_ne!(value(&enforced), "planted-value-0123456789abcdef0123");
}

#[tokio::test]
async fn drift_on_either_secret_is_restored_exactly() {
    let (ns, admin) = published(
        "drift",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let original = one_enforcement(&admin, &uid, |_| true).await;
    let enforcement_api = Api::<Secret>::namespaced(admin.clone(), kuadrant_namespace());
    let name = original.metadata.name.clone().unwrap();
    enforcement_api
        .patch(
            &name,
            &PatchParams::default(),
            &Patch::Merge(json!({
                "metadata": {"labels": {"sneaky": "yes"}},
                "data": {"api_key": "c3RvbGVu"}
            })),
        )
        .await
        .unwrap();
    let restored = eventually("the enforcement Secret restored", WAIT, || async {
        let s = enforcement_api.get(&name).await.ok()?;
        (s.metadata.labels == original.metadata.labels && s.data == original.data).then_some(s)
    })
    .await;
    assert_eq!(
        restored.metadata.uid, original.metadata.uid,
        "restored in place"
    );

    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    let copies = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let copy = copies.get(&copy_name).await.unwrap();
    copies
        .patch(
            &copy_name,
            &PatchParams::default(),
            &Patch::Merge(json!({"metadata": {"annotations": {"sneaky": "yes"}}})),
        )
        .await
        .unwrap();
    eventually("the consumer Secret restored", WAIT, || async {
        let s = copies.get(&copy_name).await.ok()?;
        (s.metadata.annotations == copy.metadata.annotations).then_some(())
    })
    .await;
}
