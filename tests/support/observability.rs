//! The shipped dashboard (`dashboards/devportal.json`) and alerts
//! (`manifests/monitoring/prometheusrule.yaml`) as the tests read them: every PromQL expression,
//! with Grafana's template variables substituted the way Grafana would for this test's Prometheus.

use std::path::PathBuf;
use std::process::Output;

use serde_json::Value;

use super::control_plane::repo_root;
use super::tools;

/// The dashboard's file.
pub const DASHBOARD: &str = "dashboards/devportal.json";
/// The PrometheusRule's file.
pub const RULES: &str = "manifests/monitoring/prometheusrule.yaml";
/// Where every runbook_url must point (an anchor of this page follows).
pub const RUNBOOKS: &str = "https://github.com/Kuadrant/devportal/blob/main/docs/operations.md#";

/// The values the template variables take for the test's Prometheus: its job and the namespace
/// label it gives devportal (as the ServiceMonitor would), and ranges long enough for the
/// workload's events to stay inside them while the test evaluates.
const VARIABLES: [(&str, &str); 5] = [
    ("$__rate_interval", "5m"),
    ("$__interval", "1m"),
    ("$__range", "1h"),
    ("$job", "devportal"),
    ("$namespace", "devportal-system"),
];

/// The dashboard, parsed.
pub fn dashboard() -> Value {
    serde_json::from_str(&std::fs::read_to_string(repo_root().join(DASHBOARD)).unwrap())
        .expect("the dashboard is JSON")
}

/// The PrometheusRule, parsed.
pub fn rule() -> Value {
    serde_yaml::from_str(&std::fs::read_to_string(repo_root().join(RULES)).unwrap())
        .expect("the PrometheusRule is YAML")
}

/// Every rule of the PrometheusRule.
pub fn alerts() -> Vec<Value> {
    rule()["spec"]["groups"]
        .as_array()
        .expect("rule groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").clone())
        .collect()
}

/// `expr` with Grafana's template variables replaced by [`VARIABLES`].
pub fn substitute(expr: &str) -> String {
    VARIABLES
        .iter()
        .fold(expr.to_string(), |e, (var, value)| e.replace(var, value))
}

/// Every query of the dashboard, `(where, expression)` with variables substituted: the panels'
/// targets, and the series selectors of the `label_values(<selector>, <label>)` variable queries
/// (with the label they must carry).
pub fn dashboard_queries() -> Vec<(String, String)> {
    let dashboard = dashboard();
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                format!("panel {:?} {}", panel["title"], target["refId"]),
                substitute(target["expr"].as_str().expect("a PromQL target")),
            ));
        }
    }
    for (selector, _) in variable_selectors() {
        queries.push(("a template variable".into(), selector));
    }
    queries
}

/// The `label_values(<selector>, <label>)` queries of the dashboard's query variables, as
/// (substituted selector, label).
pub fn variable_selectors() -> Vec<(String, String)> {
    dashboard()["templating"]["list"]
        .as_array()
        .expect("templating")
        .iter()
        .filter(|v| v["type"] == "query")
        .map(|v| {
            let query = v["query"]["query"].as_str().expect("a variable query");
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .expect("label_values(<selector>, <label>)");
            let (selector, label) = inner.rsplit_once(',').expect("a selector and a label");
            (substitute(selector.trim()), label.trim().to_string())
        })
        .collect()
}

/// `expr` without its threshold comparisons (`> 0.1`, `< 1`): what an alert measures, which
/// returns data on a healthy workload where the alert itself rightly returns nothing.
pub fn without_thresholds(expr: &str) -> String {
    let mut out = String::new();
    let mut rest = expr;
    while let Some(at) = rest.find(['>', '<']) {
        out.push_str(&rest[..at]);
        let after = rest[at + 1..].trim_start_matches('=').trim_start();
        let number = after
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '+'))
            .unwrap_or(after.len());
        assert!(number > 0, "a comparison with a number in {expr}");
        rest = &after[number..];
    }
    out.push_str(rest);
    out.trim().to_string()
}

/// A fresh scratch directory under the target directory.
pub fn scratch(name: &str) -> PathBuf {
    let dir = repo_root()
        .join("target/local/observability")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The PrometheusRule's `spec` (a Prometheus rules file) written as `rules.yaml` in `dir`.
pub fn write_rules_file(dir: &std::path::Path) -> PathBuf {
    let path = dir.join("rules.yaml");
    std::fs::write(&path, serde_yaml::to_string(&rule()["spec"]).unwrap()).unwrap();
    path
}

/// Runs promtool with `args` in `dir`, asserting that it succeeds; returns its stdout.
pub fn promtool_ok(dir: &std::path::Path, args: &[&str]) -> String {
    let out: Output = tools::promtool()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("promtool runs");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?}:\n{text}");
    text
}
