//! The Grafana dashboard and the alerts, without a cluster: every PromQL expression parsed by
//! `promtool`, every alert's `promtool test rules` unit tests, each alert's severity, `for:` and
//! runbook (an anchor of docs/operations.md), and the dashboard's variables. That every expression
//! returns data from a real Prometheus scraping the real devportal is
//! tests/it/observability_live.rs's.

use crate::support;

use std::collections::BTreeSet;

use serde_json::{Value, json};
use support::observability::{
    RUNBOOKS, alerts, dashboard, dashboard_queries, promtool_ok, scratch, without_thresholds,
    write_rules_file,
};
use support::repo_root;

#[test]
fn promtool_parses_every_dashboard_and_rule_expression() {
    let dir = scratch("parse");
    let rules = write_rules_file(&dir);
    // The dashboard's queries (variables substituted) as recording rules, so promtool parses
    // them the same way; and the alerts' expressions without their thresholds, which the live
    // test evaluates.
    let recorded: Vec<Value> = dashboard_queries()
        .into_iter()
        .map(|(_, expr)| expr)
        .chain(
            alerts()
                .iter()
                .map(|a| without_thresholds(a["expr"].as_str().unwrap())),
        )
        .enumerate()
        .map(|(i, expr)| json!({"record": format!("devportal:query_{i}"), "expr": expr}))
        .collect();
    assert!(recorded.len() > 25, "{} queries", recorded.len());
    let queries = dir.join("queries.yaml");
    std::fs::write(
        &queries,
        serde_yaml::to_string(&json!({"groups": [{"name": "dashboard", "rules": recorded}]}))
            .unwrap(),
    )
    .unwrap();
    let out = promtool_ok(
        &dir,
        &[
            "check",
            "rules",
            rules.to_str().unwrap(),
            queries.to_str().unwrap(),
        ],
    );
    println!("{out}");
}

#[test]
fn every_alert_has_a_unit_test_that_fires_and_one_that_stays_silent() {
    let tests_dir = repo_root().join("tests/alerts");
    let dir = scratch("alerts");
    write_rules_file(&dir);
    let mut files = Vec::new();
    for entry in std::fs::read_dir(&tests_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
            files.push(path);
        }
    }
    // Which alerts the files show firing, and which staying silent.
    let (mut fires, mut silent) = (BTreeSet::new(), BTreeSet::new());
    for path in &files {
        let file: Value = serde_yaml::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert_eq!(file["rule_files"], json!(["rules.yaml"]), "{path:?}");
        for test in file["tests"].as_array().unwrap() {
            for case in test["alert_rule_test"].as_array().unwrap() {
                let name = case["alertname"].as_str().unwrap().to_string();
                match case["exp_alerts"].as_array() {
                    Some(expected) if !expected.is_empty() => fires.insert(name),
                    _ => silent.insert(name),
                };
            }
        }
    }
    let names: BTreeSet<String> = alerts()
        .iter()
        .map(|a| a["alert"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(fires, names, "alerts shown firing");
    assert_eq!(silent, names, "alerts shown staying silent");

    let mut args = vec!["test".to_string(), "rules".to_string()];
    args.extend(
        files
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned()),
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = promtool_ok(&dir, &args);
    assert_eq!(out.matches("SUCCESS").count(), files.len(), "{out}");
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '-' | '_' => Some(c),
            ' ' => Some('-'),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_severity_for_summary_and_a_runbook_in_operations_md() {
    let operations = std::fs::read_to_string(repo_root().join("docs/operations.md")).unwrap();
    let anchors: BTreeSet<String> = operations
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    for alert in alerts() {
        let name = alert["alert"].as_str().expect("only alerting rules");
        let severity = alert["labels"]["severity"].as_str().unwrap_or_default();
        assert!(
            ["critical", "warning", "info"].contains(&severity),
            "{name}: severity {severity:?}"
        );
        assert!(alert["for"].is_string(), "{name}: no `for:`");
        for annotation in ["summary", "description"] {
            assert!(
                alert["annotations"][annotation].is_string(),
                "{name}: no {annotation}"
            );
        }
        let runbook = alert["annotations"]["runbook_url"].as_str().unwrap();
        let target = runbook.strip_prefix(RUNBOOKS).unwrap_or_else(|| {
            panic!("{name}: runbook_url {runbook} is not in docs/operations.md")
        });
        assert_eq!(target, name.to_lowercase(), "{name}: one runbook per alert");
        assert!(
            anchors.contains(target),
            "{name}: docs/operations.md has no heading for #{target}"
        );
    }
}

#[test]
fn the_dashboard_has_a_datasource_variable_job_and_namespace_and_uses_them() {
    let dashboard = dashboard();
    assert!(dashboard["schemaVersion"].as_u64().unwrap() >= 39);
    assert_eq!(dashboard["uid"], "devportal");
    let variables = dashboard["templating"]["list"].as_array().unwrap();
    let variable = |name: &str| {
        variables
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    assert_eq!(variable("job")["type"], "query");
    assert_eq!(variable("namespace")["type"], "query");

    let datasource = json!({"type": "prometheus", "uid": "${datasource}"});
    let mut titles = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        if panel["type"] == "row" {
            continue;
        }
        titles.push(panel["title"].as_str().unwrap().to_string());
        assert_eq!(panel["datasource"], datasource, "{}", panel["title"]);
        for target in panel["targets"].as_array().unwrap() {
            assert_eq!(target["datasource"], datasource, "{}", panel["title"]);
            let expr = target["expr"].as_str().unwrap();
            // devportal's own series are filtered to the chosen job and namespace; the API
            // server's are picked by webhook name.
            if expr.contains("devportal_") || expr.contains("up{") {
                assert!(
                    expr.contains(r#"job="$job", namespace="$namespace""#),
                    "{expr}"
                );
            }
        }
    }
    // What the issue asks the dashboard to show.
    for wanted in [
        "Admissions by decision",
        "Denials by reason",
        "Admission latency (devportal)",
        "Reconciles",
        "Reconcile errors",
        "Reconcile duration",
        "Keys by phase",
        "Time to approval",
        "API-key Secrets written and deleted",
        "Discovery fetch failures",
        "Leader",
    ] {
        assert!(titles.iter().any(|t| t == wanted), "no panel {wanted}");
    }
    for (place, query) in dashboard_queries() {
        assert!(
            !query.contains('$'),
            "{place}: unsubstituted variable in {query}"
        );
    }
}

#[test]
fn the_failing_calls_panel_counts_what_the_alert_counts_and_not_denials() {
    let failures = r#"error_type=~"calling_webhook_error|apiserver_internal_error""#;
    let panel = dashboard()["panels"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == "Webhook calls failing (API server)")
        .cloned()
        .expect("the panel");
    let expr = panel["targets"][0]["expr"].as_str().unwrap();
    assert!(expr.contains(failures), "{expr}");
    assert!(
        !expr.contains("no_error"),
        "denials are the webhook working: {expr}"
    );
    let alert = alerts()
        .into_iter()
        .find(|a| a["alert"] == "DevportalWebhookFailing")
        .unwrap();
    assert!(alert["expr"].as_str().unwrap().contains(failures));
}
