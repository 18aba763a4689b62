use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::*;
use crate::resources::{APIKeyPhase, ApprovalMode};

/// Metrics with one of every recording made, so that every registered family has a sample.
fn recorded() -> Metrics {
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
    metrics.controller.event_suppressed("Approved");
    metrics.controller.set_leader(true);
    metrics.controller.set_inbox_deferred(7);
    metrics
        .certificates
        .set_expiry(Certificate::Serving, Some(1_800_000_000.0));
    metrics
}

/// One sample line of the exposition: its name, its labels and its value.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: String,
}

/// One metric family of the exposition, as its `# HELP`, `# TYPE` and sample lines give it.
#[derive(Default)]
struct MetricFamily {
    help: String,
    kind: String,
    samples: Vec<Sample>,
}

fn sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, rest.strip_suffix('}').expect("labels close")),
        None => (series, ""),
    };
    let labels = labels
        .split(',')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').expect("label=value");
            let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"'));
            (key.to_string(), value.expect("a quoted value").to_string())
        })
        .collect();
    Sample {
        name: name.to_string(),
        labels,
        value: value.to_string(),
    }
}

/// Walks the text exposition: every family by name, with the samples that belong to it (its
/// name, or its name and a counter's or histogram's suffix).
fn families(text: &str) -> BTreeMap<String, MetricFamily> {
    let mut families: BTreeMap<String, MetricFamily> = BTreeMap::new();
    for line in text.lines().filter(|l| !l.is_empty() && *l != "# EOF") {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').unwrap_or((rest, ""));
            families.entry(name.into()).or_default().help = help.into();
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("# TYPE name type");
            families.entry(name.into()).or_default().kind = kind.into();
        } else if !line.starts_with('#') {
            let sample = sample(line);
            let belongs = |name: &String| {
                sample.name == *name
                    || sample
                        .name
                        .strip_prefix(name.as_str())
                        .is_some_and(|suffix| {
                            ["_total", "_created", "_bucket", "_sum", "_count"].contains(&suffix)
                        })
            };
            let family = families
                .keys()
                .filter(|name| belongs(name))
                .max_by_key(|name| name.len())
                .cloned()
                .unwrap_or_else(|| panic!("sample {line:?} belongs to no declared family"));
            families.get_mut(&family).unwrap().samples.push(sample);
        }
    }
    families
}

#[test]
fn every_registered_family_has_a_name_help_type_and_a_sample() {
    let families = families(&recorded().encode());
    assert!(!families.is_empty(), "the exposition declares families");
    for (name, family) in &families {
        assert!(
            name.starts_with("devportal_") || name.starts_with("process_"),
            "{name} has the prefix"
        );
        assert!(!family.help.trim().is_empty(), "{name} has help text");
        assert!(
            ["counter", "gauge", "histogram"].contains(&family.kind.as_str()),
            "{name} has a type: {:?}",
            family.kind
        );
        // A family with no sample here is one `recorded()` does not exercise: record it there.
        assert!(!family.samples.is_empty(), "{name} has a sample");
        for sample in &family.samples {
            assert!(
                sample.value.parse::<f64>().is_ok_and(f64::is_finite),
                "{}: {}",
                sample.name,
                sample.value
            );
        }
    }
}

#[test]
fn every_label_value_is_a_word_from_a_small_set_never_object_data() {
    let families = families(&recorded().encode());
    let mut values: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (name, family) in &families {
        for sample in &family.samples {
            for (key, value) in &sample.labels {
                if key == "le" {
                    // A histogram's bucket bounds, fixed when it is registered.
                    continue;
                }
                if name == "devportal_build_info" {
                    // Build constants: one series per binary.
                    let expected = if key == "version" { VERSION } else { REVISION };
                    assert_eq!(value, expected, "{name}{{{key}}}");
                    continue;
                }
                // Object names, namespaces, UIDs, users, URLs and messages all carry a character
                // outside letters and underscores (`-`, `.`, `/`, `:`, `@`, digits, spaces).
                assert!(
                    !value.is_empty()
                        && value.len() <= 32
                        && value.chars().all(|c| c.is_ascii_alphabetic() || c == '_'),
                    "{name}{{{key}={value:?}}} is a name from a fixed set"
                );
                values
                    .entry((name.clone(), key.clone()))
                    .or_default()
                    .insert(value.clone());
            }
        }
    }
    for ((name, key), seen) in &values {
        assert!(seen.len() <= 8, "{name} {key}: {seen:?}");
    }
}

#[test]
fn recordings_appear_under_their_labels() {
    let text = recorded().encode();
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
        "devportal_controller_events_suppressed_total{reason=\"Approved\"} 1",
        "devportal_leader 1",
        "devportal_controller_inbox_deferred 7",
        "devportal_certificate_expiry_timestamp_seconds{certificate=\"serving\"} 1800000000.0",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
}

#[test]
fn build_info_names_the_version_and_revision() {
    let text = recorded().encode();
    let line = format!("devportal_build_info{{version=\"{VERSION}\",revision=\"{REVISION}\"}} 1");
    assert!(text.contains(&line), "missing {line:?} in\n{text}");
    assert_eq!(VERSION, env!("CARGO_PKG_VERSION"));
    assert!(
        REVISION == "unknown" || REVISION.chars().all(|c| c.is_ascii_hexdigit()),
        "{REVISION}"
    );
}

#[cfg(target_os = "linux")]
#[test]
fn the_standard_process_metrics_are_exported_under_their_usual_names() {
    let families = families(&recorded().encode());
    for (name, kind) in [
        ("process_cpu_seconds", "counter"),
        ("process_resident_memory_bytes", "gauge"),
        ("process_virtual_memory_bytes", "gauge"),
        ("process_open_fds", "gauge"),
        ("process_max_fds", "gauge"),
        ("process_start_time_seconds", "gauge"),
    ] {
        let family = families
            .get(name)
            .unwrap_or_else(|| panic!("no {name} in {:?}", families.keys()));
        assert_eq!(family.kind, kind, "{name}");
        let sample = &family.samples[0];
        assert!(sample.labels.is_empty(), "{name} has no labels");
        assert!(sample.value.parse::<f64>().unwrap() >= 0.0, "{name}");
    }
    assert!(
        families["process_cpu_seconds"].samples[0].name == "process_cpu_seconds_total",
        "the counter's sample has the _total suffix"
    );
}
