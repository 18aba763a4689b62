//! The admission handler, decode → decide → encode, for a typical APIKey CREATE served from an
//! in-memory cache: `cargo bench --bench admission`; and the same with 100 APIKeyPolicies in the
//! cache (`cargo bench --bench admission -- 100_policies`).

#[path = "fixtures.rs"]
mod fixtures;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devportal::resources::{APIKeyPolicy, APIProduct};
use devportal::webhook::lookup::MemoryLookup;
use devportal::webhook::review::{Endpoint, Webhook};
use devportal::webhook::rules::Limits;
use k8s_openapi::jiff::Timestamp;

fn limits() -> Limits {
    Limits {
        max_keys_per_user_per_product: 5,
        expired_key_grace: Duration::from_secs(86_400),
        max_key_lifetime: Duration::from_secs(365 * 86_400),
        controller_username: "system:serviceaccount:devportal-system:devportal".into(),
    }
}

/// 100 policies, a quarter each: a `Deny` tier rule the key passes, a `Warn` lifetime rule it
/// breaks (a warning), an `Audit` key limit, and a `Deny` rule for namespaces it is not in.
fn policies() -> Vec<APIKeyPolicy> {
    (0..100)
        .map(|i| {
            let (env, action, rules) = match i % 4 {
                0 => (
                    "sandbox",
                    "Deny",
                    serde_json::json!({"tiers": {"forbidden": [format!("platinum-{i}")]}}),
                ),
                1 => ("sandbox", "Warn", serde_json::json!({"maxLifetime": "30d"})),
                2 => (
                    "sandbox",
                    "Audit",
                    serde_json::json!({"maxKeysPerRequesterPerProduct": 1}),
                ),
                _ => (
                    "production",
                    "Deny",
                    serde_json::json!({"maxLifetime": "1d"}),
                ),
            };
            serde_json::from_value(serde_json::json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyPolicy",
                "metadata": {"name": format!("policy-{i:03}")},
                "spec": {"match": {"consumerNamespaceSelector": {"matchExpressions": [
                             {"key": "env", "operator": "In", "values": [env]}]},
                                   "tiers": ["gold", "silver"]},
                         "rules": rules, "action": action}
            }))
            .expect("policy")
        })
        .collect()
}

fn admission(c: &mut Criterion) {
    let product: APIProduct = serde_json::from_value(fixtures::product()).expect("product");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let plain = Webhook::new(
        MemoryLookup::default().with_product(product.clone()),
        limits(),
    );
    let mut governed = MemoryLookup::default()
        .with_product(product)
        .with_namespace_labels(fixtures::NAMESPACE, &[("env", "sandbox")]);
    for policy in policies() {
        governed = governed.with_policy(policy);
    }
    let governed = Webhook::new(governed, limits());
    // The policies are judged, not skipped: the Warn ones answer with warnings.
    let once = runtime.block_on(governed.admit(
        Endpoint::ValidateKeys,
        &fixtures::key_create_review(true),
        Timestamp::now(),
    ));
    let answer: serde_json::Value = serde_json::from_slice(&once.body).expect("an AdmissionReview");
    let warnings = answer["response"]["warnings"].to_string();
    assert!(
        warnings.contains("policy-001") && warnings.contains("(rule maxLifetime, Warn)"),
        "{answer}"
    );
    for (name, webhook) in [
        ("apikey_create", &plain),
        ("apikey_create_100_policies", &governed),
    ] {
        bench_group(c, name, webhook, &runtime);
    }
}

fn bench_group(
    c: &mut Criterion,
    name: &str,
    webhook: &Webhook<MemoryLookup>,
    runtime: &tokio::runtime::Runtime,
) {
    let mut group = c.benchmark_group(name);
    for endpoint in [Endpoint::MutateKeys, Endpoint::ValidateKeys] {
        let body = fixtures::key_create_review(endpoint == Endpoint::ValidateKeys);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(endpoint.path().trim_start_matches('/'), |b| {
            b.to_async(runtime).iter(|| async {
                let reply = webhook
                    .admit(endpoint, black_box(&body), Timestamp::now())
                    .await;
                assert!(reply.outcome.reason.allows());
                black_box(reply.body)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, admission);
criterion_main!(benches);
