//! The admission handler, decode → decide → encode, for a typical APIKey CREATE served from an
//! in-memory cache: `cargo bench --bench admission`.

#[path = "fixtures.rs"]
mod fixtures;

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use devportal::resources::APIProduct;
use devportal::webhook::lookup::MemoryLookup;
use devportal::webhook::review::{Endpoint, Webhook};
use devportal::webhook::rules::Limits;
use k8s_openapi::jiff::Timestamp;

fn admission(c: &mut Criterion) {
    let product: APIProduct = serde_json::from_value(fixtures::product()).expect("product");
    let webhook = Webhook::new(
        MemoryLookup::default().with_product(product),
        Limits {
            max_keys_per_user_per_product: 5,
            expired_key_grace: Duration::from_secs(86_400),
            max_key_lifetime: Duration::from_secs(365 * 86_400),
            controller_username: "system:serviceaccount:devportal-system:devportal".into(),
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");

    let mut group = c.benchmark_group("apikey_create");
    for endpoint in [Endpoint::MutateKeys, Endpoint::ValidateKeys] {
        let body = fixtures::key_create_review(endpoint == Endpoint::ValidateKeys);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_function(endpoint.path().trim_start_matches('/'), |b| {
            b.to_async(&runtime).iter(|| async {
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
