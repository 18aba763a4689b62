//! The Kuadrant Backstage plugin (Kuadrant/kuadrant-backstage-plugin @ d9d04d8), unchanged, against
//! devportal through the real API server: its backend's own sequence of calls (router.ts, replayed
//! by `support::backstage`) as the ServiceAccount of manifests/rbac/portal-frontend.yaml, applied as
//! shipped — request, my keys, the owner's inbox, edit, approve, deny, show the key, the product
//! page, delete. Then the same flows for plain kubectl users, each as themselves. And the attack on
//! delegated reviews: a front end naming a reviewer it may not speak for. See docs/front-ends.md.

use crate::support;

use devportal::names::{REQUESTED_VIA_ANNOTATION, REVIEWED_VIA_ANNOTATION};
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIKey, APIKeyRequest};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::{Api, Client, ResourceExt};
use serde_json::{Value, json};
use support::backstage::{CONSUMER_NAMESPACE_LABEL, Plugin, consumer_namespace, phase};
use support::front_end::{authorizer_says, front_end, impersonating, may_impersonate};
use support::portal::{
    ConsumerNamespace, KUADRANT_NAMESPACE, WAIT, admin, in_inbox, kubectl, kubectl_key,
    kubectl_request, kubectl_review, name_of, plugin_request, product_namespace, shipped_plugin,
};
use support::secrets::{annotation, api_key, consumer, enforcement, secrets_of};
use support::{Persona, authorino, control_plane_with_devportal, eventually};

#[tokio::test]
async fn the_backstage_plugin_works_unchanged_as_its_service_account() {
    const ALICE: &str = "user:default/alice";
    const OLIVIA: &str = "user:default/olivia";
    let admin = admin().await;
    let product = product_namespace("plugin", OLIVIA, &[]).await;
    let products = product.name.as_str();
    let (plugin, username) = shipped_plugin(&admin).await;
    let consumers = consumer_namespace(ALICE);
    let _cleanup = ConsumerNamespace(consumers.clone());

    // Request: the consumer namespace, the Secret with the 32-hex key, the APIKey.
    let (key, value) = plugin_request(&plugin, ALICE, products).await;
    let name = name_of(&key);
    assert_eq!(
        key["spec"]["requestedBy"],
        json!({"userId": ALICE, "email": "unknown"}),
        "the Backstage user and e-mail are kept"
    );
    assert_eq!(
        key["metadata"]["annotations"][REQUESTED_VIA_ANNOTATION],
        username.as_str()
    );
    let namespace = Api::<Namespace>::all(admin.clone())
        .get(&consumers)
        .await
        .unwrap();
    assert_eq!(namespace.labels()[CONSUMER_NAMESPACE_LABEL], "true");

    // My keys.
    let mine = plugin.my_requests(ALICE, (products, "toys")).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(name_of(&mine[0]), name);
    assert_eq!(mine[0]["spec"]["requestedBy"]["userId"], ALICE);

    // The owner's inbox shows it Pending; the consumer edits it meanwhile.
    in_inbox(&plugin, OLIVIA, products, &name, "Pending").await;
    let expires = k8s_openapi::jiff::Timestamp::now()
        .checked_add(k8s_openapi::jiff::SignedDuration::from_hours(30 * 24))
        .unwrap();
    let edited = plugin
        .edit_request(
            ALICE,
            &consumers,
            &name,
            json!({"spec": {"useCase": "load tests", "planTier": "silver",
                            "expiresAt": format!("{expires:.3}")}}),
        )
        .await
        .expect("PATCH /requests: the Pending request is edited");
    assert_eq!(edited["spec"]["planTier"], "silver");
    let request = eventually("the inbox to show the edit", WAIT, || async {
        let request = in_inbox(&plugin, OLIVIA, products, &name, "Pending").await;
        (request["spec"]["planTier"] == "silver").then_some(request)
    })
    .await;

    // Approve: the review is olivia's, through the front end.
    let approval = plugin
        .review(OLIVIA, products, &name_of(&request), true)
        .await
        .expect("POST /requests/…/approve: the APIKeyApproval is admitted");
    assert_eq!(approval["spec"]["reviewedBy"], OLIVIA);
    assert_eq!(
        approval["metadata"]["annotations"][REVIEWED_VIA_ANNOTATION],
        username.as_str()
    );
    in_inbox(&plugin, OLIVIA, products, &name, "Approved").await;
    eventually(
        "the key to be Approved, as the plugin reads it",
        WAIT,
        || async {
            let key = plugin.api_key(ALICE, &consumers, &name).await;
            (phase(&key) == "Approved").then_some(())
        },
    )
    .await;
    let secrets = eventually("the enforcement Secret", WAIT, || async {
        let found = secrets_of(&admin, &consumers, &name).await;
        (!found.is_empty()).then_some(found)
    })
    .await;
    let policy = Api::<AuthPolicy>::namespaced(admin.clone(), products)
        .get("auth")
        .await
        .unwrap();
    assert_eq!(
        authorino::indexed_key(enforcement(&secrets), &policy, KUADRANT_NAMESPACE),
        value,
        "Authorino accepts the value the plugin generated"
    );
    assert_eq!(
        annotation(enforcement(&secrets), "secret.kuadrant.io/plan-id"),
        Some("silver"),
        "at the tier the consumer edited to"
    );
    assert_eq!(plugin.show_key(ALICE, &consumers, &name).await, value);
    assert_eq!(
        plugin.product_auth_policy(OLIVIA, products, "toys").await,
        "auth"
    );

    // Deny a second request.
    let (second, _) = plugin_request(&plugin, ALICE, products).await;
    let second = name_of(&second);
    let waiting = in_inbox(&plugin, OLIVIA, products, &second, "Pending").await;
    plugin
        .review(OLIVIA, products, &name_of(&waiting), false)
        .await
        .expect("POST /requests/…/reject: the denial is admitted");
    in_inbox(&plugin, OLIVIA, products, &second, "Denied").await;
    eventually("the second key to be Denied", WAIT, || async {
        let key = plugin.api_key(ALICE, &consumers, &second).await;
        (phase(&key) == "Denied").then_some(())
    })
    .await;
    assert!(secrets_of(&admin, &consumers, &second).await.is_empty());

    // Approve a third with the bulk form, which adds a `comment` field devportal does not have.
    let (third, _) = plugin_request(&plugin, ALICE, products).await;
    let third = name_of(&third);
    let waiting = in_inbox(&plugin, OLIVIA, products, &third, "Pending").await;
    let results = plugin
        .bulk_review(
            OLIVIA,
            &[(products, &name_of(&waiting))],
            true,
            Some("bulk"),
        )
        .await;
    let stored = match results.as_slice() {
        [Ok(stored)] => stored,
        other => panic!("POST /requests/bulk-approve: {other:?}"),
    };
    assert!(
        stored["spec"]["comment"].is_null(),
        "not an APIKeyApproval field: the API server drops it"
    );
    in_inbox(&plugin, OLIVIA, products, &third, "Approved").await;
    assert_eq!(plugin.my_requests(ALICE, (products, "toys")).await.len(), 3);

    // Delete the approved key: its request and devportal's Secret go; the value is not enforced.
    let brought = key["spec"]["secretRef"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    plugin.delete_request(ALICE, &consumers, &name).await;
    let keys = Api::<APIKey>::namespaced(admin.clone(), &consumers);
    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), products);
    let request_name = name_of(&request);
    eventually(
        "the key, its request and its Secrets to go",
        WAIT,
        || async {
            let gone = keys.get_opt(&name).await.ok()?.is_none()
                && requests.get_opt(&request_name).await.ok()?.is_none()
                && secrets_of(&admin, &consumers, &name).await.is_empty();
            gone.then_some(())
        },
    )
    .await;
    assert!(
        Api::<Secret>::namespaced(admin.clone(), &consumers)
            .get_opt(&brought)
            .await
            .unwrap()
            .is_some(),
        "the Secret the front end brought is its own: devportal reads it, never deletes it"
    );
    let mine: Vec<String> = plugin
        .my_requests(ALICE, (products, "toys"))
        .await
        .iter()
        .map(name_of)
        .collect();
    assert_eq!(mine.len(), 2, "{mine:?}");
    assert!(mine.contains(&second) && mine.contains(&third), "{mine:?}");
}

#[tokio::test]
async fn the_same_flows_work_for_kubectl_users() {
    let admin = admin().await;
    let ns = product_namespace("plugin-kubectl", "owner", &["consumer"]).await;
    let ns = ns.name.as_str();

    // Request, and the owner approves with an APIKeyApproval.
    kubectl_key(ns, "first");
    let request = kubectl_request(Persona::Owner, ns, "first", "Pending").await;
    assert_eq!(request["spec"]["requestedBy"]["userId"], "consumer");
    let review = kubectl_review(ns, &name_of(&request), true);
    // Nor can anyone, an admin included, add it afterwards.
    let added = support::stderr_of_failure(&control_plane_with_devportal().kubectl(
        Persona::Admin,
        &[
            "annotate",
            "apikeyapproval",
            &name_of(&review),
            "-n",
            ns,
            &format!("{REVIEWED_VIA_ANNOTATION}=system:serviceaccount:backstage:portal-frontend"),
        ],
        None,
    ));
    assert!(added.contains("immutable"), "{added}");
    kubectl_request(Persona::Owner, ns, "first", "Approved").await;
    let keys = Api::<APIKey>::namespaced(admin.clone(), ns);
    let secrets = eventually("both Secrets of the approved key", WAIT, || async {
        let found = secrets_of(&admin, ns, "first").await;
        (found.len() == 2).then_some(found)
    })
    .await;
    let value = kubectl(
        Persona::Consumer,
        &[
            "get",
            "secret",
            consumer(&secrets).metadata.name.as_deref().unwrap(),
            "-n",
            ns,
            "-o",
            "jsonpath={.data.api_key}",
        ],
        None,
    );
    assert_eq!(
        String::from_utf8(
            serde_json::from_value::<k8s_openapi::ByteString>(json!(value))
                .unwrap()
                .0
        )
        .unwrap(),
        api_key(enforcement(&secrets)),
        "the consumer reads the value that is enforced"
    );
    let key = keys.get("first").await.unwrap();
    assert_eq!(
        key.spec.approval.unwrap().reviewed_by.as_deref(),
        Some("owner")
    );

    // Another, denied.
    kubectl_key(ns, "second");
    let request = kubectl_request(Persona::Owner, ns, "second", "Pending").await;
    kubectl_review(ns, &name_of(&request), false);
    kubectl_request(Persona::Owner, ns, "second", "Denied").await;
    assert!(secrets_of(&admin, ns, "second").await.is_empty());

    // The consumer deletes the first: its request and Secrets go.
    let first = kubectl_request(Persona::Owner, ns, "first", "Approved").await;
    kubectl(
        Persona::Consumer,
        &["delete", "apikey", "first", "-n", ns],
        None,
    );
    let requests = Api::<APIKeyRequest>::namespaced(admin.clone(), ns);
    eventually(
        "the request and Secrets of the deleted key to go",
        WAIT,
        || async {
            let gone = requests.get_opt(&name_of(&first)).await.ok()?.is_none()
                && secrets_of(&admin, ns, "first").await.is_empty()
                && keys.get_opt("first").await.ok()?.is_none();
            gone.then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn a_front_end_reviews_only_as_a_user_it_may_impersonate_who_may_approve() {
    const OLIVIA: &str = "user:default/olivia";
    const MALLORY: &str = "user:default/mallory";
    let admin = admin().await;
    let product = product_namespace("plugin-reviewer", OLIVIA, &["consumer"]).await;
    let ns = product.name.as_str();
    kubectl_key(ns, "wanted");
    let request = name_of(&kubectl_request(Persona::Admin, ns, "wanted", "Pending").await);
    // The shipped API rights in this namespace, no impersonate yet.
    let (username, config) = front_end(&admin, ns, "portal").await;
    let plugin = Plugin {
        client: Client::try_from(config).unwrap(),
    };

    // Naming the owner without the right to impersonate them: the front end is the reviewer,
    // and it may not approve.
    let refused = plugin
        .review(OLIVIA, ns, &request, true)
        .await
        .expect_err("a front end that may not impersonate the owner approves nothing");
    let kube::Error::Api(status) = refused else {
        panic!("{refused:?}")
    };
    assert_eq!(status.code, 403, "{status:?}");
    assert!(
        status.message.contains("may not review") && status.message.contains(&username),
        "{}",
        status.message
    );

    // A user it may impersonate who may not approve the product.
    may_impersonate(&admin, ns, "portal", &[OLIVIA, MALLORY], &[]).await;
    authorizer_says(&admin, &username, impersonating(MALLORY)).await;
    authorizer_says(&admin, &username, impersonating(OLIVIA)).await;
    let refused = plugin
        .review(MALLORY, ns, &request, true)
        .await
        .expect_err("mallory may not approve toys");
    let kube::Error::Api(status) = refused else {
        panic!("{refused:?}")
    };
    assert!(
        status.code == 403 && status.message.contains(MALLORY),
        "{status:?}"
    );
    assert_eq!(
        kubectl_request(Persona::Admin, ns, "wanted", "Pending").await["status"]["reviewedBy"],
        Value::Null,
        "nothing was reviewed"
    );

    // The owner, through the front end that may speak for them: admitted, both recorded.
    let approval = plugin
        .review(OLIVIA, ns, &request, true)
        .await
        .expect("the owner's approval through the front end");
    assert_eq!(approval["spec"]["reviewedBy"], OLIVIA);
    assert_eq!(
        approval["metadata"]["annotations"][REVIEWED_VIA_ANNOTATION],
        username.as_str()
    );
    let approved = kubectl_request(Persona::Admin, ns, "wanted", "Approved").await;
    assert_eq!(approved["status"]["reviewedBy"], OLIVIA);
}
