//! `kubectl devportal status KEY` (one key in full, like `cmctl status certificate`) and
//! `delete KEY`. Status shows only what devportal writes on the APIKey: the consumer cannot read
//! the enforcement Secret, so "at the gateway" is read from the phase, the Approved condition and
//! the Secret reference devportal sets once both Secrets are written.

use std::time::Duration;

use clap::Args;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};

use super::output;
use super::session::Session;
use crate::resources::{APIKey, APIKeyPhase};
use crate::{Error, Result};

/// Arguments of `status`.
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  kubectl devportal status toys-8bjlg -n team-a")]
pub struct StatusArgs {
    /// The APIKey.
    pub key: String,
}

/// Arguments of `delete`.
#[derive(Debug, Args)]
#[command(
    after_help = "Examples:\n  kubectl devportal delete toys-8bjlg -n team-a\n  \
                        kubectl devportal delete toys-8bjlg --wait=false"
)]
pub struct DeleteArgs {
    /// The APIKeys to delete.
    #[arg(required = true)]
    pub keys: Vec<String>,

    /// Wait until devportal has removed the key's Secrets and the key is gone.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    pub wait: bool,

    /// How long to wait.
    #[arg(long, value_name = "DURATION", default_value = "60s",
          value_parser = crate::flags::parse_duration)]
    pub timeout: Duration,
}

/// Whether the gateway enforces the key, as far as the APIKey's status tells.
pub fn at_gateway(key: &APIKey) -> String {
    let Some(status) = key.status.as_ref() else {
        return "no (devportal has not processed the key yet)".into();
    };
    let approved = status
        .conditions
        .iter()
        .any(|c| c.type_ == APIKeyPhase::Approved.as_str() && c.status == "True");
    match (status.phase, approved, status.secret_ref.is_some()) {
        (Some(APIKeyPhase::Approved), true, true) => "yes (Approved, Secrets written)".into(),
        (Some(APIKeyPhase::Approved), _, _) => "not yet (Approved, Secrets being written)".into(),
        (Some(phase), _, _) => format!("no ({})", phase.as_str()),
        (None, _, _) => "no (no phase yet)".into(),
    }
}

/// The key's status, one `Field: value` line each.
pub fn describe(key: &APIKey, now: Timestamp) -> String {
    let status = key.status.as_ref();
    let product = &key.spec.api_product_ref;
    let product_ns = product
        .namespace
        .clone()
        .or_else(|| key.namespace())
        .unwrap_or_default();
    let condition = status.and_then(|s| {
        let phase = s.phase?;
        s.conditions
            .iter()
            .find(|c| c.type_ == phase.as_str() && c.status == "True")
    });
    let reviewed = match status.and_then(|s| s.reviewed_by.clone()) {
        Some(by) => match status.and_then(|s| s.reviewed_at.as_ref()) {
            Some(at) => format!("by {by} at {}", output::timestamp(Some(&Time(at.0)))),
            None => format!("by {by}"),
        },
        None => String::new(),
    };
    let expires = match key.spec.expires_at.as_ref() {
        Some(at) if at.0 > now => format!(
            "{} (in {})",
            output::timestamp(Some(at)),
            output::age(Some(&Time(now)), at.0)
        ),
        Some(at) => format!("{} (passed)", output::timestamp(Some(at))),
        None => "never".into(),
    };
    let secret = status
        .and_then(|s| s.secret_ref.as_ref())
        .map(|r| format!("{} (data key {})", r.name, r.key))
        .or_else(|| {
            key.spec
                .secret_ref
                .as_ref()
                .map(|r| format!("{} (your own)", r.name))
        });
    let rotated = status
        .and_then(|s| s.rotation.as_ref())
        .map(|r| output::timestamp(Some(&r.rotated_at)))
        .unwrap_or_else(|| "never".into());
    let fields = [
        ("Name", key.name_any()),
        ("Namespace", key.namespace().unwrap_or_default()),
        ("Product", format!("{product_ns}/{}", product.name)),
        ("Plan", key.spec.plan_tier.clone()),
        (
            "Phase",
            status
                .and_then(|s| s.phase)
                .map(|p| p.as_str().to_string())
                .unwrap_or_default(),
        ),
        (
            "Reason",
            condition.map(|c| c.reason.clone()).unwrap_or_default(),
        ),
        (
            "Message",
            condition.map(|c| c.message.clone()).unwrap_or_default(),
        ),
        ("Reviewed", reviewed),
        ("Expires", expires),
        ("Secret", secret.unwrap_or_default()),
        ("Last rotation", rotated),
        ("At the gateway", at_gateway(key)),
    ];
    fields
        .into_iter()
        .map(|(field, value)| {
            let value = if value.is_empty() {
                output::NONE.to_string()
            } else {
                output::inert(&value)
            };
            format!("{:<16}{value}\n", format!("{field}:"))
        })
        .collect()
}

/// Prints the key's status.
pub async fn status(session: &Session, args: &StatusArgs) -> Result<()> {
    let api = Api::<APIKey>::namespaced(session.client.clone(), &session.namespace);
    let key = api.get(&args.key).await?;
    output::emit(&describe(&key, Timestamp::now()))
}

/// Deletes the keys, and waits (unless `--wait=false`) until they are gone.
pub async fn delete(session: &Session, args: &DeleteArgs) -> Result<()> {
    let api = Api::<APIKey>::namespaced(session.client.clone(), &session.namespace);
    for name in &args.keys {
        api.delete(name, &DeleteParams::default()).await?;
        output::emit(&format!("apikey/{name} deleted\n"))?;
    }
    if !args.wait {
        return Ok(());
    }
    let deadline = tokio::time::Instant::now() + args.timeout;
    for name in &args.keys {
        while api.get_opt(name).await?.is_some() {
            if tokio::time::Instant::now() >= deadline {
                return Err(Error::Invalid(format!(
                    "apikey/{name} is still there after {}s: devportal removes its Secrets \
                     first (`kubectl devportal status {name}{}`)",
                    args.timeout.as_secs(),
                    session.flags
                )));
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(status: serde_json::Value) -> APIKey {
        serde_json::from_value(json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "toys-x1", "namespace": "team-a"},
            "spec": {"apiProductRef": {"name": "toys", "namespace": "shop"}, "planTier": "gold",
                     "expiresAt": "2026-02-01T00:00:00Z"},
            "status": status
        }))
        .unwrap()
    }

    fn line<'a>(text: &'a str, field: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{field}:")))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {field} in {text}"))
    }

    #[test]
    fn a_denied_key_shows_the_reason_and_the_reviewer() {
        let denied = key(json!({"phase": "Denied", "reviewedBy": "bob",
            "reviewedAt": "2026-01-09T10:00:00Z",
            "conditions": [{"type": "Denied", "status": "True", "reason": "Denied",
                "message": "denied by bob: not for CI", "lastTransitionTime": "2026-01-09T10:00:00Z"}]}));
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let text = describe(&denied, now);
        assert_eq!(line(&text, "Phase"), "Denied");
        assert_eq!(line(&text, "Message"), "denied by bob: not for CI");
        assert_eq!(line(&text, "Reviewed"), "by bob at 2026-01-09T10:00:00Z");
        assert_eq!(line(&text, "Expires"), "2026-02-01T00:00:00Z (in 22d)");
        assert_eq!(line(&text, "Product"), "shop/toys");
        assert_eq!(line(&text, "Secret"), "<none>");
        assert_eq!(line(&text, "At the gateway"), "no (Denied)");
    }

    #[test]
    fn an_approved_key_with_its_secret_is_at_the_gateway() {
        let approved = key(json!({"phase": "Approved",
            "secretRef": {"name": "toys-x1-abc", "key": "api_key"},
            "rotation": {"request": "t", "rotatedAt": "2026-01-09T12:00:00Z"},
            "conditions": [{"type": "Approved", "status": "True", "reason": "Approved",
                "message": "", "lastTransitionTime": "2026-01-09T10:00:00Z"}]}));
        let now: Timestamp = "2026-01-10T00:00:00Z".parse().unwrap();
        let text = describe(&approved, now);
        assert_eq!(line(&text, "Secret"), "toys-x1-abc (data key api_key)");
        assert_eq!(line(&text, "Last rotation"), "2026-01-09T12:00:00Z");
        assert_eq!(
            line(&text, "At the gateway"),
            "yes (Approved, Secrets written)"
        );
        let written = key(json!({"phase": "Approved"}));
        assert_eq!(
            at_gateway(&written),
            "not yet (Approved, Secrets being written)"
        );
    }
}
