//! Where the Secrets live: the operator's layout that Authorino with default flags indexes, an
//! upgrade from the oldest layout (whose values devportal cannot vouch for), and the optional
//! secret-guard policy that lets devportal write only its own Secrets.

use super::*;

#[tokio::test]
async fn the_operators_layout_gets_secrets_authorino_with_default_flags_indexes() {
    let (ns, admin) = published(
        "layout",
        expressive_auth_policy("toystore"),
        ApprovalMode::Automatic,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let secret = one_enforcement(&admin, &uid, |_| true).await;
    assert_eq!(
        secret.metadata.namespace.as_deref(),
        Some(kuadrant_namespace()),
        "the Kuadrant CR's namespace, not the route's {}",
        ns.name
    );
    let accepted = authorino::indexed_key(
        &secret,
        &auth_policy(&admin, &ns.name).await,
        kuadrant_namespace(),
    );
    let expected: BTreeMap<String, String> = [
        ("app", "toystore"),
        ("authorino.kuadrant.io/managed-by", "authorino"),
        ("kuadrant.io/tier-group", "paid"),
        ("team", "true"),
        ("devportal.kuadrant.io/managed", "true"),
        ("devportal.kuadrant.io/role", "enforcement"),
        ("devportal.kuadrant.io/apikey-uid", uid.as_str()),
        ("devportal.kuadrant.io/product-namespace", ns.name.as_str()),
        ("devportal.kuadrant.io/product", "toys"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(
        secret.metadata.labels.clone().unwrap(),
        expected,
        "In: the first value; Exists: set; NotIn and DoesNotExist: never set"
    );
    assert_eq!(
        annotation(&secret, "secret.kuadrant.io/plan-id"),
        Some("gold")
    );
    assert_eq!(
        annotation(&secret, "secret.kuadrant.io/user-id"),
        Some("consumer")
    );
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    assert_eq!(copy_name, format!("mine-{uid}"));
    let copy = Api::<Secret>::namespaced(control_plane().client(Persona::Consumer).await, &ns.name)
        .get(&copy_name)
        .await
        .unwrap();
    assert_eq!(
        value(&copy),
        accepted,
        "the consumer reads the key Authorino accepts"
    );
    assert!(keys::verify(&accepted));

    let product = Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .get("toys")
        .await
        .unwrap();
    let discovered = product
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "AuthPolicyDiscovered")
        .unwrap();
    assert_eq!(discovered.status, "True", "{}", discovered.message);
}

/// An enforcement or consumer Secret as devportal wrote them before names derived from uids.
fn legacy_secret(name: &str, ns: &str, role: &str, key_ref: &str, value: &str) -> Secret {
    let mut labels: BTreeMap<String, String> = [
        ("devportal.kuadrant.io/managed", "true"),
        ("devportal.kuadrant.io/role", role),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if role == "enforcement" {
        labels.insert("app".into(), "toystore".into());
        labels.insert(
            "authorino.kuadrant.io/managed-by".into(),
            "authorino".into(),
        );
    }
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            namespace: Some(ns.into()),
            labels: Some(labels),
            annotations: Some(
                [(
                    "devportal.kuadrant.io/apikey".to_string(),
                    key_ref.to_string(),
                )]
                .into(),
            ),
            ..ObjectMeta::default()
        },
        data: Some([("api_key".to_string(), ByteString(value.as_bytes().to_vec()))].into()),
        ..Secret::default()
    }
}

#[tokio::test]
/// Straight from the oldest layout, the value is not taken: neither Secret is one devportal may
/// take a value from (a tenant could plant either, issue 27), so the key gets a new one; the old
/// enforcement Secret, outside the enforcement namespace, is left alone.
async fn an_upgrade_from_the_oldest_layout_issues_a_new_value_and_leaves_outside_secrets_alone() {
    let (ns, admin) = published(
        "upgrade",
        fixtures::auth_policy("auth", "toystore"),
        ApprovalMode::Manual,
    )
    .await;
    let (keys, uid) = request_key(&ns.name, "mine", "gold").await;
    wait_phase(&keys, "mine", APIKeyPhase::Pending).await;
    // What the previous release left: the copy `mine-apikey` owned by the key, and the
    // enforcement Secret in the AuthPolicy's namespace under its old name.
    let old_value = keys::generate("dpk").unwrap().expose().to_string();
    let key_ref = format!("{}/mine", ns.name);
    let old_enforcement = format!(
        "apikey-{}-mine-{:08x}",
        ns.name,
        crc32fast::hash(key_ref.as_bytes())
    );
    let mut copy = legacy_secret("mine-apikey", &ns.name, "consumer", &key_ref, &old_value);
    copy.metadata.owner_references = Some(vec![OwnerReference {
        api_version: "devportal.kuadrant.io/v1alpha1".into(),
        kind: "APIKey".into(),
        name: "mine".into(),
        uid: uid.clone(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }]);
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    secrets
        .create(
            &PostParams::default(),
            &legacy_secret(
                &old_enforcement,
                &ns.name,
                "enforcement",
                &key_ref,
                &old_value,
            ),
        )
        .await
        .unwrap();
    secrets.create(&PostParams::default(), &copy).await.unwrap();

    let owner = Api::<APIKey>::namespaced(control_plane().client(Persona::Owner).await, &ns.name);
    owner
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true, "reviewedBy": "owner"}}})),
        )
        .await
        .unwrap();
    let key = wait_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let enforced = one_enforcement(&admin, &uid, |_| true).await;
    assert_ne!(
        value(&enforced),
        old_value,
        "a value devportal cannot vouch for"
    );
    let copy_name = key.status.unwrap().secret_ref.unwrap().name;
    assert_eq!(
        value(&secrets.get(&copy_name).await.unwrap()),
        value(&enforced)
    );
    eventually("the old consumer copy to be gone", WAIT, || async {
        secrets
            .get_opt("mine-apikey")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    assert!(
        secrets.get_opt(&old_enforcement).await.unwrap().is_some(),
        "a Secret outside the enforcement namespace is not devportal's to delete"
    );
}

#[tokio::test]
async fn the_secret_guard_lets_devportal_write_only_its_own_secrets() {
    controller();
    let ns = TestNamespace::new("guard").await;
    let admin = control_plane().client(Persona::Admin).await;
    let as_devportal =
        Api::<Secret>::namespaced(control_plane().client(Persona::Controller).await, &ns.name);
    let secret = |name: &str, managed: bool| Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: managed.then(|| {
                [(
                    "devportal.kuadrant.io/managed".to_string(),
                    "true".to_string(),
                )]
                .into()
            }),
            ..ObjectMeta::default()
        },
        ..Secret::default()
    };
    // The policy takes effect a moment after it is created.
    let refused = eventually(
        "the policy to refuse an unlabelled Secret",
        WAIT,
        || async {
            match as_devportal
                .create(&PostParams::default(), &secret("someone-elses", false))
                .await
            {
                Err(kube::Error::Api(status)) => Some(status),
                Ok(_) => {
                    as_devportal
                        .delete("someone-elses", &DeleteParams::default())
                        .await
                        .ok();
                    None
                }
                Err(_) => None,
            }
        },
    )
    .await;
    assert_eq!(refused.code, 403);
    assert!(
        refused
            .message
            .contains("devportal may write only Secrets labelled"),
        "{}",
        refused.message
    );
    as_devportal
        .create(&PostParams::default(), &secret("its-own", true))
        .await
        .expect("a labelled Secret is devportal's to write");
    Api::<Secret>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &secret("precious", false))
        .await
        .unwrap();
    let delete = as_devportal
        .delete("precious", &DeleteParams::default())
        .await;
    assert!(
        matches!(&delete, Err(kube::Error::Api(s)) if s.code == 403),
        "devportal may not delete another Secret: {delete:?}"
    );
    let relabel = as_devportal
        .replace("precious", &PostParams::default(), &{
            let mut s = as_devportal.get("precious").await.unwrap();
            s.metadata.labels = Some(
                [(
                    "devportal.kuadrant.io/managed".to_string(),
                    "true".to_string(),
                )]
                .into(),
            );
            s
        })
        .await;
    assert!(
        matches!(&relabel, Err(kube::Error::Api(s)) if s.code == 403),
        "nor adopt it by labelling it: {relabel:?}"
    );
}
