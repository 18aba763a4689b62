//! Key rotation: the requester (or an admin) sets the APIKey annotation
//! [`ROTATION_REQUEST_ANNOTATION`] to a new token, and the controller gives the Approved key a new
//! value in both Secrets, then records the token in `status.rotation` with the status write.
//!
//! Order and atomicity: the enforcement Secret is updated in place first (same name, new `api_key`
//! data: Authorino re-indexes an update of `api_key` and from then on refuses the old value), then
//! the consumer Secret, so the consumer is never told a value the gateway does not accept yet.
//! Both writes are preconditioned on the resourceVersion just read from Secrets whose ownership
//! is checked. Each carries the token in [`ROTATION_ANNOTATION`] (a token, never a value): after a
//! crash between the writes, or between them and the status write, the next reconcile finds the
//! token on the Secrets and finishes the job — copies the enforced value to the consumer Secret,
//! or only records the token — instead of rotating a second time.
//!
//! A key with no value yet (Pending until now) answers a request with its first value. Keys that
//! bring their own value (`spec.secretRef`) are rotated by writing a new value into their Secret;
//! the admission webhook refuses the annotation on them, and the controller ignores it.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::secrets::crash_point;
use crate::Result;
use crate::controller::context::Context;
use crate::keys::{self, ApiKeyValue};
use crate::names::key_reason::ROTATED;
use crate::names::{ROTATION_ANNOTATION, ROTATION_REQUEST_ANNOTATION};
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, KeyRotation};
use crate::secrets::{self, Enforcement, Role};

/// How the key's two Secrets stand, as [`decide`] needs to know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Found<'a> {
    /// The key has no Secret at all: it has no value yet.
    Nothing,
    /// One of the two is missing or elsewhere: the reconcile puts them in place first.
    Partial,
    /// Both are in place.
    Both {
        /// The rotation token the consumer Secret carries.
        consumer: Option<&'a str>,
        /// The rotation token the enforcement Secret carries, when it holds a well-formed value.
        enforcement: Option<&'a str>,
        /// Whether the two hold the same value.
        same_value: bool,
    },
}

/// What to do about a key's rotation request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Not yet (the Secrets are being put in place): status keeps its record.
    Nothing,
    /// The key is about to get its first value, which answers the request.
    FirstValue,
    /// Both Secrets carry the new value for this token already: only the record is missing.
    Record,
    /// The enforcement Secret carries the new value, the consumer Secret not yet: copy it there.
    FinishConsumer,
    /// Issue a new value: the enforcement Secret first, then the consumer Secret.
    Rotate,
}

/// The token of a request to act on, if any: the annotation's token when it differs from the one
/// `status.rotation` records, on an Approved key with a generated value. Nothing else needs the
/// Secrets read.
pub(super) fn outstanding<'a>(
    requested: Option<&'a str>,
    recorded: Option<&str>,
    approved_generated: bool,
) -> Option<&'a str> {
    requested.filter(|t| Some(*t) != recorded && approved_generated)
}

/// What to do about the outstanding request `token`, from what the key's Secrets carry.
pub(super) fn decide(token: &str, found: Found<'_>) -> Step {
    match found {
        Found::Nothing => Step::FirstValue,
        Found::Partial => Step::Nothing,
        Found::Both {
            consumer,
            enforcement,
            same_value,
        } if enforcement == Some(token) => {
            if consumer == Some(token) && same_value {
                Step::Record
            } else {
                Step::FinishConsumer
            }
        }
        Found::Both { .. } => Step::Rotate,
    }
}

/// What the rotation step did, for the status: see [`Handled::record`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Handled {
    /// Nothing to record: the status keeps the rotation it has.
    Unchanged,
    /// The request with this token is answered (the Secrets carry its value).
    Answered(String),
    /// The request with this token is answered once the key has a value.
    OnFirstValue(String),
}

impl Handled {
    /// The rotation generation the key's value belongs to once this step is done: the token
    /// answered now, else the one `status.rotation` records (none before the first rotation).
    pub(super) fn generation<'a>(&'a self, cached: &'a CachedKey) -> Option<&'a str> {
        match self {
            Handled::Answered(token) | Handled::OnFirstValue(token) => Some(token),
            Handled::Unchanged => cached.rotation().map(|r| r.request.as_str()),
        }
    }

    /// `status.rotation` to write: the new record, or the one the status has.
    pub(super) fn record(
        self,
        cached: &CachedKey,
        has_value: bool,
        now: Timestamp,
    ) -> Option<KeyRotation> {
        let answered = |request| {
            Some(KeyRotation {
                request,
                rotated_at: Time(now),
            })
        };
        match self {
            Handled::Answered(token) => answered(token),
            Handled::OnFirstValue(token) if has_value => answered(token),
            _ => cached.rotation().cloned(),
        }
    }
}

/// The token of the key's rotation request, if it has one.
fn requested(key: &APIKey) -> Option<&str> {
    key.metadata
        .annotations
        .as_ref()?
        .get(ROTATION_REQUEST_ANNOTATION)
        .map(String::as_str)
}

/// The rotation token a Secret carries.
fn token_of(secret: &Secret) -> Option<&str> {
    secret
        .metadata
        .annotations
        .as_ref()?
        .get(ROTATION_ANNOTATION)
        .map(String::as_str)
}

/// Acts on the key's rotation request, before the Secrets are reconciled: `enforcement` is where
/// and how the enforcement Secret should be, `None` unless the key is Approved.
pub(super) async fn before_secrets(
    cached: &CachedKey,
    key: &APIKey,
    enforcement: Option<&Enforcement>,
    ctx: &Context,
) -> Result<Handled> {
    let recorded = cached.rotation().map(|r| r.request.as_str());
    let target = enforcement.filter(|_| key.spec.secret_ref.is_none());
    let (Some(token), Some(target)) = (
        outstanding(requested(key), recorded, target.is_some()),
        target,
    ) else {
        return Ok(Handled::Unchanged);
    };
    // Live reads: the rotation must see what the Secrets hold now, not what the cache last saw.
    let namespace = key.namespace().unwrap_or_default();
    let consumer_name = secrets::consumer_secret_name(key);
    let consumer = ctx
        .secret_api(&namespace)
        .get_opt(&consumer_name)
        .await?
        .filter(|s| secrets::belongs_to(&s.metadata, key));
    let placeholder = ApiKeyValue::from_secret(String::new());
    let at = secrets::enforcement_secret(key, target, &placeholder).metadata;
    let enforced = ctx
        .secret_api(at.namespace.as_deref().unwrap_or_default())
        .get_opt(at.name.as_deref().unwrap_or_default())
        .await?
        .filter(|s| secrets::belongs_to(&s.metadata, key));
    let enforced_value = enforced
        .as_ref()
        .and_then(secrets::value_of)
        .filter(|v| keys::verify(v.expose()));
    let found = match (&consumer, &enforced) {
        (None, None) if ctx.secrets_of(key).is_empty() => Found::Nothing,
        (Some(consumer), Some(enforced)) => Found::Both {
            consumer: token_of(consumer),
            enforcement: token_of(enforced).filter(|_| enforced_value.is_some()),
            same_value: secrets::value_of(consumer) == secrets::value_of(enforced),
        },
        _ => Found::Partial,
    };
    let step = decide(token, found);
    let (Some(consumer), Some(enforced)) = (&consumer, &enforced) else {
        return Ok(match step {
            Step::FirstValue => Handled::OnFirstValue(token.into()),
            _ => Handled::Unchanged,
        });
    };
    let mac = ctx.mac_key.get().await?;
    let value = match (step, enforced_value) {
        (Step::Record, _) => return Ok(Handled::Answered(token.into())),
        (Step::FinishConsumer, Some(value)) => value,
        (Step::Rotate, _) => {
            let value = keys::generate(&ctx.config.key_prefix)?;
            let desired = secrets::enforcement_secret(key, target, &value);
            ctx.replace_secret(enforced, carrying(desired, token), Role::Enforcement)
                .await?;
            crash_point("rotation-between-secrets", key);
            value
        }
        _ => return Ok(Handled::Unchanged),
    };
    // The new value belongs to the generation of this token: the value before it no longer
    // verifies, so writing it back into the consumer Secret cannot undo the rotation.
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    let desired = secrets::vouched_consumer_secret(key, &value, mac.of(uid, Some(token), &value));
    ctx.replace_secret(consumer, carrying(desired, token), Role::Consumer)
        .await?;
    ctx.publish_event(
        key,
        false,
        ROTATED,
        &format!(
            "rotation request {token:?}: a new key value is in Secret {consumer_name} and enforced \
             by the gateway; the previous value no longer works"
        ),
    )
    .await;
    Ok(Handled::Answered(token.into()))
}

/// `desired` with the rotation token whose value it holds.
fn carrying(mut desired: Secret, token: &str) -> Secret {
    desired
        .metadata
        .annotations
        .get_or_insert_default()
        .insert(ROTATION_ANNOTATION.into(), token.into());
    desired
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "2026-12-01T07:00:00Z";
    const OLD: &str = "2026-11-01T07:00:00Z";

    fn both<'a>(consumer: Option<&'a str>, enforcement: Option<&'a str>, same: bool) -> Found<'a> {
        Found::Both {
            consumer,
            enforcement,
            same_value: same,
        }
    }

    #[test]
    fn only_a_new_token_on_an_approved_generated_key_is_acted_on() {
        assert_eq!(outstanding(Some(T), None, true), Some(T));
        assert_eq!(outstanding(Some(T), Some(OLD), true), Some(T));
        // The same token again, once recorded; no request; not Approved, or a brought value.
        assert_eq!(outstanding(Some(T), Some(T), true), None);
        assert_eq!(outstanding(None, Some(OLD), true), None);
        assert_eq!(outstanding(Some(T), None, false), None);
    }

    #[test]
    fn a_new_token_rotates_an_approved_key_once() {
        // First request, and a later one: the Secrets carry no token, or the previous one.
        assert_eq!(decide(T, both(None, None, true)), Step::Rotate);
        assert_eq!(decide(T, both(Some(OLD), Some(OLD), true)), Step::Rotate);
        // Rotated and recorded: the next look at the Secrets finds the token on both.
        assert_eq!(decide(T, both(Some(T), Some(T), true)), Step::Record);
    }

    #[test]
    fn a_key_without_a_value_answers_with_its_first_one() {
        assert_eq!(decide(T, Found::Nothing), Step::FirstValue);
        // Secrets half in place (one being re-created): the reconcile settles them first.
        assert_eq!(decide(T, Found::Partial), Step::Nothing);
    }

    #[test]
    fn the_status_keeps_its_record_until_a_request_is_answered() {
        let now: Timestamp = "2026-12-01T07:00:01Z".parse().unwrap();
        let mut key: APIKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k", "namespace": "team"},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold"}
        }))
        .unwrap();
        let previous = KeyRotation {
            request: OLD.into(),
            rotated_at: Time("2026-11-01T07:00:01Z".parse().unwrap()),
        };
        key.status = Some(crate::resources::APIKeyStatus {
            rotation: Some(previous.clone()),
            ..Default::default()
        });
        let cached = CachedKey::from(key);
        assert_eq!(
            Handled::Unchanged.record(&cached, true, now),
            Some(previous.clone())
        );
        let first = Handled::OnFirstValue(T.into());
        assert_eq!(first.clone().record(&cached, false, now), Some(previous));
        let answered = Some(KeyRotation {
            request: T.into(),
            rotated_at: Time(now),
        });
        assert_eq!(first.record(&cached, true, now), answered);
        assert_eq!(
            Handled::Answered(T.into()).record(&cached, true, now),
            answered
        );
    }

    #[test]
    fn after_a_crash_the_rotation_is_finished_not_repeated() {
        // Crash between the two Secret writes: the enforced value goes to the consumer.
        assert_eq!(decide(T, both(None, Some(T), false)), Step::FinishConsumer);
        assert_eq!(
            decide(T, both(Some(OLD), Some(T), false)),
            Step::FinishConsumer
        );
        // Crash after both writes, before the status write: only the record is missing.
        assert_eq!(decide(T, both(Some(T), Some(T), true)), Step::Record);
        // Both carry the token but the values differ (someone edited one): the enforced one wins.
        assert_eq!(
            decide(T, both(Some(T), Some(T), false)),
            Step::FinishConsumer
        );
        // Only the consumer carries the token (never written in this order): a fresh rotation.
        assert_eq!(decide(T, both(Some(T), None, true)), Step::Rotate);
    }
}
