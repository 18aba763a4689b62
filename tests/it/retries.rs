//! Refusals that clear by themselves are retried within seconds: a key whose Secret a
//! ResourceQuota refuses is approved soon after the quota goes, not at the next step of a backoff
//! that had grown to minutes (src/controller/retry.rs has the schedule).

use crate::support;

use std::time::{Duration, Instant};

use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode};
use kube::Api;
use kube::api::{DeleteParams, PostParams};
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

#[tokio::test]
async fn a_key_refused_by_a_quota_is_approved_within_seconds_of_the_quota_going() {
    let cp = control_plane_with_devportal();
    let admin = cp.client(Persona::Admin).await;
    let owner = cp.client(Persona::Owner).await;
    let ns = TestNamespace::new("quota-retry").await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Automatic).await;
    fixtures::product_ready(&admin, &ns.name, Duration::from_secs(60)).await;
    // No Secrets in this namespace: the key's consumer Secret is refused with 403 "exceeded
    // quota". The quota controller (not run here) would write the status the API server enforces.
    let quotas = fixtures::forbid_secrets(&admin, &ns.name).await;
    let keys = Api::<APIKey>::namespaced(cp.client(Persona::Consumer).await, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("held", "toys", "gold"),
    )
    .await
    .expect("the webhook admits the key");

    // 70 s of refusals: with the old backoff (doubling to 256 s) the retries came at 1, 3, 7, 15,
    // 31 and 63 s and the next not before 127 s; capped at 15 s they come every 15 s by now.
    tokio::time::sleep(Duration::from_secs(70)).await;
    let phase = keys.get("held").await.unwrap().status.and_then(|s| s.phase);
    assert_ne!(
        phase,
        Some(APIKeyPhase::Approved),
        "the quota held the key back"
    );
    quotas
        .delete(fixtures::NO_SECRETS_QUOTA, &DeleteParams::default())
        .await
        .unwrap();
    // With the old backoff the next retry came 57 s after this point, past the wait's bound;
    // capped at 15 s it comes within it. How long it took is printed, not asserted (the figure
    // belongs in docs/benchmarks.md, and a busy machine stretches it).
    let lifted = Instant::now();
    eventually(
        "the key to be Approved at the next retry after the quota went",
        Duration::from_secs(40),
        || async {
            let phase = keys.get("held").await.ok()?.status?.phase?;
            (phase == APIKeyPhase::Approved).then_some(())
        },
    )
    .await;
    println!("approved {:?} after the quota went", lifted.elapsed());
}
