//! Rotation across a controller crash: a controller that dies between updating the enforcement
//! Secret and the consumer Secret leaves the gateway enforcing the new value; its successor
//! finishes the rotation with that very value (the token on the enforcement Secret says the
//! rotation happened) instead of rotating again, and records it. A bare control plane (no
//! webhook): the test's own controllers are the only ones.

use crate::support;

use std::time::Duration;

use devportal::names::{ROTATION_ANNOTATION, ROTATION_REQUEST_ANNOTATION};
use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::secrets::{annotation, api_key, consumer, enforcement, secrets_of};
use support::serial::exclusive_cluster;
use support::{Devportal, Persona, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_crash_between_the_secret_writes_is_finished_not_repeated() {
    let _serial = exclusive_cluster().await;
    let (ns, admin) =
        fixtures::published_namespace("rotate-crash", Persona::Admin, ApprovalMode::Automatic)
            .await;
    let lease = ["--lease-name", "rotation-crash-test"];
    let mut crashing = Devportal::controller(
        &lease,
        &[("DEVPORTAL_CRASH_AT", "rotation-between-secrets")],
    );
    let keys = Api::<APIKey>::namespaced(control_plane().client(Persona::Consumer).await, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::requested_key("mine", "toys", "gold"),
    )
    .await
    .unwrap();
    let before = eventually("the key Approved with both Secrets", WAIT, || async {
        let key = keys.get("mine").await.ok()?;
        let secrets = secrets_of(&admin, &ns.name, "mine").await;
        (key.status?.phase == Some(APIKeyPhase::Approved) && secrets.len() == 2).then_some(secrets)
    })
    .await;
    let old = api_key(consumer(&before));

    let token = "2026-12-01T07:00:00Z";
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {ROTATION_REQUEST_ANNOTATION: token}}})),
    )
    .await
    .unwrap();
    let exit = crashing
        .wait_exit(WAIT)
        .expect("the controller dies between the two Secret writes");
    assert_eq!(exit.code(), Some(86), "{}", crashing.log_text());
    let crashed = secrets_of(&admin, &ns.name, "mine").await;
    let enforced = api_key(enforcement(&crashed));
    assert_ne!(enforced, old, "the gateway got the new value first");
    assert_eq!(
        annotation(enforcement(&crashed), ROTATION_ANNOTATION),
        Some(token)
    );
    assert_eq!(
        api_key(consumer(&crashed)),
        old,
        "the consumer Secret not yet"
    );
    let status = keys.get("mine").await.unwrap().status.unwrap();
    assert!(status.rotation.is_none(), "nor the status");

    let _restarted = Devportal::controller(&lease, &[]);
    eventually("the rotation recorded after the restart", WAIT, || async {
        let key = keys.get("mine").await.ok()?;
        (key.status?.rotation?.request == token).then_some(())
    })
    .await;
    let after = secrets_of(&admin, &ns.name, "mine").await;
    assert_eq!(
        api_key(consumer(&after)),
        enforced,
        "the consumer gets the value the gateway enforces, not a third one"
    );
    assert_eq!(api_key(enforcement(&after)), enforced);
    assert_eq!(
        enforcement(&after).metadata.resource_version,
        enforcement(&crashed).metadata.resource_version,
        "the enforcement Secret was not written again"
    );
    assert_eq!(
        annotation(consumer(&after), ROTATION_ANNOTATION),
        Some(token)
    );
}
