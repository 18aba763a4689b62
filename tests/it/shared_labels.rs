//! Issue 27, items 2 and 3, attacked through the real API server as the tenant who would try them:
//! a tenant who writes the route, AuthPolicy and PlanPolicy of their own API copies bookshop's
//! apiKey selector and publishes an `automatic` product (their keys would work on bookshop's
//! host: labels are one shared space in the enforcement namespace); a tenant creates a `Kuadrant`
//! CR in their own namespace (earlier releases followed the oldest one, keys and all). See
//! docs/security.md, "Third wave".

use crate::support;

use std::time::Duration;

use devportal::names::{
    DEFAULT_KUADRANT_NAMESPACE, KUADRANT_ELSEWHERE_REASON, MANAGED_SELECTOR, PRODUCT_LABEL,
    PRODUCT_NAMESPACE_LABEL, key_reason, product_condition, product_reason,
};
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIKey, APIKeyPhase, APIProduct};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use support::secrets::{api_key, secrets_of};
use support::{
    Devportal, Persona, TestNamespace, authorino, control_plane_with_devportal, eventually,
    fixtures, stdout_of,
};

use support::labels::{
    WAIT, enforcement_secrets, key_in_phase, product_condition_where, tenant_namespace,
};

async fn client(persona: Persona) -> Client {
    control_plane_with_devportal().client(persona).await
}

#[tokio::test]
async fn a_tenant_copying_bookshops_selector_gets_no_enforcement_secret_and_both_products_report_it()
 {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;

    // bookshop: the platform's route and policies, the owner's automatic product, a reader's key.
    let shop = TestNamespace::new("bookshop").await;
    fixtures::platform(
        &admin,
        &shop.name,
        fixtures::plan_policy("plans", "bookshop"),
        fixtures::auth_policy("auth", "bookshop"),
    )
    .await;
    let shop_products = Api::<APIProduct>::namespaced(client(Persona::Owner).await, &shop.name);
    shop_products
        .create(
            &PostParams::default(),
            &fixtures::product("bookshop", "bookshop"),
        )
        .await
        .expect("bookshop published");
    product_condition_where(&shop_products, "bookshop", product_condition::READY, |c| {
        c.status == "True"
    })
    .await;
    let reader_keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &shop.name);
    reader_keys
        .create(
            &PostParams::default(),
            &fixtures::key("reader", "bookshop", "gold"),
        )
        .await
        .expect("reader's key requested");
    let (reader, _) = key_in_phase(&reader_keys, "reader", APIKeyPhase::Approved).await;
    let reader_uid = reader.metadata.uid.clone().unwrap();
    let reader_value = eventually("reader's enforcement Secret", WAIT, || async {
        enforcement_secrets(&admin, &reader_uid)
            .await
            .first()
            .map(api_key)
    })
    .await;

    // The tenant reads bookshop's selector off its public product status and copies it, with the
    // tier, into the AuthPolicy of their own API.
    let tenant = tenant_namespace("copycat").await;
    let tenant_client = client(Persona::Consumer2).await;
    let bookshop_scheme = Api::<APIProduct>::namespaced(tenant_client.clone(), &shop.name)
        .get("bookshop")
        .await
        .expect("products are public")
        .status
        .unwrap()
        .discovered_auth_scheme
        .unwrap();
    let copied: LabelSelector = bookshop_scheme
        .authentication
        .into_values()
        .find_map(|rule| rule.api_key)
        .unwrap()
        .selector;
    let mut auth = fixtures::auth_policy("auth", "copy");
    for rule in auth
        .spec
        .rules
        .as_mut()
        .unwrap()
        .authentication
        .values_mut()
    {
        rule.api_key.as_mut().unwrap().selector = copied.clone();
    }
    let create = PostParams::default();
    Api::<devportal::resources::gateway::HTTPRoute>::namespaced(
        tenant_client.clone(),
        &tenant.name,
    )
    .create(&create, &fixtures::route("copy"))
    .await
    .expect("the tenant writes their own route");
    Api::<devportal::resources::kuadrant::PlanPolicy>::namespaced(
        tenant_client.clone(),
        &tenant.name,
    )
    .create(&create, &fixtures::plan_policy("plans", "copy"))
    .await
    .expect("the tenant writes their own PlanPolicy");
    Api::<AuthPolicy>::namespaced(tenant_client.clone(), &tenant.name)
        .create(&create, &auth)
        .await
        .expect("the tenant writes their own AuthPolicy");
    // What the gateway and kuadrant-operator would write.
    fixtures::accept_route(&admin, &tenant.name, "copy").await;
    fixtures::enforce_auth_policy(&admin, &tenant.name, "auth").await;
    let tenant_products = Api::<APIProduct>::namespaced(tenant_client.clone(), &tenant.name);
    tenant_products
        .create(&create, &fixtures::product("copycat", "copy"))
        .await
        .expect("the tenant publishes an automatic product of their own");

    // Both products report the overlap, naming each other; neither can be safe with an
    // identical selector, so both are refused.
    let copycat_auth = product_condition_where(
        &tenant_products,
        "copycat",
        product_condition::AUTH_POLICY,
        |c| c.reason == product_reason::SELECTOR_OVERLAP,
    )
    .await;
    assert_eq!(copycat_auth.status, "False", "{}", copycat_auth.message);
    assert!(
        copycat_auth
            .message
            .contains(&format!("APIProduct {}/bookshop", shop.name)),
        "{}",
        copycat_auth.message
    );
    let copycat_ready =
        product_condition_where(&tenant_products, "copycat", product_condition::READY, |c| {
            c.status == "False"
        })
        .await;
    assert_eq!(copycat_ready.reason, product_reason::SELECTOR_OVERLAP);
    // Until the tenant's product is seen, the overlap names its AuthPolicy "(of no APIProduct)";
    // once it is, the product.
    let copycat_product = format!("APIProduct {}/copycat", tenant.name);
    let bookshop_auth = product_condition_where(
        &shop_products,
        "bookshop",
        product_condition::AUTH_POLICY,
        |c| c.reason == product_reason::SELECTOR_OVERLAP && c.message.contains(&copycat_product),
    )
    .await;
    assert!(
        bookshop_auth
            .message
            .contains(&format!("APIProduct {}/copycat", tenant.name)),
        "{}",
        bookshop_auth.message
    );

    // The tenant's auto-approved key gets no enforcement Secret: the gateway refuses it.
    let tenant_keys = Api::<APIKey>::namespaced(tenant_client.clone(), &tenant.name);
    tenant_keys
        .create(&create, &fixtures::key("minted", "copycat", "gold"))
        .await
        .expect("the tenant requests a key of their own product");
    let (minted, failed) = key_in_phase(&tenant_keys, "minted", APIKeyPhase::Failed).await;
    assert_eq!(
        failed.reason,
        key_reason::SELECTOR_OVERLAP,
        "{}",
        failed.message
    );
    let minted_uid = minted.metadata.uid.clone().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(
        enforcement_secrets(&admin, &minted_uid).await.is_empty(),
        "no enforcement Secret for the copied selector's key"
    );
    // bookshop's reader is withdrawn too (its value kept) while the selectors are identical.
    let (_, withdrawn) = key_in_phase(&reader_keys, "reader", APIKeyPhase::Failed).await;
    assert_eq!(withdrawn.reason, key_reason::SELECTOR_OVERLAP);
    eventually("reader's enforcement Secret withdrawn", WAIT, || async {
        enforcement_secrets(&admin, &reader_uid)
            .await
            .is_empty()
            .then_some(())
    })
    .await;

    // The way out: bookshop's platform adds bookshop's own product labels to its selector (its
    // Secrets already carry them; nobody else's can). The tenant's copied selector still accepts
    // bookshop's keys, a one-way overlap: the tenant, who came later, stays refused, and
    // bookshop, there first, works again.
    let pinned_too = |selector: &LabelSelector| {
        let mut labels = selector.match_labels.clone().unwrap_or_default();
        labels.insert(PRODUCT_NAMESPACE_LABEL.to_string(), shop.name.clone());
        labels.insert(PRODUCT_LABEL.to_string(), "bookshop".to_string());
        LabelSelector {
            match_labels: Some(labels),
            match_expressions: selector.match_expressions.clone(),
        }
    };
    let shop_policies = Api::<AuthPolicy>::namespaced(admin.clone(), &shop.name);
    let set_selector = |selector: LabelSelector| {
        let shop_policies = shop_policies.clone();
        async move {
            let mut policy = shop_policies.get("auth").await.unwrap();
            for rule in policy
                .spec
                .rules
                .as_mut()
                .unwrap()
                .authentication
                .values_mut()
            {
                rule.api_key.as_mut().unwrap().selector = selector.clone();
            }
            shop_policies
                .replace("auth", &PostParams::default(), &policy)
                .await
                .expect("bookshop's selector changed");
        }
    };
    set_selector(pinned_too(&copied)).await;
    key_in_phase(&reader_keys, "reader", APIKeyPhase::Approved).await;
    let kept = product_condition_where(
        &shop_products,
        "bookshop",
        product_condition::AUTH_POLICY,
        |c| c.status == "True",
    )
    .await;
    assert_eq!(
        kept.reason,
        product_reason::SELECTOR_OVERLAP,
        "{}",
        kept.message
    );
    assert!(kept.message.contains("keeps its keys"), "{}", kept.message);
    let (_, still) = key_in_phase(&tenant_keys, "minted", APIKeyPhase::Failed).await;
    assert_eq!(
        still.reason,
        key_reason::SELECTOR_OVERLAP,
        "{}",
        still.message
    );
    assert!(enforcement_secrets(&admin, &minted_uid).await.is_empty());

    // With only the product labels in bookshop's selector, nothing overlaps any more: each
    // product's keys work on its own API only.
    let pinned = LabelSelector {
        match_labels: Some(
            [
                (PRODUCT_NAMESPACE_LABEL.to_string(), shop.name.clone()),
                (PRODUCT_LABEL.to_string(), "bookshop".to_string()),
            ]
            .into(),
        ),
        match_expressions: None,
    };
    set_selector(pinned.clone()).await;
    for (products, name) in [(&shop_products, "bookshop"), (&tenant_products, "copycat")] {
        let found = product_condition_where(products, name, product_condition::AUTH_POLICY, |c| {
            c.reason != product_reason::SELECTOR_OVERLAP
        })
        .await;
        assert_eq!(found.status, "True", "{name}: {}", found.message);
    }
    key_in_phase(&reader_keys, "reader", APIKeyPhase::Approved).await;
    let restored = eventually("reader's enforcement Secret restored", WAIT, || async {
        enforcement_secrets(&admin, &reader_uid).await.pop()
    })
    .await;
    assert_eq!(
        api_key(&restored),
        reader_value,
        "the reader keeps their value"
    );
    let policy = shop_policies.get("auth").await.unwrap();
    authorino::indexed_key(&restored, &policy, DEFAULT_KUADRANT_NAMESPACE);
    // With no overlap left, the tenant's own product works — for the tenant's API only.
    key_in_phase(&tenant_keys, "minted", APIKeyPhase::Approved).await;
    let minted_secret = eventually("the tenant's enforcement Secret", WAIT, || async {
        enforcement_secrets(&admin, &minted_uid).await.pop()
    })
    .await;
    let labels = minted_secret.metadata.labels.clone().unwrap_or_default();
    assert!(
        !authorino::selector_matches(&pinned, &labels),
        "bookshop's AuthConfig does not select the tenant's key: {labels:?}"
    );
    assert_eq!(labels[PRODUCT_NAMESPACE_LABEL], tenant.name);
}

#[tokio::test]
async fn a_kuadrant_cr_a_tenant_creates_is_reported_and_never_followed() {
    control_plane_with_devportal();
    let admin = client(Persona::Admin).await;
    let kept = TestNamespace::new("kept-keys").await;
    fixtures::published_product(
        &admin,
        &admin,
        &kept.name,
        devportal::resources::ApprovalMode::Automatic,
    )
    .await;
    fixtures::product_ready(&admin, &kept.name, WAIT).await;
    let keys = Api::<APIKey>::namespaced(client(Persona::Consumer).await, &kept.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("mine", "toys", "gold"),
    )
    .await
    .expect("key requested");
    let (key, _) = key_in_phase(&keys, "mine", APIKeyPhase::Approved).await;
    let uid = key.metadata.uid.unwrap();
    let before = eventually("the enforcement Secret", WAIT, || async {
        enforcement_secrets(&admin, &uid).await.pop()
    })
    .await;
    assert_eq!(
        before.metadata.namespace.as_deref(),
        Some(DEFAULT_KUADRANT_NAMESPACE)
    );

    // A tenant installs "Kuadrant" in their own namespace, as OLM's aggregated `edit` allows.
    let tenant = tenant_namespace("kuadrant-squat").await;
    let manifest = format!(
        "apiVersion: kuadrant.io/v1beta1\nkind: Kuadrant\nmetadata: {{name: kuadrant, namespace: {}}}\nspec: {{}}\n",
        tenant.name
    );
    stdout_of(&control_plane_with_devportal().kubectl(
        Persona::Consumer2,
        &["apply", "-f", "-"],
        Some(&manifest),
    ));

    // Reported: a warning Event on the CR naming the flag an operator would set if it were real
    // (devportal lists Kuadrant CRs every --kuadrant-poll-interval, 1m by default)...
    let event = eventually(
        "the warning Event on the tenant's Kuadrant CR",
        Duration::from_secs(150),
        || async {
            Api::<Event>::namespaced(admin.clone(), &tenant.name)
                .list(&ListParams::default())
                .await
                .ok()?
                .items
                .into_iter()
                .find(|e| e.reason.as_deref() == Some(KUADRANT_ELSEWHERE_REASON))
        },
    )
    .await;
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let note = event.note.unwrap_or_default();
    assert!(
        note.contains(&format!("--enforcement-namespace={}", tenant.name))
            && note.contains("does not follow"),
        "{note}"
    );
    assert_eq!(
        event.regarding.and_then(|r| r.kind).as_deref(),
        Some("Kuadrant")
    );
    // ... and the gauge an alert watches.
    let metrics = reqwest::get(format!(
        "{}/metrics",
        control_plane_with_devportal().devportal_admin_url()
    ))
    .await
    .unwrap()
    .text()
    .await
    .unwrap();
    let mismatch = metrics
        .lines()
        .find_map(|l| l.strip_prefix("devportal_kuadrant_namespace_mismatch "))
        .expect("the mismatch gauge");
    assert!(mismatch.parse::<f64>().unwrap() >= 1.0, "{mismatch}");

    // Never followed: the key's Secret stays where it was, nothing lands in the tenant's namespace.
    let after = enforcement_secrets(&admin, &uid).await;
    assert_eq!(after.len(), 1, "{after:?}");
    assert_eq!(after[0].metadata.name, before.metadata.name);
    assert_eq!(api_key(&after[0]), api_key(&before));
    let planted = Api::<Secret>::namespaced(admin.clone(), &tenant.name)
        .list(&ListParams::default().labels(MANAGED_SELECTOR))
        .await
        .unwrap();
    assert!(planted.items.is_empty(), "{:?}", planted.items);
    assert_eq!(secrets_of(&admin, &kept.name, "mine").await.len(), 2);

    // An upgraded controller started without the flag, where the oldest Kuadrant CR is not in
    // kuadrant-system (earlier releases followed it), refuses to start and names the flag: it
    // never moves keys by guessing.
    let mut upgraded = Devportal::controller(&["--lease-name", "wave3-upgrade"], &[]);
    let exit = upgraded
        .wait_exit(Duration::from_secs(60))
        .expect("the controller exits");
    assert!(!exit.success());
    let log = upgraded.log_text();
    assert!(
        log.contains(&format!("--enforcement-namespace={}", tenant.name))
            && log.contains("--enforcement-namespace=kuadrant-system"),
        "{log}"
    );
}
