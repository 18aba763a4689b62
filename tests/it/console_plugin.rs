//! The Kuadrant OpenShift console plugin (Kuadrant/kuadrant-console-plugin @ 0e33297e), unchanged,
//! against devportal through the real API server: its calls (replayed by `support::console`) made
//! as its users, each with the plugin's own RBAC (config/rbac/api-management/, copied under
//! tests/fixtures/console-plugin/): request (the APIKey, then the Secret with a 64-hex key owned by
//! it), my keys (phases as `getAPIKeyPhase` reads them, Expired and Failed too), the approval table
//! (`getRequestStatus`), approve, deny an active key (the console updates the APIKeyApproval),
//! bulk approve and reject, reveal from `spec.secretRef`, delete. See docs/front-ends.md.

use crate::support;

use devportal::names::PREVIOUS_REVIEWS_ANNOTATION;
use devportal::resources::{APIKeyApproval, APIKeyPhase, ApprovalMode};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::DeleteParams;
use kube::{Api, Client, ResourceExt};
use serde_json::Value;
use support::console::{Console, RequestForm, api_key_phase, request_status};
use support::reviews::{
    WAIT, active, as_user, enforced, grant, phase, refusal, rule, stays_unenforced,
};
use support::secrets::{api_key, enforcement, secrets_of};
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

/// The plugin's ClusterRoles, applied once for this binary (cluster-scoped, used by no one else).
async fn upstream_roles() {
    static APPLIED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    APPLIED
        .get_or_init(|| async {
            for role in ["api-consumer", "api-owner", "api-catalog-browser"] {
                let path = support::repo_root().join(format!(
                    "tests/fixtures/console-plugin/{role}-clusterrole.yaml"
                ));
                let applied = control_plane_with_devportal().kubectl(
                    Persona::Admin,
                    &["apply", "--server-side", "-f", path.to_str().unwrap()],
                    None,
                );
                support::stdout_of(&applied);
            }
        })
        .await;
}

/// A product namespace (the manual product `toys`, Ready) whose owner `owner` has the plugin's
/// `api-owner` role there, and a namespace of `developer`'s with the plugin's `api-consumer`
/// role; the admin, and the console of each user.
async fn setting(
    owner: &str,
    developer: &str,
) -> (TestNamespace, TestNamespace, Client, Console, Console) {
    upstream_roles().await;
    let products = TestNamespace::with_bindings("console", &[("api-owner", &[owner])]).await;
    let consumers =
        TestNamespace::with_bindings("console-dev", &[("api-consumer", &[developer])]).await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    fixtures::published_product(&admin, &admin, &products.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &products.name, WAIT).await;
    let owner = Console {
        client: as_user(owner).await,
        user: owner.into(),
    };
    let developer = Console {
        client: as_user(developer).await,
        user: developer.into(),
    };
    (products, consumers, admin, owner, developer)
}

fn form<'a>(name: &'a str, products: &'a str, tier: &'a str) -> RequestForm<'a> {
    RequestForm {
        name,
        product: (products, "toys"),
        tier,
        use_case: "checkout service",
        // The "30 days" preset: midnight UTC, 30 days on.
        expires_at: Some(
            (Timestamp::now() + SignedDuration::from_hours(24 * 30))
                .strftime("%Y-%m-%dT00:00:00.000Z")
                .to_string(),
        ),
    }
}

/// The key `name` in My API Keys once devportal has given it a phase.
async fn my_key(console: &Console, ns: &str, name: &str) -> Value {
    eventually(&format!("{name} in My API Keys"), WAIT, || async {
        let keys = console.my_api_keys(ns).await;
        keys.into_iter()
            .find(|k| k["metadata"]["name"] == name && k["status"]["phase"].is_string())
    })
    .await
}

/// The row of the key `key` in the owner's approval table, once it shows `status`.
async fn row(owner: &Console, ns: &str, key: &str, status: &str) -> Value {
    eventually(
        &format!("{key} {status} in the approval table"),
        WAIT,
        || async {
            let requests = owner.approval_requests(ns).await.ok()?;
            requests
                .into_iter()
                .find(|r| r["spec"]["apiKeyRef"]["name"] == key && request_status(r) == status)
        },
    )
    .await
}

/// My API Keys shows `name` in `wanted`, read as the console reads it and as devportal says it.
async fn shows(console: &Console, ns: &str, name: &str, wanted: &str) -> Value {
    let key = eventually(&format!("{name} {wanted} in My API Keys"), WAIT, || async {
        let key = my_key(console, ns, name).await;
        (key["status"]["phase"] == wanted).then_some(key)
    })
    .await;
    assert_eq!(
        api_key_phase(&key),
        wanted,
        "getAPIKeyPhase agrees with status.phase"
    );
    key
}

#[tokio::test]
async fn the_console_plugins_flows_work_unchanged_as_its_users() {
    const OWNER: &str = "console-owner";
    const DEV: &str = "console-dev";
    let (products, consumers, admin, owner, dev) = setting(OWNER, DEV).await;
    let (products, consumers) = (products.name.as_str(), consumers.name.as_str());

    // Request: the APIKey, then the Secret owned by it with a 64-hex key.
    let (key, value) = dev
        .request_api_key(consumers, form("checkout", products, "gold"))
        .await
        .expect("the console requests a key");
    assert!(
        value.len() == 64 && value.chars().all(|c| c.is_ascii_hexdigit()),
        "{value}"
    );
    let secret = Api::<Secret>::namespaced(admin.clone(), consumers)
        .get("checkout-secret")
        .await
        .unwrap();
    assert_eq!(
        secret.owner_references()[0].uid,
        key["metadata"]["uid"].as_str().unwrap()
    );
    assert_eq!(
        key["spec"]["requestedBy"]["email"],
        "console-dev@example.com"
    );
    shows(&dev, consumers, "checkout", "Pending").await;

    // The approval table; the plugin's api-owner role alone does not make a reviewer.
    let request = row(&owner, products, "checkout", "Pending").await;
    let refused = refusal("review", owner.approve_or_deny(&request, true, None).await);
    assert!(
        refused.contains("may not review requests for APIProduct")
            && refused.contains("needs verb \"approve\" on apiproducts"),
        "{refused}"
    );
    grant(
        &admin,
        products,
        OWNER,
        vec![rule("apiproducts", &["toys"], &["approve"])],
    )
    .await;

    // Approve: enforced with the console's value, revealed from spec.secretRef.
    owner
        .approve_or_deny(&request, true, None)
        .await
        .expect("the owner approves");
    active(&admin, consumers, "checkout").await;
    let enforced_value = api_key(enforcement(
        &secrets_of(&admin, consumers, "checkout").await,
    ));
    assert!(enforced_value == value, "the console's value is enforced");
    let approved = shows(&dev, consumers, "checkout", "Approved").await;
    assert!(
        dev.reveal(&approved).await.unwrap() == value,
        "the reveal shows the key"
    );
    let request = row(&owner, products, "checkout", "Approved").await;

    // Deny the active key: the console updates its APIKeyApproval; the key stops being enforced.
    owner
        .approve_or_deny(&request, false, Some("leaked in a public repository"))
        .await
        .expect("the console's update of the approval is admitted");
    stays_unenforced(&admin, consumers, "checkout", APIKeyPhase::Denied).await;
    shows(&dev, consumers, "checkout", "Denied").await;
    row(&owner, products, "checkout", "Denied").await;
    let approvals = Api::<APIKeyApproval>::namespaced(admin.clone(), products);
    let approval = approvals
        .get(&format!(
            "{}-approval",
            request["metadata"]["name"].as_str().unwrap()
        ))
        .await
        .unwrap();
    assert!(!approval.spec.approved);
    assert_eq!(approval.spec.reviewed_by.as_deref(), Some(OWNER));
    assert!(
        approval.annotations()[PREVIOUS_REVIEWS_ANNOTATION].contains("\"approved\":true"),
        "the approval it replaced is kept"
    );

    // Bulk approve and bulk reject, all at once as Promise.allSettled sends them.
    for name in ["bulk-a", "bulk-b", "bulk-c", "bulk-d"] {
        dev.request_api_key(consumers, form(name, products, "silver"))
            .await
            .expect("requested");
    }
    let mut pending = Vec::new();
    for name in ["bulk-a", "bulk-b", "bulk-c", "bulk-d"] {
        pending.push(row(&owner, products, name, "Pending").await);
    }
    for result in owner.bulk(&pending[..2], true, None).await {
        result.expect("bulk approve: every request fulfilled");
    }
    for result in owner
        .bulk(&pending[2..], false, Some("use the sandbox"))
        .await
    {
        result.expect("bulk reject: every request fulfilled");
    }
    for (name, wanted) in [
        ("bulk-a", "Approved"),
        ("bulk-b", "Approved"),
        ("bulk-c", "Denied"),
        ("bulk-d", "Denied"),
    ] {
        shows(&dev, consumers, name, wanted).await;
        row(&owner, products, name, wanted).await;
    }
    assert_eq!(enforced(&admin, consumers, "bulk-a").await, 1);
    assert_eq!(enforced(&admin, consumers, "bulk-c").await, 0);

    // Delete: the key, its request and (by owner reference) the console's Secret go.
    let key = dev.api_key(consumers, "bulk-a").await.unwrap();
    dev.delete_api_key(&key)
        .await
        .expect("the console deletes the key");
    let secrets = Api::<Secret>::namespaced(admin.clone(), consumers);
    eventually(
        "the key, its Secrets and its request gone",
        WAIT,
        || async {
            let key_gone = dev.api_key(consumers, "bulk-a").await.is_err();
            let secret_gone = secrets.get_opt("bulk-a-secret").await.ok()?.is_none();
            let requests = owner.approval_requests(products).await.ok()?;
            let request_gone = !requests
                .iter()
                .any(|r| r["spec"]["apiKeyRef"]["name"] == "bulk-a");
            let unenforced = enforced(&admin, consumers, "bulk-a").await == 0;
            (key_gone && secret_gone && request_gone && unenforced).then_some(())
        },
    )
    .await;
}

#[tokio::test]
async fn my_keys_shows_expired_and_failed_exactly_as_getapikeyphase_derives_them() {
    const OWNER: &str = "console-owner-2";
    const DEV: &str = "console-dev-2";
    let (products, consumers, admin, _owner, dev) = setting(OWNER, DEV).await;
    let (products, consumers) = (products.name.as_str(), consumers.name.as_str());
    let mut soon = form("lapsing", products, "gold");
    // A custom expiry date: `new Date(customExpiryDate).toISOString()`.
    soon.expires_at = Some(
        (Timestamp::now() + SignedDuration::from_secs(5))
            .strftime("%Y-%m-%dT%H:%M:%S%.3fZ")
            .to_string(),
    );
    dev.request_api_key(consumers, soon)
        .await
        .expect("requested");
    dev.request_api_key(consumers, form("orphaned", products, "gold"))
        .await
        .expect("requested");
    shows(&dev, consumers, "lapsing", "Expired").await;
    shows(&dev, consumers, "orphaned", "Pending").await;

    // The platform engineer withdraws the AuthPolicy: no key of the product can work.
    Api::<devportal::resources::kuadrant::AuthPolicy>::namespaced(admin.clone(), products)
        .delete("auth", &DeleteParams::default())
        .await
        .expect("AuthPolicy deleted");
    let failed = phase(&admin, consumers, "orphaned", APIKeyPhase::Failed).await;
    assert_eq!(
        failed
            .status
            .unwrap()
            .conditions
            .iter()
            .find(|c| c.type_ == "Failed")
            .unwrap()
            .reason,
        "NoAPIKeyAuth"
    );
    shows(&dev, consumers, "orphaned", "Failed").await;
    for key in dev.my_api_keys(consumers).await {
        assert_eq!(
            Some(api_key_phase(&key)),
            key["status"]["phase"].as_str(),
            "{}",
            key["metadata"]["name"]
        );
    }
}

#[tokio::test]
async fn with_devportals_consumer_role_alone_the_console_cannot_write_its_secret_and_rolls_back() {
    const DEV: &str = "console-dev-3";
    upstream_roles().await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let products = TestNamespace::new("console-rollback").await;
    fixtures::published_product(&admin, &admin, &products.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &products.name, WAIT).await;
    let consumers =
        TestNamespace::with_bindings("console-dev", &[("devportal-api-consumer", &[DEV])]).await;
    let dev = Console {
        client: as_user(DEV).await,
        user: DEV.into(),
    };
    let failed = dev
        .request_api_key(&consumers.name, form("no-secret", &products.name, "gold"))
        .await;
    let message = refusal("the Secret", failed);
    assert!(
        message.contains("cannot create resource \"secrets\""),
        "{message}"
    );
    eventually("the rolled-back APIKey gone", WAIT, || async {
        dev.api_key(&consumers.name, "no-secret")
            .await
            .is_err()
            .then_some(())
    })
    .await;
}
