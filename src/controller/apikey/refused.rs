//! A key whose Secret the API server refuses to write says so on the key: phase `Failed`, reason
//! [`SECRET_WRITE_REFUSED`], the API server's reason and message (a ResourceQuota's "exceeded
//! quota", a namespace being terminated). Without it the key kept whatever status it had, or none
//! at all, while the reconcile failed and was retried. The error is still returned, so the
//! reconcile is retried (within seconds for a quota; when the enforcement namespace was deleted,
//! at once when it returns: see `controller/retry.rs`) and counted in `devportal_reconcile_errors_total{error="kube"}`.

use super::phase::Evaluation;
use crate::Error;
use crate::controller::context::Context;
use crate::names::key_reason::SECRET_WRITE_REFUSED;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, APIKeyPhase, APIKeyStatus};

/// The condition message for an error that is the API server refusing a write (a 4xx other than
/// a conflict or throttling), `None` for anything else (the API server unavailable, a conflict,
/// devportal's own errors), which says nothing about the key.
pub(super) fn message(error: &Error) -> Option<String> {
    let Error::Kube(kube::Error::Api(status)) = error else {
        return None;
    };
    let refused = (400..500).contains(&status.code) && !matches!(status.code, 409 | 429);
    refused.then(|| {
        format!(
            "{}: the API server refused to write the key's Secret: {}; retried until it succeeds",
            if status.reason.is_empty() {
                "Refused"
            } else {
                &status.reason
            },
            status.message
        )
    })
}

/// The key's evaluation with the refusal in its place: phase `Failed`, reason
/// [`SECRET_WRITE_REFUSED`], `message`.
pub(super) fn evaluation(evaluation: Evaluation, message: String) -> Evaluation {
    evaluation.with(APIKeyPhase::Failed, SECRET_WRITE_REFUSED, message)
}

/// Writes `status`, the refusal's, into the key (and a warning Event saying `message` on the
/// transition). Best effort: the caller returns the refusal itself either way.
pub(super) async fn report(
    cached: &CachedKey,
    key: &APIKey,
    status: &APIKeyStatus,
    message: &str,
    ctx: &Context,
) {
    if !cached.status_is(status)
        && let Err(error) = ctx.replace_status(key, status).await
    {
        tracing::debug!(%error, "status of a key whose Secret was refused not written");
        return;
    }
    if cached.phase() != Some(APIKeyPhase::Failed) {
        ctx.publish_event(key, true, APIKeyPhase::Failed.as_str(), message)
            .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16, reason: &str, text: &str) -> Error {
        Error::Kube(kube::Error::Api(Box::new(
            Status::failure(text, reason).with_code(code),
        )))
    }

    #[test]
    fn a_quota_refusal_is_reported_with_the_api_servers_reason_and_message() {
        let quota = api(
            403,
            "Forbidden",
            "secrets \"k\" is forbidden: exceeded quota: secrets, requested: count/secrets=1, \
             used: count/secrets=10, limited: count/secrets=10",
        );
        let message = message(&quota).expect("a refusal");
        assert!(message.starts_with("Forbidden: "), "{message}");
        assert!(message.contains("exceeded quota: secrets"), "{message}");
        let missing = api(404, "NotFound", "namespaces \"kuadrant-system\" not found");
        assert!(message_of(&missing).starts_with("NotFound: "));
    }

    fn message_of(error: &Error) -> String {
        message(error).expect("a refusal")
    }

    #[test]
    fn conflicts_throttling_outages_and_devportals_own_errors_are_not_refusals() {
        for code in [409, 429, 500, 503] {
            assert_eq!(message(&api(code, "x", "y")), None, "{code}");
        }
        assert_eq!(message(&Error::Invalid("no plan".into())), None);
        assert_eq!(message(&Error::Timeout("create")), None);
    }
}
