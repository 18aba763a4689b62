//! devportal's metrics, scraped by a real Prometheus server on loopback while the approval flow
//! runs through the real webhook and controller; and the exposition checked by `promtool`. The
//! dashboard and the alerts are tests/it/observability.rs's.

use crate::support;

use std::process::Stdio;
use std::time::Duration;

use devportal::resources::{APIKey, APIKeyPhase, ApprovalMode};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::prometheus::Prometheus;
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures, tools};

const WAIT: Duration = Duration::from_secs(60);

#[tokio::test]
async fn prometheus_sees_admissions_reconciles_and_approval_latency() {
    let cp = control_plane_with_devportal();
    let prometheus = Prometheus::start();
    prometheus
        .wait_for("up{job=\"devportal\"}", |v| v == 1.0)
        .await;
    assert_eq!(
        prometheus.wait_for("devportal_leader", |v| v == 1.0).await,
        1.0
    );

    // The approval flow: a platform, a manual product, a key request, an owner's approval.
    let ns = TestNamespace::new("metrics").await;
    let admin = cp.client(Persona::Admin).await;
    let owner = cp.client(Persona::Owner).await;
    fixtures::published_product(&admin, &owner, &ns.name, ApprovalMode::Manual).await;
    fixtures::product_ready(&admin, &ns.name, WAIT).await;
    let keys = Api::<APIKey>::namespaced(cp.client(Persona::Consumer).await, &ns.name);
    keys.create(
        &PostParams::default(),
        &fixtures::key("mine", "toys", "gold"),
    )
    .await
    .expect("the webhook admits the key");
    // A denied admission too: a tier the product does not offer.
    assert!(
        keys.create(
            &PostParams::default(),
            &fixtures::key("odd", "toys", "platinum")
        )
        .await
        .is_err()
    );
    Api::<APIKey>::namespaced(cp.client(Persona::Owner).await, &ns.name)
        .patch(
            "mine",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"approval": {"approved": true}}})),
        )
        .await
        .expect("the owner approves");
    eventually("the key to be approved", WAIT, || async {
        (keys.get("mine").await.ok()?.status?.phase == Some(APIKeyPhase::Approved)).then_some(())
    })
    .await;

    let allowed = prometheus
        .wait_for(
            r#"sum(devportal_admission_requests_total{resource="apikeys",decision="allowed"})"#,
            |v| v >= 2.0,
        )
        .await;
    let denied = prometheus
        .wait_for(r#"sum(devportal_admission_requests_total{resource="apikeys",decision="denied",reason="unknown_tier"})"#, |v| v >= 1.0)
        .await;
    let reconciles = prometheus
        .wait_for(
            r#"sum(devportal_reconcile_total{controller="apikey",result="success"})"#,
            |v| v >= 1.0,
        )
        .await;
    let approvals = prometheus
        .wait_for("devportal_approval_latency_seconds_count", |v| v >= 1.0)
        .await;
    let written = prometheus
        .wait_for(r#"sum(devportal_secrets_written_total)"#, |v| v >= 2.0)
        .await;
    let p99 = prometheus
        .wait_for(
            r#"histogram_quantile(0.99, sum by (le) (devportal_admission_duration_seconds_bucket))"#,
            |v| v > 0.0,
        )
        .await;
    println!(
        "Prometheus saw: {allowed} allowed / {denied} denied key admissions, {reconciles} key reconciles, \
         {approvals} approvals, {written} Secret writes, admission p99 {:.3} ms",
        p99 * 1e3
    );
    prometheus
        .wait_for(r#"devportal_apikeys{phase="Approved"}"#, |v| v >= 1.0)
        .await;
}

/// The OpenMetrics exposition as Prometheus ingests it, in the classic text format that
/// `promtool check metrics` lints: a counter family `x` is named after its samples, `x_total`, in
/// its `# HELP` and `# TYPE`; `# UNIT` and `# EOF` are OpenMetrics' only.
fn as_classic_text(openmetrics: &str) -> String {
    let counters: std::collections::BTreeSet<&str> = openmetrics
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut text = String::new();
    for line in openmetrics.lines() {
        if line.starts_with("# UNIT ") || line == "# EOF" {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {rest}"))
        });
        text.push_str(&renamed.unwrap_or_else(|| line.to_string()));
        text.push('\n');
    }
    text
}

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let cp = control_plane_with_devportal();
    // An admission (a denied one: no such product), so the counters have samples to lint.
    let ns = TestNamespace::new("promtool").await;
    Api::<APIKey>::namespaced(cp.client(Persona::Consumer).await, &ns.name)
        .create(
            &PostParams::default(),
            &fixtures::key("mine", "missing", "gold"),
        )
        .await
        .expect_err("no such product");
    let url = format!("{}/metrics", cp.devportal_admin_url());
    let exposition = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(exposition.contains("devportal_leader"), "{exposition}");
    assert!(
        exposition.contains("devportal_admission_requests_total{"),
        "{exposition}"
    );
    let exposition = as_classic_text(&exposition);
    let mut promtool = tools::promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    use std::io::Write;
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(exposition.as_bytes())
        .unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn readyz_and_livez_answer_on_the_admin_port() {
    let base = control_plane_with_devportal().devportal_admin_url();
    for path in ["/livez", "/readyz"] {
        let response = reqwest::get(format!("{base}{path}")).await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
