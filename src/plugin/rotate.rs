//! `kubectl devportal rotate KEY`: asks devportal for a new key value and waits until it is in
//! place. The request is a fresh token in the APIKey annotation
//! [`ROTATION_REQUEST_ANNOTATION`]; the controller generates a new value, replaces both Secrets
//! (so the old value stops working) and records the token in `status.rotation.request`.

use std::time::Duration;

use clap::Args;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{ApiResource, DynamicObject, Patch, PatchParams};

use super::output;
use super::session::Session;
use crate::names::{PLUGIN_MANAGER, ROTATION_REQUEST_ANNOTATION};
use crate::resources::{APIKey, APIKeyPhase};
use crate::{Error, Result};

/// Arguments of `rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// The APIKey to give a new value.
    pub key: String,

    /// How long to wait for devportal to replace the value.
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = crate::flags::parse_duration)]
    pub timeout: Duration,
}

/// A fresh rotation token: the time, in RFC 3339 UTC with nanoseconds.
pub fn token(now: Timestamp) -> String {
    format!("{now:.9}")
}

/// What the controller recorded of the last rotation it made: (`request`, `rotatedAt`).
pub fn recorded(object: &serde_json::Value) -> (Option<&str>, Option<&str>) {
    let rotation = &object["status"]["rotation"];
    (rotation["request"].as_str(), rotation["rotatedAt"].as_str())
}

/// Whether a key in `phase` can be rotated: only an Approved key has a value to replace; for
/// another phase, the error that says so (nothing is written then).
pub fn check_phase(key: &str, phase: Option<APIKeyPhase>, flags: &str) -> Result<()> {
    match phase {
        Some(APIKeyPhase::Approved) => Ok(()),
        other => Err(Error::Invalid(format!(
            "apikey/{key} is {}, not Approved: only an approved key has a value to rotate \
             (`kubectl devportal status {key}{flags}` says why)",
            other.map(|p| p.as_str()).unwrap_or("without a phase yet")
        ))),
    }
}

/// Requests the rotation and waits for the controller to record it.
pub async fn run(session: &Session, args: &RotateArgs) -> Result<()> {
    let typed = Api::<APIKey>::namespaced(session.client.clone(), &session.namespace);
    let current = typed.get(&args.key).await?;
    check_phase(
        &args.key,
        current.status.as_ref().and_then(|s| s.phase),
        &session.flags,
    )?;
    // The raw object: the rotation status is read by name, whatever the typed status carries.
    let resource = ApiResource::erase::<APIKey>(&());
    let api = Api::<DynamicObject>::namespaced_with(
        session.client.clone(),
        &session.namespace,
        &resource,
    );
    let token = token(Timestamp::now());
    let patch = serde_json::json!({
        "metadata": {"annotations": {ROTATION_REQUEST_ANNOTATION: token}}
    });
    let params = PatchParams {
        field_manager: Some(PLUGIN_MANAGER.into()),
        ..PatchParams::default()
    };
    api.patch(&args.key, &params, &Patch::Merge(&patch)).await?;
    output::emit(&format!(
        "apikey/{} rotation requested; waiting up to {}s for the new value\n",
        args.key,
        args.timeout.as_secs()
    ))?;
    let deadline = tokio::time::Instant::now() + args.timeout;
    loop {
        let object = serde_json::to_value(api.get(&args.key).await?)?;
        if let (Some(request), rotated_at) = recorded(&object)
            && request == token
        {
            return output::emit(&format!(
                "apikey/{} rotated{}: the old value no longer works; `kubectl devportal reveal \
                 {}{} | ...` gives the new one\n",
                args.key,
                rotated_at
                    .map(|t| format!(" at {}", output::inert(t)))
                    .unwrap_or_default(),
                args.key,
                session.flags
            ));
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(Error::Timeout(
                "waiting for devportal to record the rotation in status.rotation.request",
            ));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_approved_key_is_rotated() {
        assert!(check_phase("k", Some(APIKeyPhase::Approved), "").is_ok());
        let error = check_phase("k", Some(APIKeyPhase::Pending), " -n team-a").unwrap_err();
        let text = error.to_string();
        assert!(
            text.starts_with("apikey/k is Pending, not Approved"),
            "{text}"
        );
        assert!(
            text.contains("`kubectl devportal status k -n team-a`"),
            "{text}"
        );
        let error = check_phase("k", None, "").unwrap_err();
        assert!(error.to_string().contains("without a phase yet"));
    }

    #[test]
    fn tokens_are_utc_timestamps_with_nanoseconds() {
        let now: Timestamp = "2026-01-10T08:15:00.5Z".parse().unwrap();
        assert_eq!(token(now), "2026-01-10T08:15:00.500000000Z");
    }

    #[test]
    fn the_recorded_rotation_is_read_from_the_raw_status() {
        let object = serde_json::json!({"status": {"rotation": {
            "request": "2026-01-10T08:15:00.500000000Z", "rotatedAt": "2026-01-10T08:15:01Z"}}});
        assert_eq!(
            recorded(&object),
            (
                Some("2026-01-10T08:15:00.500000000Z"),
                Some("2026-01-10T08:15:01Z")
            )
        );
        assert_eq!(recorded(&serde_json::json!({"status": {}})), (None, None));
    }
}
