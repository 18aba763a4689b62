//! Issue 28: the owner's inbox tells the truth, and `kubectl wait` works on keys. Through the real
//! API server with devportal's webhook and controller running:
//!
//! - `kubectl devportal requests` shows each request's real phase (Expired, Approved, Denied), by
//!   default only the requests that await a decision, every one with `--all`;
//! - approving a request whose key expired is refused by the webhook with a clear message (no
//!   APIKeyApproval, no `ApprovalApplied` Event); approving or denying twice is a no-op that says
//!   so and creates no second APIKeyApproval;
//! - `kubectl wait --for=condition=Ready apikey/<name>` returns once the key is Approved and
//!   enforced, and the `Ready` condition says why not before (and after a denial).

use crate::support;

use devportal::names::key_condition::READY;
use devportal::names::key_reason::ENFORCED;
use devportal::names::request_reason::APPROVAL_APPLIED;
use devportal::resources::{APIKey, APIKeyApproval, APIKeyPhase};
use k8s_openapi::api::core::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::Value;
use support::plugin::{
    OWNER, failed, impersonating_kubeconfig, inbox_until, ok, request_of, run_with, setting,
};
use support::reviews::{active, console_review, manual_product, phase, requested};
use support::{Persona, control_plane_with_devportal, eventually};

/// The consumer requests `name` for `products/toys` at gold, expiring at `expires_at` if given.
async fn request(consumers: &str, products: &str, name: &str, expires_at: Option<Timestamp>) {
    let consumer = control_plane_with_devportal()
        .client(Persona::Consumer)
        .await;
    let mut key = support::fixtures::key(name, "toys", "gold");
    key.spec.api_product_ref.namespace = Some(products.into());
    key.spec.expires_at = expires_at.map(Time);
    Api::<APIKey>::namespaced(consumer, consumers)
        .create(&PostParams::default(), &key)
        .await
        .expect("the consumer requests a key");
}

/// The APIKeyApprovals in `ns` that review `request`.
async fn approvals_of(admin: &Client, ns: &str, request: &str) -> Vec<APIKeyApproval> {
    Api::<APIKeyApproval>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("approvals listed")
        .items
        .into_iter()
        .filter(|a| a.spec.api_key_request_ref.name == request)
        .collect()
}

/// The `ApprovalApplied` Events in `ns` whose message names the APIKey `key_ns/key`.
async fn applied_events(admin: &Client, ns: &str, key_ns: &str, key: &str) -> usize {
    let needle = format!("applied to APIKey {key_ns}/{key}");
    Api::<Event>::namespaced(admin.clone(), ns)
        .list(&ListParams::default())
        .await
        .expect("events listed")
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some(APPROVAL_APPLIED))
        .filter(|e| e.message.as_deref().is_some_and(|m| m.contains(&needle)))
        .count()
}

/// The table row of `kubectl devportal requests` for the key `key_ns/key`, if listed.
fn row<'a>(table: &'a str, key_ns: &str, key: &str) -> Option<&'a str> {
    let cell = format!("{key_ns}/{key}");
    table
        .lines()
        .find(|line| line.split_whitespace().any(|c| c == cell))
}

#[tokio::test]
async fn the_inbox_shows_real_phases_lists_what_awaits_a_decision_and_refuses_what_cannot_change() {
    let (products, consumers) = setting().await;
    let (products, consumers) = (products.name.as_str(), consumers.name.as_str());
    let admin = control_plane_with_devportal().client(Persona::Admin).await;
    let kubeconfig = impersonating_kubeconfig(OWNER, products);
    let owner = |args: &[&str]| {
        let mut all = vec!["--context", OWNER];
        all.extend_from_slice(args);
        run_with(&kubeconfig, &all)
    };
    let soon = Timestamp::now() + SignedDuration::from_secs(6);
    request(consumers, products, "waiting", None).await;
    request(consumers, products, "granted", None).await;
    request(consumers, products, "lapsed", Some(soon)).await;
    let names: Vec<(String, String)> = inbox_until(&kubeconfig, "three requests", |items| {
        let of = |key: &str| -> Option<(String, String)> {
            let request = request_of(items, key)?;
            Some((
                key.into(),
                request["metadata"]["name"].as_str()?.to_string(),
            ))
        };
        Some(vec![of("waiting")?, of("granted")?, of("lapsed")?])
    })
    .await;
    let request = |key: &str| names.iter().find(|(k, _)| k == key).unwrap().1.clone();

    ok(owner(&["approve", &request("granted")]));
    let phase_of = |items: &[Value], key: &str| -> Option<String> {
        Some(
            request_of(items, key)?["status"]["phase"]
                .as_str()?
                .to_string(),
        )
    };
    inbox_until(
        &kubeconfig,
        "granted Approved and lapsed Expired",
        |items| {
            (phase_of(items, "granted")? == "Approved" && phase_of(items, "lapsed")? == "Expired")
                .then_some(())
        },
    )
    .await;

    // The default view: only what awaits a decision; --all: every request, with its real phase.
    let pending = ok(owner(&["requests"]));
    assert!(
        row(&pending, consumers, "waiting").is_some_and(|r| r.contains("Pending")),
        "{pending}"
    );
    assert_eq!(row(&pending, consumers, "granted"), None, "{pending}");
    assert_eq!(row(&pending, consumers, "lapsed"), None, "{pending}");
    let all = ok(owner(&["requests", "--all"]));
    assert!(
        row(&all, consumers, "lapsed").is_some_and(|r| r.contains("Expired")),
        "{all}"
    );
    assert!(
        row(&all, consumers, "granted").is_some_and(|r| r.contains("Approved")),
        "{all}"
    );

    // An expired request: refused with the webhook's reason, nothing created, no Event.
    let refused = failed(owner(&["approve", &request("lapsed")]));
    assert!(
        refused.contains(&format!("its APIKey {consumers}/lapsed expired at"))
            && refused.contains("the consumer requests a new key"),
        "{refused}"
    );
    let refused = failed(owner(&["deny", &request("lapsed"), "--reason", "late"]));
    assert!(refused.contains("cannot be reviewed"), "{refused}");
    assert!(
        approvals_of(&admin, products, &request("lapsed"))
            .await
            .is_empty()
    );
    assert_eq!(
        applied_events(&admin, products, consumers, "lapsed").await,
        0
    );

    // Approving twice: a no-op that says so, no second APIKeyApproval.
    let again = ok(owner(&["approve", &request("granted")]));
    assert!(
        again.contains("is already approved by plugin-owner") && again.contains("nothing to do"),
        "{again}"
    );
    assert_eq!(
        approvals_of(&admin, products, &request("granted"))
            .await
            .len(),
        1
    );
    ok(owner(&[
        "deny",
        &request("granted"),
        "--reason",
        "no longer needed",
    ]));
    phase(&admin, consumers, "granted", APIKeyPhase::Denied).await;
    inbox_until(&kubeconfig, "granted Denied in the inbox", |items| {
        (phase_of(items, "granted")? == "Denied").then_some(())
    })
    .await;
    let again = ok(owner(&[
        "deny",
        &request("granted"),
        "--reason",
        "still no",
    ]));
    assert!(again.contains("is already denied"), "{again}");
    assert_eq!(
        approvals_of(&admin, products, &request("granted"))
            .await
            .len(),
        2
    );
    assert_eq!(
        applied_events(&admin, products, consumers, "granted").await,
        2,
        "one Event per decision made"
    );
}

/// The `Ready` condition of the key `ns/name`: (status, reason).
async fn ready(admin: &Client, ns: &str, name: &str) -> Option<(String, String)> {
    let key = Api::<APIKey>::namespaced(admin.clone(), ns)
        .get(name)
        .await
        .ok()?;
    let c = key
        .status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == READY)?;
    Some((c.status, c.reason))
}

#[tokio::test]
async fn kubectl_wait_for_ready_returns_once_the_key_is_approved_and_enforced() {
    let (ns, admin) = manual_product("ready").await;
    let ns = ns.name.as_str();
    let cp = control_plane_with_devportal();
    let (_, request) = requested(ns, "waited").await;
    let not_yet = eventually(
        "Ready=False AwaitingApproval",
        support::reviews::WAIT,
        || async {
            ready(&admin, ns, "waited")
                .await
                .filter(|r| r == &("False".into(), "AwaitingApproval".into()))
        },
    )
    .await;
    assert_eq!(not_yet.0, "False");
    let waiting = cp.kubectl(
        Persona::Consumer,
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "apikey/waited",
            "--timeout=2s",
        ],
        None,
    );
    assert!(!waiting.status.success(), "a Pending key is not Ready");

    let owner = cp.client(Persona::Owner).await;
    Api::<APIKeyApproval>::namespaced(owner.clone(), ns)
        .create(
            &PostParams::default(),
            &console_review("waited-approval", &request, true, "owner"),
        )
        .await
        .expect("the owner approves");
    let waited = cp.kubectl(
        Persona::Consumer,
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready",
            "apikey/waited",
            "--timeout=60s",
        ],
        None,
    );
    let out = support::stdout_of(&waited);
    assert!(
        out.contains("apikey.devportal.kuadrant.io/waited condition met"),
        "{out}"
    );
    // Ready means enforced: the enforcement Secret is there when the wait returns.
    assert_eq!(support::reviews::enforced(&admin, ns, "waited").await, 1);
    active(&admin, ns, "waited").await;
    assert_eq!(
        ready(&admin, ns, "waited").await,
        Some(("True".into(), ENFORCED.into()))
    );

    // Denied: Ready goes False with the phase's reason, and the key stops being enforced.
    Api::<APIKeyApproval>::namespaced(owner, ns)
        .create(
            &PostParams::default(),
            &console_review("waited-denial", &request, false, "owner"),
        )
        .await
        .expect("the owner denies");
    let unready = cp.kubectl(
        Persona::Consumer,
        &[
            "wait",
            "-n",
            ns,
            "--for=condition=Ready=false",
            "apikey/waited",
            "--timeout=60s",
        ],
        None,
    );
    support::stdout_of(&unready);
    assert_eq!(
        ready(&admin, ns, "waited").await,
        Some(("False".into(), "Denied".into()))
    );
    assert_eq!(support::reviews::enforced(&admin, ns, "waited").await, 0);
}
