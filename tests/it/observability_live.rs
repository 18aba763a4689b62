//! The dashboard and the alerts against a real Prometheus scraping the real devportal (webhook
//! and controller) and the API server of the local control plane, after a workload this test
//! produces: every dashboard query and every alert's expression (without its threshold) returns
//! data. And the dashboard's ConfigMap, generated from the one dashboard file.

use crate::support;

use std::time::Duration;

use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode, Documentation};
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use support::manifests::{find, render};
use support::observability::{
    DASHBOARD, alerts, dashboard_queries, variable_selectors, without_thresholds,
};
use support::policies::ScopedPolicy;
use support::prometheus::{Answer, Prometheus, WAIT};
use support::{
    Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures, repo_root,
    stdout_of,
};

/// devportal's webhook configurations as the manifests render them, renamed and narrowed to one
/// namespace, with nothing behind their Service: devportal's webhook unavailable, as the API
/// server sees it. Deleted when dropped.
struct UnavailableWebhook(String);

impl UnavailableWebhook {
    fn install(namespace: &str) -> Self {
        let name = format!("devportal-unavailable-{}", std::process::id());
        let rendered = render("manifests");
        let items: Vec<Value> = ["MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"]
            .into_iter()
            .map(|kind| {
                let mut config = find(&rendered, kind, "devportal").clone();
                config["metadata"]["name"] = json!(name);
                for webhook in config["webhooks"].as_array_mut().unwrap() {
                    webhook["namespaceSelector"]["matchExpressions"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"key": "kubernetes.io/metadata.name", "operator": "In", "values": [namespace]}));
                }
                config
            })
            .collect();
        let list = json!({"apiVersion": "v1", "kind": "List", "items": items}).to_string();
        stdout_of(&control_plane_with_devportal().kubectl(
            Persona::Admin,
            &["apply", "--server-side", "-f", "-"],
            Some(&list),
        ));
        UnavailableWebhook(name)
    }
}

impl Drop for UnavailableWebhook {
    fn drop(&mut self) {
        for kind in [
            "mutatingwebhookconfiguration",
            "validatingwebhookconfiguration",
        ] {
            let _ = control_plane_with_devportal().kubectl(
                Persona::Admin,
                &["delete", kind, &self.0, "--ignore-not-found"],
                None,
            );
        }
    }
}

async fn phase_of(keys: &Api<APIKey>, name: &str) -> Option<APIKeyPhase> {
    keys.get(name).await.ok()?.status?.phase
}

/// The workload: admissions allowed and denied, a manual approval, Secrets written and deleted, a
/// key breaking an Audit APIKeyPolicy, a failing OpenAPI fetch, reconciles failing (a namespace
/// whose quota refuses Secrets), and devportal's webhook unavailable to the API server in one
/// namespace.
async fn workload(
    prometheus: &Prometheus,
) -> (
    UnavailableWebhook,
    TestNamespace,
    TestNamespace,
    ScopedPolicy,
) {
    let cp = control_plane_with_devportal();
    let admin = cp.client(Persona::Admin).await;
    let owner = cp.client(Persona::Owner).await;
    let consumer = cp.client(Persona::Consumer).await;
    let wait = Duration::from_secs(60);

    // The approval flow, a denial, a waiting request and a revocation by deletion.
    let flow = TestNamespace::new("observe").await;
    fixtures::published_product(&admin, &owner, &flow.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &flow.name, wait).await;
    let products = Api::<APIProduct>::namespaced(owner.clone(), &flow.name);
    let keys = Api::<APIKey>::namespaced(consumer.clone(), &flow.name);
    for name in ["mine", "waiting"] {
        keys.create(&PostParams::default(), &fixtures::key(name, "toys", "gold"))
            .await
            .expect("the webhook admits the key");
    }
    keys.create(
        &PostParams::default(),
        &fixtures::key("odd", "toys", "platinum"),
    )
    .await
    .expect_err("the webhook denies a tier the product does not offer");
    Api::<APIKey>::namespaced(owner.clone(), &flow.name)
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true}}})),
        )
        .await
        .expect("the owner approves");
    eventually("the key to be approved", wait, || async {
        (phase_of(&keys, "mine").await == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;
    keys.delete("mine", &DeleteParams::default())
        .await
        .expect("the consumer deletes the key");
    // An Audit policy the waiting gold key breaks: the audit reports it.
    let audit = ScopedPolicy::create(
        &flow.name,
        "observe",
        "Audit",
        json!({"tiers": {"forbidden": ["gold"]}}),
    )
    .await;
    prometheus
        .wait_for(r#"sum(devportal_policy_violations{rule="tiers"})"#, |v| {
            v >= 1.0
        })
        .await;
    // Documentation URLs nothing serves: the fetches fail. Twice, the second once Prometheus
    // has the counter, so its increase shows.
    for failures in [1.0, 2.0] {
        products
            .patch(
                "toys",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"documentation": Documentation {
                    openapi_spec_url: Some(format!("https://127.0.0.1:{}/openapi.json", support::free_port())),
                    ..Documentation::default()
                }}})),
            )
            .await
            .expect("the owner sets a documentation URL");
        prometheus
            .wait_for(
                r#"sum(devportal_discovery_fetch_failures_total{kind="openapi"})"#,
                |v| v >= failures,
            )
            .await;
    }

    // Reconciles failing: an automatic product whose key's consumer Secret the namespace's quota
    // refuses. Unreachable devportal webhooks in the same namespace then refuse a key write.
    let broken = TestNamespace::new("observe-broken").await;
    fixtures::published_product(&admin, &owner, &broken.name, ApprovalMode::Automatic).await;
    // The webhook admits keys only for a product whose plans it has seen.
    fixtures::product_ready(&admin, &broken.name, WAIT).await;
    fixtures::forbid_secrets(&admin, &broken.name).await;
    let broken_keys = Api::<APIKey>::namespaced(consumer.clone(), &broken.name);
    broken_keys
        .create(
            &PostParams::default(),
            &fixtures::key("stuck", "toys", "gold"),
        )
        .await
        .expect("the webhook admits the key");
    eventually(
        "the stuck key to say its Secret was refused",
        WAIT,
        || async {
            let status = broken_keys.get("stuck").await.ok()?.status?;
            (status.phase == Some(APIKeyPhase::Failed)
                && status
                    .conditions
                    .iter()
                    .any(|c| c.reason == devportal::names::key_reason::SECRET_WRITE_REFUSED))
            .then_some(())
        },
    )
    .await;
    let unavailable = UnavailableWebhook::install(&broken.name);
    let refused = || async {
        match broken_keys
            .create(
                &PostParams::default(),
                &fixtures::key("refused", "toys", "gold"),
            )
            .await
        {
            Err(kube::Error::Api(status)) => status.message.contains("failed calling webhook"),
            Ok(_) => {
                let _ = broken_keys
                    .delete("refused", &DeleteParams::default())
                    .await;
                false
            }
            Err(_) => false,
        }
    };
    eventually(
        "the unavailable webhook to refuse a write",
        wait,
        || async { refused().await.then_some(()) },
    )
    .await;
    // Refused again once Prometheus has the counter, so its rate shows.
    let failed_calls = r#"sum(apiserver_admission_webhook_rejection_count{name=~".+\\.devportal\\.kuadrant\\.io", error_type="calling_webhook_error"})"#;
    let before = prometheus.wait_for(failed_calls, |v| v >= 1.0).await;
    for _ in 0..3 {
        assert!(refused().await, "the unavailable webhook refuses the write");
    }
    prometheus.wait_for(failed_calls, |v| v > before).await;
    // The webhook goes first when dropped, so the namespaces' deletion is not refused.
    (unavailable, flow, broken, audit)
}

/// Waits until `query` returns at least one series with a number (not NaN) and returns the
/// result; fails the test if Prometheus refuses the query.
async fn returns_data(prometheus: &Prometheus, place: &str, query: &str) -> Vec<Value> {
    eventually(
        &format!("{place}: {query} to return data"),
        WAIT,
        || async {
            match prometheus.query(query).await? {
                Answer::Error(message) => panic!("{place}: Prometheus refuses {query}: {message}"),
                Answer::Data(series) => series
                    .iter()
                    .any(|s| {
                        s["value"][1]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_some_and(|v| !v.is_nan())
                    })
                    .then_some(series),
            }
        },
    )
    .await
}

#[tokio::test]
async fn every_dashboard_query_and_alert_expression_returns_data_for_a_real_workload() {
    let prometheus = Prometheus::start_with_api_server();
    prometheus
        .wait_for(r#"sum(up{job=~"devportal|apiserver"})"#, |v| v == 2.0)
        .await;
    let (_unavailable, _flow, broken, _audit) = workload(&prometheus).await;

    let mut answered = 0;
    for (place, query) in dashboard_queries() {
        let series = returns_data(&prometheus, &place, &query).await;
        println!("{place}: {} series", series.len());
        answered += 1;
    }
    for (selector, label) in variable_selectors() {
        let series = returns_data(&prometheus, "a template variable", &selector).await;
        assert!(
            series.iter().any(|s| s["metric"][&label].is_string()),
            "{selector} carries no {label} label: {series:?}"
        );
    }
    for alert in alerts() {
        let name = alert["alert"].as_str().unwrap();
        if name == "DevportalCertificateExpiringSoon" {
            // The shared devportal takes its certificate from files, not --self-managed-certs;
            // tests/serial/certs.rs reads the expiry from a self-managing devportal's /metrics.
            continue;
        }
        let measured = without_thresholds(alert["expr"].as_str().unwrap());
        let series = returns_data(&prometheus, name, &measured).await;
        println!("{name}: {measured} = {}", series[0]["value"][1]);
        answered += 1;
    }
    // The faults the workload caused: the alerts' measures move, and those of the webhook and
    // reconcile alerts cross their thresholds (the alerts would be pending now).
    for (name, threshold) in [
        ("DevportalWebhookFailing", true),
        ("DevportalReconcileErrors", true),
        ("DevportalDiscoveryFetchFailing", false),
    ] {
        let alert = alerts().into_iter().find(|a| a["alert"] == name).unwrap();
        let expr = alert["expr"].as_str().unwrap();
        let query = if threshold {
            expr.to_string()
        } else {
            format!("({}) > 0", without_thresholds(expr))
        };
        // The other tests of this binary keep the shared webhook answering meanwhile, which
        // dilutes the failing share: writes keep meeting the unavailable webhook until it shows.
        let refusing = (name == "DevportalWebhookFailing").then(|| {
            let keys = broken.name.clone();
            tokio::spawn(async move {
                let consumer = control_plane_with_devportal()
                    .client(Persona::Consumer)
                    .await;
                let keys = Api::<APIKey>::namespaced(consumer, &keys);
                loop {
                    let refused = fixtures::key("refused", "toys", "gold");
                    let _ = keys.create(&PostParams::default(), &refused).await;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        });
        let series = returns_data(&prometheus, name, &query).await;
        if let Some(refusing) = refusing {
            refusing.abort();
        }
        println!(
            "{name} during the faults: {query} = {}",
            series[0]["value"][1]
        );
    }
    // What the workload did shows up where the panels and alerts look.
    for (what, query) in [
        (
            "denials by reason",
            r#"sum(devportal_admission_requests_total{decision="denied", reason="unknown_tier"})"#,
        ),
        ("a deleted Secret", "sum(devportal_secrets_deleted_total)"),
        (
            "a failed fetch",
            r#"sum(devportal_discovery_fetch_failures_total{kind="openapi"})"#,
        ),
        (
            "a failed reconcile",
            r#"sum(devportal_reconcile_errors_total{controller="apikey"})"#,
        ),
        ("an approval", "devportal_approval_latency_seconds_count"),
        (
            "the webhook unavailable",
            r#"sum(apiserver_admission_webhook_rejection_count{name=~".+\\.devportal\\.kuadrant\\.io", error_type="calling_webhook_error"})"#,
        ),
        (
            // The quota-refused key says so (phase Failed, SecretWriteRefused) rather than
            // waiting as Pending, so DevportalKeysStuckPending's measure stays 0 here.
            "a key whose Secret the quota refuses",
            r#"max(devportal_apikeys{phase="Failed"})"#,
        ),
    ] {
        let value = prometheus.wait_for(query, |v| v > 0.0).await;
        println!("{what}: {query} = {value}");
    }
    println!("{answered} queries and alert expressions returned data");
}

#[tokio::test]
async fn the_dashboard_configmap_is_generated_from_the_dashboard_file() {
    // The binary's control plane runs devportal; kustomize only needs its kubectl.
    control_plane_with_devportal();
    let overlay = repo_root()
        .join("target/local")
        .join(format!("observability-overlay-{}", std::process::id()));
    std::fs::create_dir_all(&overlay).unwrap();
    std::fs::write(
        overlay.join("kustomization.yaml"),
        "resources: [../../../manifests]\ncomponents: [../../../manifests/monitoring, ../../../dashboards]\n",
    )
    .unwrap();
    let relative = overlay.strip_prefix(repo_root()).unwrap();
    let objects = render(relative.to_str().unwrap());
    std::fs::remove_dir_all(&overlay).unwrap();
    let config_map = find(&objects, "ConfigMap", "devportal-dashboard");
    assert_eq!(config_map["metadata"]["namespace"], "devportal-system");
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "1");
    assert_eq!(
        config_map["data"]["devportal.json"].as_str().unwrap(),
        std::fs::read_to_string(repo_root().join(DASHBOARD)).unwrap(),
        "the ConfigMap holds the dashboard file as it is"
    );
    find(&objects, "PrometheusRule", "devportal");
    find(&objects, "ServiceMonitor", "devportal");
}
