//! What following the consumers' own Secrets costs on a cluster with many Secrets: N Secrets no
//! APIKey names (1 KiB of data each) exist before the controller starts; the controller's
//! metadata-only watch of every Secret lists them all. Reports the controller's peak and current
//! RSS once a bring-your-own key's rotation has come through that watch (so the whole list has
//! been processed), and the time from a rotation to the new value being enforced: the first (it
//! waits for the rest of the initial list) and the next.
//!
//! `cargo bench --bench secret_metadata` (50,000 Secrets) or `... -- 0` for the baseline.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use devportal::names::{API_KEY_DATA, APIKEY_UID_LABEL};
use devportal::resources::{APIKeyPhase, ApprovalMode, LocalSecretRef};
use futures::StreamExt;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::Api;
use kube::api::{ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use support::processes::memory_kib;
use support::{Devportal, Persona, TestNamespace, control_plane, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(600);

fn secret(name: &str, value: &str) -> Secret {
    Secret {
        metadata: ObjectMeta {
            name: Some(name.into()),
            labels: Some([("app".to_string(), "unrelated".to_string())].into()),
            ..ObjectMeta::default()
        },
        data: Some(
            [(
                API_KEY_DATA.to_string(),
                ByteString(value.as_bytes().to_vec()),
            )]
            .into(),
        ),
        ..Secret::default()
    }
}

fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(50_000);
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(run(n));
}

async fn run(n: usize) {
    let admin = control_plane().client(Persona::Admin).await;
    let ns = TestNamespace::new("many").await;
    fixtures::published_product(&admin, &admin, &ns.name, ApprovalMode::Automatic).await;
    let secrets = Api::<Secret>::namespaced(admin.clone(), &ns.name);
    let filler = "x".repeat(1024);
    let started = Instant::now();
    futures::stream::iter(0..n)
        .map(|i| {
            let (secrets, filler) = (secrets.clone(), filler.clone());
            async move {
                secrets
                    .create(
                        &PostParams::default(),
                        &secret(&format!("s-{i:06}"), &filler),
                    )
                    .await
                    .unwrap();
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    println!("{n} unrelated Secrets created in {:?}", started.elapsed());

    let first = "first-value-of-the-benchmark-0123456789";
    secrets
        .create(&PostParams::default(), &secret("own", first))
        .await
        .unwrap();
    let controller = Devportal::controller(&["--lease-name", "many"], &[("DEVPORTAL_LOG", "warn")]);
    let keys = Api::<devportal::resources::APIKey>::namespaced(admin.clone(), &ns.name);
    let mut key = fixtures::requested_key("byo", "toys", "gold");
    key.spec.secret_ref = Some(LocalSecretRef { name: "own".into() });
    let uid = keys
        .create(&PostParams::default(), &key)
        .await
        .unwrap()
        .metadata
        .uid
        .unwrap();
    let enforced = |value: &'static str| {
        let admin = admin.clone();
        let uid = uid.clone();
        async move {
            eventually("the value to be enforced", WAIT, || async {
                let found = Api::<Secret>::namespaced(admin.clone(), "kuadrant-system")
                    .list(&ListParams::default().labels(&format!("{APIKEY_UID_LABEL}={uid}")))
                    .await
                    .ok()?;
                found
                    .items
                    .iter()
                    .any(|s| s.data.as_ref().unwrap()[API_KEY_DATA].0 == value.as_bytes())
                    .then_some(())
            })
            .await
        }
    };
    enforced(first).await;
    assert_eq!(
        keys.get("byo").await.unwrap().status.unwrap().phase,
        Some(APIKeyPhase::Approved)
    );
    // Nothing but the metadata watch reconciles the key now, and it delivers the rotation only
    // after its initial list: once the new value is enforced, the whole list has been processed.
    let second = "second-value-of-the-benchmark-0123456789";
    let rotated = Instant::now();
    let data = serde_json::json!({"data": {API_KEY_DATA: ByteString(second.as_bytes().to_vec())}});
    secrets
        .patch("own", &PatchParams::default(), &Patch::Merge(data))
        .await
        .unwrap();
    enforced(second).await;
    let first_rotation = rotated.elapsed();
    // In steady state: the next rotation.
    let rotated = Instant::now();
    let data = serde_json::json!({"data": {API_KEY_DATA: ByteString(first.as_bytes().to_vec())}});
    secrets
        .patch("own", &PatchParams::default(), &Patch::Merge(data))
        .await
        .unwrap();
    enforced(first).await;
    let took = rotated.elapsed();
    println!(
        "controller with {n} unrelated Secrets: peak RSS {} KiB, RSS now {} KiB; the first rotation enforced {first_rotation:?} after the write (behind the initial list), the next {took:?}",
        memory_kib(controller.pid(), "VmHWM"),
        memory_kib(controller.pid(), "VmRSS"),
    );
}
