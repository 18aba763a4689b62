//! The gateway-side expiry rule that docs/kuadrant.md tells platform engineers to put in their
//! AuthPolicy, evaluated with a CEL interpreter exactly as written there: over Authorino's
//! `auth.identity` (the whole enforcement Secret) and `request.time` (a `{seconds, nanos}` map, as
//! Authorino fills it for a request over the gRPC ext_authz interface).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};

/// The `predicate` of the `not-expired` authorization rule in docs/kuadrant.md.
fn documented_predicate() -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kuadrant.md"))
            .expect("docs/kuadrant.md");
    let rule = doc
        .find("not-expired:")
        .expect("docs/kuadrant.md has a not-expired rule");
    let line = doc[rule..]
        .lines()
        .find(|l| l.trim_start().starts_with("- predicate:"))
        .expect("the rule has a predicate");
    let parsed: BTreeMap<String, String> =
        serde_yaml::from_str(line.trim_start().trim_start_matches("- ")).expect("YAML");
    parsed["predicate"].clone()
}

/// What Authorino's CEL input holds for a request authenticated by `identity` at `now` (seconds).
fn evaluate(predicate: &str, identity: Value, now: i64) -> Result<bool, String> {
    let program = cel::Program::compile(predicate).map_err(|e| format!("{e:?}"))?;
    let mut context = cel::Context::default();
    let auth = cel::to_value(json!({"identity": identity})).map_err(|e| e.to_string())?;
    let request =
        cel::to_value(json!({"time": {"seconds": now, "nanos": 0}})).map_err(|e| e.to_string())?;
    context.add_variable_from_value("auth", auth);
    context.add_variable_from_value("request", request);
    match program.execute(&context).map_err(|e| format!("{e:?}"))? {
        cel::Value::Bool(allowed) => Ok(allowed),
        other => Err(format!("not a bool: {other:?}")),
    }
}

/// An enforcement Secret as Authorino exposes it, with `annotations` (none when `None`).
fn identity(annotations: Option<Value>) -> Value {
    let mut metadata = json!({
        "name": "apikey-0f9e2b1c-4d5e-4f60-8a7b-9c0d1e2f3a4b-1a2b3c4d",
        "namespace": "kuadrant-system",
        "labels": {"app": "toystore", "authorino.kuadrant.io/managed-by": "authorino"},
    });
    if let Some(annotations) = annotations {
        metadata["annotations"] = annotations;
    }
    json!({"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "type": "Opaque"})
}

const EXPIRES: &str = "2026-06-01T12:00:00Z";
const EXPIRES_SECONDS: i64 = 1_780_315_200;

#[test]
fn the_documented_rule_refuses_expired_keys_and_allows_the_rest() {
    let predicate = documented_predicate();
    let expiring = || {
        identity(Some(json!({
            "secret.kuadrant.io/plan-id": "gold",
            "secret.kuadrant.io/expires-at": EXPIRES,
        })))
    };
    assert_eq!(
        evaluate(&predicate, expiring(), EXPIRES_SECONDS - 60),
        Ok(true),
        "a minute before expiry"
    );
    assert_eq!(
        evaluate(&predicate, expiring(), EXPIRES_SECONDS),
        Ok(false),
        "at the expiry second (devportal's Expired phase is inclusive too)"
    );
    assert_eq!(
        evaluate(&predicate, expiring(), EXPIRES_SECONDS + 3600),
        Ok(false),
        "an hour after expiry"
    );
    let offset = identity(Some(
        json!({"secret.kuadrant.io/expires-at": "2026-06-01T14:00:00+02:00"}),
    ));
    assert_eq!(
        evaluate(&predicate, offset, EXPIRES_SECONDS + 1),
        Ok(false),
        "RFC 3339 with an offset is the same instant"
    );
    let no_expiry = identity(Some(json!({"secret.kuadrant.io/plan-id": "gold"})));
    assert_eq!(
        evaluate(&predicate, no_expiry, EXPIRES_SECONDS),
        Ok(true),
        "a key without expiry"
    );
    assert_eq!(
        evaluate(&predicate, identity(None), EXPIRES_SECONDS),
        Ok(true),
        "a Secret without any annotations"
    );
}

#[test]
fn comparing_the_timestamp_with_the_request_time_map_directly_fails() {
    // Why the documented rule converts both sides to seconds: request.time is a map, not a
    // timestamp, so the obvious comparison has no overload and Authorino denies every key.
    let naive = "timestamp(auth.identity.metadata.annotations['secret.kuadrant.io/expires-at']) > request.time";
    let identity = identity(Some(json!({"secret.kuadrant.io/expires-at": EXPIRES})));
    let error = evaluate(naive, identity, EXPIRES_SECONDS - 60).unwrap_err();
    assert!(error.contains("NoSuchOverload"), "{error}");
}
