//! The raw mode: the same creator making 2×N plain Secrets (the API server's plain write rate on
//! this machine, for the two Secret writes per key).

use std::time::Instant;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::workload::burst;

/// Creates `count` Opaque Secrets (48 random bytes each) in `namespace` as `client`,
/// and returns how long it took.
pub async fn create_secrets(client: &Client, namespace: &str, count: usize) -> std::time::Duration {
    let api = Api::<Secret>::namespaced(client.clone(), namespace);
    let started = Instant::now();
    burst(count, |i| {
        let api = api.clone();
        async move {
            let mut value = [0u8; 48];
            getrandom::fill(&mut value).expect("the OS random source");
            let secret = Secret {
                metadata: ObjectMeta {
                    name: Some(format!("raw-{i:06}")),
                    ..ObjectMeta::default()
                },
                type_: Some("Opaque".into()),
                data: Some([("value".to_string(), ByteString(value.to_vec()))].into()),
                ..Secret::default()
            };
            api.create(&PostParams::default(), &secret)
                .await
                .expect("create a plain Secret");
        }
    })
    .await;
    started.elapsed()
}
