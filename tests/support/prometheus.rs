//! A real Prometheus server on loopback scraping the devportal the control plane runs (and, on
//! request, the API server), with the labels the shipped ServiceMonitor gives it; and instant
//! queries against it.

use std::process::{Child, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::control_plane::control_plane_with_devportal;
use super::personas::Persona;
use super::processes::free_port;
use super::tools;
use super::waits::eventually;

/// How long a query may take to return what the test waits for: a few scrapes and the rate
/// windows filling, with room for a busy machine.
pub const WAIT: Duration = Duration::from_secs(120);

/// A Prometheus server scraping devportal's admin port every second as job `devportal` in
/// namespace `devportal-system` (what the ServiceMonitor in manifests/monitoring yields); killed
/// when dropped.
pub struct Prometheus {
    child: Child,
    /// Base URL of its HTTP API.
    pub url: String,
}

/// What an instant query returned.
#[derive(Debug)]
pub enum Answer {
    /// The result vector (or scalar, as a one-element vector).
    Data(Vec<Value>),
    /// Prometheus refused the query (a parse or evaluation error), with its message.
    Error(String),
}

impl Prometheus {
    /// Scrapes the devportal of [`control_plane_with_devportal`] only.
    pub fn start() -> Self {
        Self::launch(false)
    }

    /// Scrapes that devportal and the API server's own `/metrics` (as the admin persona, job
    /// `apiserver`): the API server's view of the webhook.
    pub fn start_with_api_server() -> Self {
        Self::launch(true)
    }

    fn launch(api_server: bool) -> Self {
        let cp = control_plane_with_devportal();
        let target = cp.devportal_admin_url();
        let target = target.trim_start_matches("http://");
        let dir = cp.state_dir().join(format!("prometheus-{}", free_port()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut config = format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\n\
             scrape_configs:\n\
             - job_name: devportal\n  static_configs:\n  - targets: ['{target}']\n    \
             labels: {{namespace: devportal-system}}\n"
        );
        if api_server {
            let kubeconfig: Value = serde_yaml::from_str(
                &std::fs::read_to_string(cp.kubeconfig(Persona::Admin)).unwrap(),
            )
            .unwrap();
            let cluster = &kubeconfig["clusters"][0]["cluster"];
            // The CA the kubeconfig embeds.
            std::fs::write(dir.join("ca.crt"), cp.pki_file("ca.crt")).unwrap();
            std::fs::write(
                dir.join("token"),
                kubeconfig["users"][0]["user"]["token"].as_str().unwrap(),
            )
            .unwrap();
            let server = cluster["server"].as_str().unwrap();
            config.push_str(&format!(
                "- job_name: apiserver\n  scheme: https\n  \
                 tls_config: {{ca_file: '{ca}'}}\n  \
                 authorization: {{credentials_file: '{token}'}}\n  \
                 static_configs:\n  - targets: ['{host}']\n",
                ca = dir.join("ca.crt").display(),
                token = dir.join("token").display(),
                host = server.trim_start_matches("https://"),
            ));
        }
        let config_file = dir.join("prometheus.yml");
        std::fs::write(&config_file, config).unwrap();
        let port = free_port();
        let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
        let child = tools::prometheus()
            .arg(format!("--config.file={}", config_file.display()))
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

    /// An instant query; `None` while the server does not answer yet.
    pub async fn query(&self, query: &str) -> Option<Answer> {
        let body: Value = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", query)])
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        if body["status"] != "success" {
            return Some(Answer::Error(format!(
                "{}: {}",
                body["errorType"], body["error"]
            )));
        }
        Some(Answer::Data(match &body["data"]["result"] {
            Value::Array(series) => series.clone(),
            scalar => vec![serde_json::json!({"metric": {}, "value": scalar})],
        }))
    }

    /// The value of an instant query with a single result, if it has one.
    pub async fn value(&self, query: &str) -> Option<f64> {
        match self.query(query).await? {
            Answer::Data(series) => series.first()?["value"][1].as_str()?.parse().ok(),
            Answer::Error(_) => None,
        }
    }

    /// Waits for the first result of `query` to satisfy `holds`, and returns it.
    pub async fn wait_for(&self, query: &str, holds: impl Fn(f64) -> bool) -> f64 {
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
