//! HTTPS keep-alive load against a running `devportal webhook`: several connections post a typical
//! APIKey CREATE AdmissionReview back to back for a fixed time, first to `/mutate/apikeys`, then
//! to `/validate/apikeys`, and the run reports throughput and latency percentiles, both as the
//! client saw them and as the server measured them (its `Server-Timing` header).
//!
//! Start the local control plane with devportal first, then run the load:
//!
//! ```sh
//! make up
//! LOAD_CONNECTIONS=4 LOAD_SECONDS=10 cargo bench --bench webhook_load
//! ```
//!
//! It finds the webhook through `$DEVPORTAL_LOCAL_DIR` (default `target/local`), creates the
//! product it needs in namespace `devportal-bench` as the admin, and talks to 127.0.0.1 only.

#[path = "fixtures.rs"]
mod fixtures;
// Shared with the integration tests, which also read the peer certificate.
#[allow(dead_code)]
#[path = "../tests/support/https.rs"]
mod https;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use devportal::resources::APIProduct;
use devportal::resources::gateway::HTTPRoute;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Patch, PatchParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client, Config};
use serde_json::json;

use https::Https;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

async fn client(dir: &Path, user: &str) -> Client {
    let kubeconfig = Kubeconfig::read_from(dir.join("kubeconfigs").join(user)).expect("kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("kubeconfig is valid");
    Client::try_from(config).expect("client")
}

/// The route, the Published product and its discovered plans the reviews refer to.
async fn set_up(dir: &Path) {
    let admin = client(dir, "admin").await;
    let apply = PatchParams::apply("devportal-bench").force();
    let ns =
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": fixtures::NAMESPACE}});
    Api::<Namespace>::all(admin.clone())
        .patch(fixtures::NAMESPACE, &apply, &Patch::Apply(ns))
        .await
        .expect("namespace");
    let route = json!({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": {"name": "toystore", "annotations": {"devportal.kuadrant.io/exposed": "true"}},
        "spec": {"parentRefs": [{"name": "external", "namespace": "gateway-system"}]}
    });
    Api::<HTTPRoute>::namespaced(admin.clone(), fixtures::NAMESPACE)
        .patch("toystore", &apply, &Patch::Apply(route))
        .await
        .expect("route");
    let mut product = fixtures::product();
    let status = product
        .as_object_mut()
        .and_then(|p| p.remove("status"))
        .expect("status");
    for field in ["uid", "resourceVersion", "generation", "creationTimestamp"] {
        product["metadata"].as_object_mut().map(|m| m.remove(field));
    }
    Api::<APIProduct>::namespaced(admin, fixtures::NAMESPACE)
        .patch(fixtures::PRODUCT, &apply, &Patch::Apply(product))
        .await
        .expect("product");
    let status = json!({"apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct", "status": status});
    Api::<APIProduct>::namespaced(client(dir, "controller").await, fixtures::NAMESPACE)
        .patch_status(fixtures::PRODUCT, &apply, &Patch::Apply(status))
        .await
        .expect("product status");
}

struct Run {
    requests: usize,
    elapsed: Duration,
    client_ms: Vec<f64>,
    server_ms: Vec<f64>,
}

/// `connections` keep-alive connections posting `body` to `path` for `duration`.
async fn load(
    https: &Https,
    addr: SocketAddr,
    path: &'static str,
    body: String,
    connections: usize,
    duration: Duration,
) -> Run {
    let start = Instant::now();
    let deadline = start + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let https = https.clone();
        let body = body.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = https.connect(addr).await.expect("connect to the webhook");
            let (mut client_ms, mut server_ms) = (Vec::new(), Vec::new());
            while Instant::now() < deadline {
                let sent = Instant::now();
                let reply = conn
                    .request("POST", path, body.clone())
                    .await
                    .expect("request");
                client_ms.push(sent.elapsed().as_secs_f64() * 1e3);
                assert_eq!(reply.status, 200);
                let review: serde_json::Value = serde_json::from_slice(&reply.body).expect("JSON");
                assert_eq!(review["response"]["allowed"], true, "{review}");
                server_ms.extend(reply.server_ms);
            }
            (client_ms, server_ms)
        }));
    }
    let mut run = Run {
        requests: 0,
        elapsed: Duration::ZERO,
        client_ms: Vec::new(),
        server_ms: Vec::new(),
    };
    for task in tasks {
        let (client_ms, server_ms) = task.await.expect("load task");
        run.client_ms.extend(client_ms);
        run.server_ms.extend(server_ms);
    }
    run.elapsed = start.elapsed();
    run.requests = run.client_ms.len();
    run
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn summary(ms: &mut [f64]) -> String {
    ms.sort_by(f64::total_cmp);
    format!(
        "{:.3} / {:.3} / {:.3} / {:.3}",
        percentile(ms, 50.0),
        percentile(ms, 90.0),
        percentile(ms, 99.0),
        ms.last().copied().unwrap_or(f64::NAN)
    )
}

fn main() {
    let dir = std::env::var_os("DEVPORTAL_LOCAL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/local"));
    let Ok(state) = std::fs::read_to_string(dir.join("run/state.env")) else {
        eprintln!(
            "webhook_load: no local control plane under {}; run `make up` first",
            dir.display()
        );
        std::process::exit(2);
    };
    let Some(port) = state.lines().find_map(|l| l.strip_prefix("WEBHOOK_PORT=")) else {
        eprintln!("webhook_load: the local control plane runs without devportal; run `make up`");
        std::process::exit(2);
    };
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let ca = std::fs::read_to_string(dir.join("pki/webhook/ca.crt")).expect("webhook CA");
    let connections = env_or("LOAD_CONNECTIONS", 4usize);
    let seconds = env_or("LOAD_SECONDS", 10u64);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        set_up(&dir).await;
        // The local control plane runs devportal with --client-ca: present the API server's
        // webhook client certificate, as the API server does.
        let client = ["webhook-client.crt", "webhook-client.key"]
            .map(|f| std::fs::read_to_string(dir.join("pki").join(f)).ok());
        let https = match &client {
            [Some(cert), Some(key)] => Https::new(&[&ca], Some((cert, key))),
            _ => Https::trusting(&[&ca]),
        };
        // Warm up (and let the webhook's cache catch the product's status).
        load(&https, addr, "/validate/apikeys", String::from_utf8(fixtures::key_create_review(true)).unwrap(), connections, Duration::from_secs(2)).await;

        println!("webhook {addr}: {connections} keep-alive connections, {seconds}s per endpoint");
        println!("| endpoint | requests | reviews/s | client ms p50 / p90 / p99 / max | server ms p50 / p90 / p99 / max |");
        println!("| --- | ---: | ---: | --- | --- |");
        for (path, stamped) in [("/mutate/apikeys", false), ("/validate/apikeys", true)] {
            let body = String::from_utf8(fixtures::key_create_review(stamped)).unwrap();
            let mut run = load(&https, addr, path, body, connections, Duration::from_secs(seconds)).await;
            println!(
                "| `{path}` | {} | {:.0} | {} | {} |",
                run.requests,
                run.requests as f64 / run.elapsed.as_secs_f64(),
                summary(&mut run.client_ms),
                summary(&mut run.server_ms),
            );
        }
    });
}
