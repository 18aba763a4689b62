//! APIKeyPolicies through the real API server, with `devportal run` enforcing them. Each test's
//! policies select only the test's own namespace (tests/support/policies.rs), so the tests run
//! side by side with everyone else's.

use crate::support;

use std::time::Duration;

use devportal::names::key_reason::{APPROVAL_REQUIRED_BY_POLICY, POLICY_VIOLATION};
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use support::access::{assert_forbidden, expect_can_i, qualified};
use support::policies::{
    CACHE_WAIT, ScopedPolicy, policies, scoped_spec, until_admitted, until_refused,
};
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

/// A namespace with the usual platform and the product `toys` (gold, silver) in `mode`, its
/// plans discovered; and the consumer's keys there.
async fn setup(prefix: &str, mode: ApprovalMode) -> (TestNamespace, Api<APIKey>) {
    control_plane_with_devportal();
    let (ns, admin) = fixtures::published_namespace(prefix, Persona::Owner, mode).await;
    fixtures::product_ready(&admin, &ns.name, Duration::from_secs(60)).await;
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let keys = Api::namespaced(consumer, &ns.name);
    (ns, keys)
}

fn refusal(result: Result<APIKey, kube::Error>) -> (u16, String) {
    match result {
        Err(kube::Error::Api(status)) => (status.code, status.message),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn expiring(name: &str, tier: &str, days: i64) -> APIKey {
    let mut key = fixtures::key(name, "toys", tier);
    let at = Timestamp::now() + SignedDuration::from_hours(24 * days);
    key.spec.expires_at = Some(Time(at));
    key
}

#[tokio::test]
async fn deny_policies_combine_refuse_naming_policy_and_rule_and_relax_when_deleted() {
    let (ns, keys) = setup("pol-deny", ApprovalMode::Manual).await;
    let tiers = ScopedPolicy::create(
        &ns.name,
        "silver-only",
        "Deny",
        json!({"tiers": {"allowed": ["silver"]}}),
    )
    .await;
    let month =
        ScopedPolicy::create(&ns.name, "month", "Deny", json!({"maxLifetime": "30d"})).await;
    let gold = fixtures::key("gold", "toys", "gold");
    let (code, message) = until_refused(&ns.name, &gold, &tiers.name).await;
    assert_eq!(code, 403);
    assert!(
        message.contains(&format!(
            "APIKeyPolicy \"{}\" (rule tiers, Deny): tier \"gold\" is not allowed here; choose one of: silver",
            tiers.name
        )),
        "{message}"
    );
    // Both policies apply: a silver key living 60 days breaks the other.
    let long = expiring("long", "silver", 60);
    let (code, message) = until_refused(&ns.name, &long, &month.name).await;
    assert_eq!(code, 403);
    assert!(message.contains("(rule maxLifetime, Deny)"), "{message}");
    // A key without an expiry gets the policy's 30 days (not the flag's 365) and passes both.
    let stored = keys
        .create(
            &PostParams::default(),
            &fixtures::key("short", "toys", "silver"),
        )
        .await
        .expect("a silver key within the lifetime is admitted");
    let expires = stored.spec.expires_at.expect("an expiry was set").0;
    let month_from_now = Timestamp::now() + SignedDuration::from_hours(24 * 30);
    assert!(expires <= month_from_now, "{expires} is within 30 days");
    assert!(
        expires > month_from_now - SignedDuration::from_mins(10),
        "{expires}"
    );
    assert!(keys.get_opt("gold").await.unwrap().is_none());

    // Deleting a policy relaxes what it enforced.
    tiers.delete().await;
    until_admitted(&ns.name, &expiring("gold", "gold", 10)).await;
    keys.create(&PostParams::default(), &expiring("gold", "gold", 10))
        .await
        .expect("gold is allowed once the policy is gone");
    month.delete().await;
    until_admitted(&ns.name, &long).await;
}

#[tokio::test]
async fn a_policy_key_limit_refuses_the_extra_key_and_relaxes_when_deleted() {
    let (ns, keys) = setup("pol-limit", ApprovalMode::Manual).await;
    let one = ScopedPolicy::create(
        &ns.name,
        "one-key",
        "Deny",
        json!({"maxKeysPerRequesterPerProduct": 1}),
    )
    .await;
    keys.create(
        &PostParams::default(),
        &fixtures::key("first", "toys", "gold"),
    )
    .await
    .expect("the first key is within the limit");
    let second = fixtures::key("second", "toys", "gold");
    let (code, message) = until_refused(&ns.name, &second, &one.name).await;
    assert_eq!(code, 403);
    assert!(
        message.contains(&format!(
            "the limit is 1 (APIKeyPolicy \"{}\", rule maxKeysPerRequesterPerProduct",
            one.name
        )),
        "{message}"
    );
    let (_, refused) = refusal(keys.create(&PostParams::default(), &second).await);
    assert!(refused.contains(&one.name), "{refused}");
    assert!(keys.get_opt("second").await.unwrap().is_none());

    one.delete().await;
    until_admitted(&ns.name, &second).await;
    keys.create(&PostParams::default(), &second)
        .await
        .expect("the flag's limit (5) admits it once the policy is gone");
}

#[tokio::test]
async fn a_warn_policy_warns_and_an_audit_policy_reports_existing_keys() {
    let (ns, keys) = setup("pol-audit", ApprovalMode::Manual).await;
    for name in ["old-a", "old-b"] {
        keys.create(&PostParams::default(), &fixtures::key(name, "toys", "gold"))
            .await
            .expect("keys from before the policy");
    }
    let audit = ScopedPolicy::create(
        &ns.name,
        "no-gold",
        "Audit",
        json!({"tiers": {"forbidden": ["gold"]}}),
    )
    .await;
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let status = eventually("the audit of the existing keys", CACHE_WAIT, || async {
        let policy = policies(admin.clone()).get(&audit.name).await.ok()?;
        let status = policy.status?;
        (status.violations.as_ref()?.count == 2).then_some(status)
    })
    .await;
    let violations = status.violations.unwrap();
    assert_eq!(violations.by_rule["tiers"], 2);
    let listed: Vec<_> = violations.keys.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(listed, ["old-a", "old-b"]);
    assert!(violations.keys.iter().all(|v| v.namespace == ns.name));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "True")
    );
    // Reported, never revoked: the keys are as they were.
    for name in ["old-a", "old-b"] {
        let key = keys.get(name).await.unwrap();
        assert_ne!(key.status.and_then(|s| s.phase), Some(APIKeyPhase::Denied));
    }
    // A Warning Event on each key names the policy and the rule.
    let events = Api::<Event>::namespaced(admin.clone(), &ns.name);
    eventually("PolicyViolation events on the keys", CACHE_WAIT, || async {
        let listed = events.list(&ListParams::default()).await.ok()?;
        let about: Vec<_> = listed
            .items
            .iter()
            .filter(|e| e.reason.as_deref() == Some(POLICY_VIOLATION))
            .filter(|e| e.note.as_deref().is_some_and(|n| n.contains(&audit.name)))
            .filter_map(|e| e.regarding.as_ref()?.name.clone())
            .collect();
        (about.contains(&"old-a".to_string()) && about.contains(&"old-b".to_string())).then_some(())
    })
    .await;
    // The metric, for this policy.
    let url = format!(
        "{}/metrics",
        control_plane_with_devportal().devportal_admin_url()
    );
    let series = format!(
        "devportal_policy_violations{{policy=\"{}\",rule=\"tiers\"}} 2",
        audit.name
    );
    // The audit sets it once it has written every policy's status and Events.
    eventually(&format!("{series} on /metrics"), CACHE_WAIT, || async {
        let text = reqwest::get(&url).await.ok()?.text().await.ok()?;
        text.contains(&series).then_some(())
    })
    .await;

    // Audit admits a new gold key silently; Warn admits it with a warning naming the policy.
    let warn = ScopedPolicy::create(
        &ns.name,
        "warn-gold",
        "Warn",
        json!({"tiers": {"forbidden": ["gold"]}}),
    )
    .await;
    let manifest = format!(
        "apiVersion: devportal.kuadrant.io/v1alpha1\nkind: APIKey\nmetadata: {{name: NAME, namespace: {}}}\n\
         spec:\n  apiProductRef: {{name: toys}}\n  planTier: gold\n",
        ns.name
    );
    let expected = format!("APIKeyPolicy \"{}\" (rule tiers, Warn)", warn.name);
    let stderr = eventually("a warning from the Warn policy", CACHE_WAIT, || async {
        let manifest = manifest.replace("NAME", "probe");
        let out = control_plane_with_devportal().kubectl(
            Persona::Consumer,
            &["create", "--dry-run=server", "-f", "-"],
            Some(&manifest),
        );
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.success() && stderr.contains(&expected)).then_some(stderr)
    })
    .await;
    assert!(
        !stderr.contains(&audit.name),
        "an Audit policy says nothing at admission: {stderr}"
    );
    let out = control_plane_with_devportal().kubectl(
        Persona::Consumer,
        &["create", "-f", "-"],
        Some(&manifest.replace("NAME", "new-gold")),
    );
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains(&expected));
}

#[tokio::test]
async fn a_manual_approval_policy_holds_an_automatic_products_key_for_an_owner() {
    let (ns, keys) = setup("pol-manual", ApprovalMode::Automatic).await;
    let owners =
        ScopedPolicy::create(&ns.name, "owners", "Deny", json!({"manualApproval": true})).await;
    let probe = fixtures::key("probe", "toys", "gold");
    eventually("the webhook to see the policy", CACHE_WAIT, || async {
        let would = until_admitted(&ns.name, &probe).await;
        would.spec.approval.is_none().then_some(())
    })
    .await;
    keys.create(
        &PostParams::default(),
        &fixtures::key("held", "toys", "gold"),
    )
    .await
    .expect("admitted, to wait for an owner");
    let held = eventually("the key to wait for an owner", CACHE_WAIT, || async {
        let key = keys.get("held").await.ok()?;
        let status = key.status.clone()?;
        let waiting = status.phase == Some(APIKeyPhase::Pending)
            && status
                .conditions
                .iter()
                .any(|c| c.type_ == "Pending" && c.reason == APPROVAL_REQUIRED_BY_POLICY);
        waiting.then_some(key)
    })
    .await;
    assert!(
        held.spec.approval.is_none(),
        "no automatic approval recorded"
    );
    let message = &held.status.unwrap().conditions[0].message;
    assert!(message.contains(&owners.name), "{message}");

    // An owner's approval lets it through.
    let owner: Client = control_plane_with_devportal().client(Persona::Owner).await;
    Api::<APIKey>::namespaced(owner, &ns.name)
        .patch(
            "held",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true}}})),
        )
        .await
        .expect("the owner approves");
    eventually("the approved key", CACHE_WAIT, || async {
        let key = keys.get("held").await.ok()?;
        (key.status?.phase == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
}

#[tokio::test]
async fn only_admins_write_policies_everyone_reads_them_and_bad_ones_are_refused() {
    control_plane_with_devportal();
    let ns = TestNamespace::new("pol-rbac").await;
    let policy = |name: &str, spec: serde_json::Value| -> devportal::resources::APIKeyPolicy {
        serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
            "metadata": {"name": name}, "spec": spec
        }))
        .unwrap()
    };
    let spec = scoped_spec(&ns.name, "Deny", json!({"maxLifetime": "1d"}));
    for persona in [Persona::Consumer, Persona::Owner] {
        let client = control_plane_with_devportal().client(persona).await;
        let result = policies(client)
            .create(
                &PostParams::default(),
                &policy(&format!("{}-mine", ns.name), spec.clone()),
            )
            .await;
        match &result {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.reason, "Forbidden");
                assert!(
                    status.message.contains(
                        "cannot create resource \"apikeypolicies\" in API group \
                         \"devportal.kuadrant.io\" at the cluster scope"
                    ),
                    "the API server's RBAC refusal: {}",
                    status.message
                );
            }
            other => panic!("{persona:?} created a policy: {other:?}"),
        }
        assert_forbidden("a policy's deletion", {
            let client = control_plane_with_devportal().client(persona).await;
            policies(client)
                .delete("anything", &Default::default())
                .await
                .map(|_| ())
        });
    }
    let resource = qualified::<devportal::resources::APIKeyPolicy>();
    expect_can_i(
        Persona::Consumer,
        &[
            (true, &["get", &resource]),
            (true, &["list", &resource]),
            (false, &["create", &resource]),
            (false, &["update", &resource]),
        ],
    );
    // The admin writes one; a consumer reads it.
    let mine =
        ScopedPolicy::create(&ns.name, "read-me", "Warn", json!({"expiryRequired": true})).await;
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let read = policies(consumer)
        .get(&mine.name)
        .await
        .expect("a consumer reads policies");
    assert_eq!(read.spec.rules.expiry_required, Some(true));

    // The CRD's CEL rules refuse what cannot be enforced, saying why.
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    for (rules, needle) in [
        (
            json!({"maxLifetime": "0d"}),
            "maxLifetime must be a positive whole number",
        ),
        (
            json!({"maxLifetime": "a month"}),
            "maxLifetime must be a positive whole number",
        ),
        (
            json!({"tiers": {"allowed": ["a"], "forbidden": ["b"]}}),
            "set exactly one of allowed and forbidden",
        ),
        (
            json!({"maxKeysPerRequesterPerProduct": 0}),
            "must be at least 1",
        ),
    ] {
        let bad = policy(
            &format!("{}-bad", ns.name),
            scoped_spec(&ns.name, "Deny", rules),
        );
        match policies(admin.clone())
            .create(&PostParams::default(), &bad)
            .await
        {
            Err(kube::Error::Api(status)) => {
                assert_eq!(status.code, 422);
                assert!(status.message.contains(needle), "{}", status.message);
            }
            other => panic!("an invalid policy was stored: {other:?}"),
        }
    }
    let mut bad_selector = scoped_spec(&ns.name, "Deny", json!({}));
    bad_selector["match"]["consumerNamespaceSelector"] =
        json!({"matchExpressions": [{"key": "env", "operator": "Exists", "values": ["x"]}]});
    let refused = policies(admin)
        .create(
            &PostParams::default(),
            &policy(&format!("{}-bad", ns.name), bad_selector),
        )
        .await;
    assert!(
        matches!(&refused, Err(kube::Error::Api(s)) if s.code == 422 && s.message.contains("Exists or DoesNotExist without values")),
        "{refused:?}"
    );
}

#[tokio::test]
async fn the_example_policies_are_valid() {
    let path = support::repo_root().join("examples/apikeypolicies.yaml");
    let out = control_plane_with_devportal().kubectl(
        Persona::Admin,
        &["apply", "--dry-run=server", "-f", path.to_str().unwrap()],
        None,
    );
    let stdout = support::stdout_of(&out);
    for name in ["sandbox-free-30d", "partners-manual-approval", "gold-90d"] {
        assert!(
            stdout.contains(&format!(
                "apikeypolicy.devportal.kuadrant.io/{name} created (server dry run)"
            )),
            "{stdout}"
        );
    }
}

#[tokio::test]
async fn a_policy_raises_the_minimum_length_of_brought_keys() {
    let (ns, keys) = setup("pol-own", ApprovalMode::Automatic).await;
    let long = ScopedPolicy::create(
        &ns.name,
        "long-keys",
        "Deny",
        json!({"minOwnKeyLength": 48}),
    )
    .await;
    let value = "Aa1!".repeat(10); // 40 printable characters: enough for the flag (32), not the policy
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(json!({
        "metadata": {"name": "own"}, "stringData": {"api_key": value}
    }))
    .unwrap();
    Api::<k8s_openapi::api::core::v1::Secret>::namespaced(admin, &ns.name)
        .create(&PostParams::default(), &secret)
        .await
        .expect("the consumer's own key");
    // Whether the controller sees the policy before the key or after (a policy change reconciles
    // every key again), the key ends Failed.
    let mut brought = fixtures::key("brought", "toys", "gold");
    brought.spec.secret_ref = Some(devportal::resources::LocalSecretRef { name: "own".into() });
    keys.create(&PostParams::default(), &brought)
        .await
        .expect("the webhook does not read brought values");
    let failed = eventually("the brought key to be refused", CACHE_WAIT, || async {
        let status = keys.get("brought").await.ok()?.status?;
        let failed = status
            .conditions
            .into_iter()
            .find(|c| c.type_ == "Failed" && c.status == "True")?;
        (failed.reason == "KeyValueRejected").then_some(failed.message)
    })
    .await;
    assert!(failed.contains("minimum of 48"), "{failed}");
    assert!(
        failed.contains(&format!(
            "APIKeyPolicy \"{}\", rule minOwnKeyLength",
            long.name
        )),
        "{failed}"
    );
    assert!(!failed.contains(&value), "{failed}");
}

#[tokio::test]
async fn kubectl_devportal_products_shows_the_limits_policies_set_and_refusals_name_them() {
    let (ns, _keys) = setup("pol-plugin", ApprovalMode::Manual).await;
    let month = ScopedPolicy::create(
        &ns.name,
        "month",
        "Deny",
        json!({"maxLifetime": "30d", "maxKeysPerRequesterPerProduct": 1}),
    )
    .await;
    let table = support::plugin::ok(support::plugin::run(
        Persona::Consumer,
        &["products", "-n", &ns.name],
    ));
    assert!(
        table.contains(&format!(
            "APIKeyPolicies on keys requested in namespace {}:",
            ns.name
        )),
        "{table}"
    );
    let line = format!(
        "{}/toys: at most 1 keys per requester (APIKeyPolicy \"{0}-month\"); keys live at most 30d (APIKeyPolicy \"{0}-month\")",
        ns.name
    );
    assert!(table.contains(&line), "{line} missing from {table}");
    assert_eq!(month.name, format!("{}-month", ns.name));
    // A refused request names the policy and the rule, in the plugin as in kubectl.
    until_refused(&ns.name, &expiring("probe", "gold", 60), &month.name).await;
    let refused = support::plugin::failed(support::plugin::run(
        Persona::Consumer,
        &[
            "request",
            "toys",
            "--plan",
            "gold",
            "--expires-in",
            "60d",
            "-n",
            &ns.name,
        ],
    ));
    assert!(
        refused.contains(&format!(
            "APIKeyPolicy \"{}\" (rule maxLifetime, Deny)",
            month.name
        )),
        "{refused}"
    );
}
