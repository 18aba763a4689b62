//! Who writes the request and who the review, and what an approval binds.

use super::*;

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
    conflict_because(
        "an approval of a tier nobody reviewed",
        stale,
        "read the request again",
    );
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
    // Since issue 27 a product's route is set only by someone who may approve it: refused.
    let refused = Api::<APIProduct>::namespaced(client(Persona::Consumer2).await, &ns.name)
        .create(&PostParams::default(), &impostor)
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.message.contains("may not set spec.targetRef")),
        "{refused:?}"
    );
    // The admin re-creates it: another product all the same.
    Api::<APIProduct>::namespaced(admin.clone(), &ns.name)
        .create(&PostParams::default(), &impostor)
        .await
        .expect("the admin re-creates the product");
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
    conflict_because("an approval of the old product", stale, "re-created");

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
