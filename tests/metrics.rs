//! devportal's metrics, scraped by a real Prometheus server on loopback while the approval flow
//! runs through the real webhook and controller; and the exposition checked by `promtool`.

mod support;

use std::process::{Child, Stdio};
use std::time::Duration;

use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode};
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use support::{
    Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures, free_port, tools,
};

const WAIT: Duration = Duration::from_secs(60);

/// A Prometheus server scraping devportal's admin port every second; killed when dropped.
struct Prometheus {
    child: Child,
    url: String,
}

impl Prometheus {
    fn start(target: &str) -> Self {
        let dir = control_plane_with_devportal()
            .state_dir()
            .join(format!("prometheus-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let config = dir.join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
                 scrape_configs:\n- job_name: devportal\n  static_configs:\n  - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = tools::prometheus()
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("the prometheus server starts");
        Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }

    /// The value of an instant query with a single result, if it has one.
    async fn value(&self, query: &str) -> Option<f64> {
        let body: serde_json::Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    async fn wait_for(&self, query: &str, holds: impl Fn(f64) -> bool) -> f64 {
        eventually(&format!("Prometheus to answer {query}"), WAIT, || async {
            self.value(query).await.filter(|v| holds(*v))
        })
        .await
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn prometheus_sees_admissions_reconciles_and_approval_latency() {
    let cp = control_plane_with_devportal();
    let admin_url = cp.devportal_admin_url();
    let prometheus = Prometheus::start(admin_url.trim_start_matches("http://"));
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
    let products = Api::<APIProduct>::namespaced(owner, &ns.name);
    eventually("the product's plans", WAIT, || async {
        products
            .get("toys")
            .await
            .ok()?
            .status?
            .plan_tiers
            .map(|_| ())
    })
    .await;
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

#[tokio::test]
async fn promtool_accepts_the_exposition() {
    let url = format!(
        "{}/metrics",
        control_plane_with_devportal().devportal_admin_url()
    );
    let exposition = reqwest::get(&url).await.unwrap().text().await.unwrap();
    assert!(exposition.contains("devportal_leader"), "{exposition}");
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

#[test]
fn promtool_accepts_the_shipped_alert_rules() {
    let rule: serde_json::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            support::repo_root().join("manifests/monitoring/prometheusrule.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(rule["kind"], "PrometheusRule");
    let dir = std::env::temp_dir().join(format!("devportal-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rules.yaml");
    // A PrometheusRule's spec is a Prometheus rules file.
    std::fs::write(&rules, serde_yaml::to_string(&rule["spec"]).unwrap()).unwrap();
    let out = tools::promtool()
        .arg("check")
        .arg("rules")
        .arg(&rules)
        .output()
        .expect("promtool runs");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
