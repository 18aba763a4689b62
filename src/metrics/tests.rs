use super::*;

#[test]
fn exposition_names_every_metric_with_bounded_labels() {
    let metrics = Metrics::new();
    metrics.admission.observe(
        AdmissionLabels {
            resource: "apikeys",
            operation: "CREATE",
            decision: "allowed",
            reason: "allowed",
        },
        Duration::from_micros(300),
    );
    metrics
        .controller
        .reconciled("apikey", Duration::from_millis(3), None);
    metrics.controller.reconciled(
        "apikey",
        Duration::from_millis(3),
        Some(&crate::Error::ShuttingDown),
    );
    metrics
        .controller
        .set_keys(APIKeyPhase::ALL.map(|p| (p, 1)));
    metrics
        .controller
        .set_oldest_pending([(ApprovalMode::Automatic, 0.0), (ApprovalMode::Manual, 90.5)]);
    metrics.controller.approved_after(Duration::from_secs(2));
    metrics.controller.secret_written("enforcement");
    metrics.controller.secret_deleted("consumer");
    metrics.controller.fetch_failed("openapi");
    metrics.controller.set_leader(true);
    metrics.controller.set_inbox_deferred(7);
    let text = metrics.encode();
    for line in [
        "devportal_admission_requests_total{resource=\"apikeys\",operation=\"CREATE\",decision=\"allowed\",reason=\"allowed\"} 1",
        "devportal_admission_duration_seconds_count{resource=\"apikeys\",decision=\"allowed\"} 1",
        "devportal_reconcile_total{controller=\"apikey\",result=\"success\"} 1",
        "devportal_reconcile_errors_total{controller=\"apikey\",error=\"shutting_down\"} 1",
        "devportal_reconcile_duration_seconds_count{controller=\"apikey\"} 2",
        "devportal_apikeys{phase=\"Approved\"} 1",
        "devportal_apikeys_oldest_pending_seconds{approval=\"manual\"} 90.5",
        "devportal_approval_latency_seconds_count 1",
        "devportal_secrets_written_total{role=\"enforcement\"} 1",
        "devportal_secrets_deleted_total{role=\"consumer\"} 1",
        "devportal_discovery_fetch_failures_total{kind=\"openapi\"} 1",
        "devportal_leader 1",
        "devportal_controller_inbox_deferred 7",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}
