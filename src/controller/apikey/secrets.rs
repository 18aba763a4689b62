//! The key's two Secrets: find or make the key value, write both copies, remove them.

use k8s_openapi::api::core::v1::Secret;
use kube::{Api, ResourceExt};

use super::phase::Evaluation;
use crate::Result;
use crate::controller::context::Context;
use crate::keys::{self, ApiKeyValue};
use crate::names;
use crate::resources::{APIKey, SecretKeyRef};
use crate::secrets::{self, Enforcement, Role};

/// Makes both Secrets hold the key with the right labels and annotations. The inner `Err` is a
/// problem the consumer must fix (their own Secret is missing or empty).
pub(super) async fn ensure_secrets(
    key: &APIKey,
    evaluation: &Evaluation,
    ctx: &Context,
) -> Result<Result<SecretKeyRef, String>> {
    let namespace = key.namespace().unwrap_or_default();
    let (auth, _, policy_namespace) = evaluation
        .auth
        .clone()
        .expect("Approved implies an API-key rule");
    let target = Enforcement {
        namespace: if auth.all_namespaces {
            ctx.config.enforcement_namespace.clone()
        } else {
            policy_namespace
        },
        selector_labels: auth.selector.match_labels.clone().unwrap_or_default(),
        tier: key.spec.plan_tier.clone(),
        user_id: key
            .spec
            .requested_by
            .as_ref()
            .map(|r| r.user_id.clone())
            .unwrap_or_default(),
        expires_at: key.spec.expires_at.as_ref().map(|t| t.0.to_string()),
    };
    let consumer_name = secrets::consumer_secret_name(key);
    let enforcement_name = secrets::enforcement_secret_name(key);
    let own_secret = key.spec.secret_ref.is_some();
    let consumer_api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
    let enforcement_api = Api::<Secret>::namespaced(ctx.client.clone(), &target.namespace);
    let reference = SecretKeyRef {
        name: consumer_name.clone(),
        key: names::API_KEY_DATA.into(),
    };

    // Enforcement Secrets of this key left in another namespace (the AuthPolicy moved) go.
    for stale in ctx.secrets_of(key) {
        let in_place = stale.namespace == target.namespace && stale.name == enforcement_name;
        if !in_place && stale.role == Role::Enforcement {
            ctx.delete_secret(&stale).await?;
        }
    }

    let placeholder = ApiKeyValue::from_secret(String::new());
    let desired_enforcement = secrets::enforcement_secret(key, &target, &placeholder).metadata;
    let desired_consumer = secrets::consumer_secret(key, &placeholder).metadata;
    let enforcement_ok = ctx
        .secrets
        .get(&target.namespace, &enforcement_name)
        .is_some_and(|s| s.matches(&desired_enforcement));
    let consumer_ok = own_secret
        || ctx
            .secrets
            .get(&namespace, &consumer_name)
            .is_some_and(|s| s.matches(&desired_consumer));
    if enforcement_ok && consumer_ok && !own_secret {
        return Ok(Ok(reference));
    }

    // Find the key value: the consumer's own Secret, else an existing copy, else a new key. Live
    // reads, not the cache: a Secret written a moment ago must be found, never regenerated.
    let consumer_current = consumer_api.get_opt(&consumer_name).await?;
    let consumer_value = consumer_current.as_ref().and_then(secrets::value_of);
    let enforcement_current = enforcement_api.get_opt(&enforcement_name).await?;
    let enforcement_value = enforcement_current.as_ref().and_then(secrets::value_of);
    // The cache may lag behind our own writes; what the live objects say settles it.
    let live_ok = |current: &Option<Secret>, desired| {
        current
            .as_ref()
            .is_some_and(|s| secrets::metadata_matches(&s.metadata, desired))
    };
    let consumer_ok = consumer_ok || live_ok(&consumer_current, &desired_consumer);
    let enforcement_ok = enforcement_ok || live_ok(&enforcement_current, &desired_enforcement);
    let value = if own_secret {
        match consumer_value.clone() {
            Some(v) => v,
            None => {
                return Ok(Err(format!(
                    "Secret {namespace}/{consumer_name} named in spec.secretRef is missing or has no {:?} entry",
                    names::API_KEY_DATA
                )));
            }
        }
    } else {
        match consumer_value.clone().or_else(|| enforcement_value.clone()) {
            Some(v) => v,
            None => keys::generate(&ctx.config.key_prefix)?,
        }
    };

    if !own_secret && (!consumer_ok || consumer_value.as_ref() != Some(&value)) {
        ctx.apply_secret(
            &consumer_api,
            &secrets::consumer_secret(key, &value),
            Role::Consumer,
        )
        .await?;
    }
    if !enforcement_ok || enforcement_value.as_ref() != Some(&value) {
        ctx.apply_secret(
            &enforcement_api,
            &secrets::enforcement_secret(key, &target, &value),
            Role::Enforcement,
        )
        .await?;
    }
    Ok(Ok(reference))
}

/// Deletes every Secret devportal wrote for `key` (never a consumer's own Secret).
pub(super) async fn remove_secrets(key: &APIKey, ctx: &Context) -> Result<()> {
    for secret in ctx.secrets_of(key) {
        ctx.delete_secret(&secret).await?;
    }
    Ok(())
}

/// A test hook: when `DEVPORTAL_CRASH_AT` names this point, the process exits here at once, as
/// if killed. Integration tests use it to prove a restart neither duplicates nor loses a key.
/// Only in builds with the `testing` feature.
#[cfg(feature = "testing")]
pub(super) fn crash_point(name: &str) {
    static CRASH_AT: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if CRASH_AT
        .get_or_init(|| std::env::var("DEVPORTAL_CRASH_AT").ok())
        .as_deref()
        == Some(name)
    {
        eprintln!("DEVPORTAL_CRASH_AT={name}: exiting");
        std::process::exit(86);
    }
}

/// Without the `testing` feature there are no crash points.
#[cfg(not(feature = "testing"))]
pub(super) fn crash_point(_name: &str) {}
