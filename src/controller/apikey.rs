//! APIKey reconcile: decide the phase, keep the two Secrets in step while Approved, delete the
//! enforcement Secret the moment the key leaves Approved, and report it all in status.

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

use super::Context;
use super::cached_key::CachedKey;
use crate::conditions::{Desired, merge};
use crate::discovery::{Resolution, resolve};
use crate::keys::{self, ApiKeyValue};
use crate::resources::kuadrant::{ApiKeyAuth, Credentials};
use crate::resources::{
    APIKey, APIKeyPhase, APIKeyStatus, APIProduct, ApprovalMode, DiscoveredPlan, KeyAuthScheme,
    SecretKeyRef,
};
use crate::secrets::{self, Enforcement, Role};
use crate::{Error, Result};

/// Finalizer that guards the cross-namespace enforcement Secret.
pub const FINALIZER: &str = "devportal.kuadrant.io/secrets";

/// The outcome of the phase rules for one key.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    /// The phase.
    pub phase: APIKeyPhase,
    /// PascalCase reason for the phase's condition.
    pub reason: &'static str,
    /// Human-readable explanation.
    pub message: String,
    /// The requested tier's plan, when the product offers it.
    pub plan: Option<DiscoveredPlan>,
    /// The API-key rule, its credential location and the AuthPolicy's namespace.
    pub auth: Option<(ApiKeyAuth, Option<Credentials>, String)>,
    /// Host name to call the API on.
    pub hostname: Option<String>,
}

impl Decision {
    fn with(mut self, phase: APIKeyPhase, reason: &'static str, message: String) -> Self {
        self.phase = phase;
        self.reason = reason;
        self.message = message;
        self
    }
}

/// Applies the phase rules, in order: Failed > Rejected > Expired > Approved > Pending.
pub fn decide(
    key: &APIKey,
    product: Option<&APIProduct>,
    resolution: Option<&Resolution>,
    now: Timestamp,
) -> Decision {
    let product_name = format!(
        "{}/{}",
        key.product_namespace().unwrap_or_default(),
        key.spec.api_product_ref.name
    );
    let plans = resolution.map(Resolution::plans).unwrap_or_default();
    let base = Decision {
        phase: APIKeyPhase::Pending,
        reason: "",
        message: String::new(),
        plan: plans.iter().find(|p| p.tier == key.spec.plan_tier).cloned(),
        auth: resolution.and_then(Resolution::api_key_rule),
        hostname: resolution.and_then(Resolution::hostname),
    };
    let failed = |reason, message| base.clone().with(APIKeyPhase::Failed, reason, message);
    let Some(product) = product else {
        return failed(
            "ProductNotFound",
            format!("APIProduct {product_name} does not exist"),
        );
    };
    if product.meta().deletion_timestamp.is_some() {
        return failed(
            "ProductDeleted",
            format!("APIProduct {product_name} is being deleted"),
        );
    }
    if base.plan.is_none() {
        let offered: Vec<_> = plans.iter().map(|p| p.tier.as_str()).collect();
        return failed(
            "TierNotFound",
            format!(
                "tier {:?} is not offered by APIProduct {product_name} (offered: {})",
                key.spec.plan_tier,
                if offered.is_empty() {
                    "none".to_string()
                } else {
                    offered.join(", ")
                }
            ),
        );
    }
    if base.auth.is_none() {
        return failed(
            "NoAPIKeyAuth",
            format!(
                "no enforced AuthPolicy with an apiKey rule protects APIProduct {product_name}'s route"
            ),
        );
    }
    if key
        .spec
        .requested_by
        .as_ref()
        .is_none_or(|r| r.user_id.is_empty())
    {
        return failed(
            "MissingRequester",
            "spec.requestedBy.userId is empty (the devportal admission webhook sets it)".into(),
        );
    }
    let reviewer = key
        .spec
        .approval
        .as_ref()
        .and_then(|a| a.reviewed_by.clone())
        .unwrap_or_else(|| "a reviewer".into());
    if let Some(approval) = key.spec.approval.as_ref().filter(|a| !a.approved) {
        let why = approval
            .reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default();
        return base.with(
            APIKeyPhase::Rejected,
            "Rejected",
            format!("rejected by {reviewer}{why}"),
        );
    }
    if let Some(expires) = &key.spec.expires_at
        && expires.0 <= now
    {
        return base.with(
            APIKeyPhase::Expired,
            "Expired",
            format!("expired at {}", expires.0),
        );
    }
    if key.spec.approval.as_ref().is_some_and(|a| a.approved) {
        return base.with(
            APIKeyPhase::Approved,
            "Approved",
            format!("approved by {reviewer}"),
        );
    }
    if product.spec.approval_mode == ApprovalMode::Automatic {
        return base.with(
            APIKeyPhase::Approved,
            "AutoApproved",
            format!("APIProduct {product_name} approves keys automatically"),
        );
    }
    base.with(
        APIKeyPhase::Pending,
        "AwaitingApproval",
        format!("waiting for an owner of APIProduct {product_name} to approve"),
    )
}

/// Reconciles one APIKey, behind the finalizer that guards its cross-namespace Secret.
pub async fn reconcile(key: Arc<CachedKey>, ctx: Arc<Context>) -> Result<Action> {
    ctx.wait_synced().await?;
    let api =
        Api::<CachedKey>::namespaced(ctx.client.clone(), &key.namespace().unwrap_or_default());
    finalizer(&api, FINALIZER, key, |event| async {
        match event {
            Finalizer::Apply(key) => apply(&key, &ctx).await,
            Finalizer::Cleanup(key) => cleanup(&key.to_key(), &ctx).await,
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)))
}

async fn apply(cached: &CachedKey, ctx: &Context) -> Result<Action> {
    let key = cached.to_key();
    let product_ref = ObjectRef::<APIProduct>::new(&key.spec.api_product_ref.name)
        .within(key.product_namespace().unwrap_or_default());
    ctx.key_products.set(&key, &product_ref);
    let product = ctx.key_product_cache.get(&product_ref);
    let resolution = product.as_ref().map(|p| resolve(p, &ctx.caches));
    let now = Timestamp::now();
    let mut decision = decide(&key, product.as_deref(), resolution.as_ref(), now);

    let mut secret_ref = None;
    if decision.phase == APIKeyPhase::Approved {
        match ensure_secrets(&key, &decision, ctx).await? {
            Ok(reference) => secret_ref = Some(reference),
            Err(message) => {
                decision = decision.with(APIKeyPhase::Failed, "SecretNotFound", message)
            }
        }
    }
    if decision.phase != APIKeyPhase::Approved {
        remove_secrets(&key, ctx).await?;
    }
    crash_point("after-secrets");

    let status = status_for(&key, &decision, secret_ref, &cached.conditions(), now);
    // A reconcile triggered by our own Secret writes can see the key before our status write
    // reached the cache; the same status for the same object version was already written.
    let handled = ctx.written.already(&key, &status);
    if !cached.status_is(&status) && !handled {
        ctx.apply_status(&key, &status).await?;
        ctx.written.remember(&key, &status);
    }
    if cached.phase() != Some(decision.phase) && !handled {
        if decision.phase == APIKeyPhase::Approved
            && let Some(created) = &key.metadata.creation_timestamp
            && let Ok(waited) = Duration::try_from(now.duration_since(created.0))
        {
            ctx.metrics.controller.approved_after(waited);
        }
        let warning = decision.phase == APIKeyPhase::Failed;
        ctx.publish_event(&key, warning, decision.phase.as_str(), &decision.message)
            .await;
        ctx.phase_changed.notify_one();
    }

    let until_expiry = key
        .spec
        .expires_at
        .as_ref()
        .filter(|_| matches!(decision.phase, APIKeyPhase::Approved | APIKeyPhase::Pending))
        .and_then(|t| Duration::try_from(t.0.duration_since(now)).ok())
        .map(|d| d + Duration::from_millis(20));
    Ok(Action::requeue(
        until_expiry.map_or(ctx.config.resync, |d| d.min(ctx.config.resync)),
    ))
}

fn status_for(
    key: &APIKey,
    decision: &Decision,
    secret_ref: Option<SecretKeyRef>,
    previous: &[Condition],
    now: Timestamp,
) -> APIKeyStatus {
    let conditions = APIKeyPhase::ALL
        .iter()
        .map(|phase| {
            if *phase == decision.phase {
                Desired::holds(phase.as_str(), decision.reason, decision.message.clone())
            } else {
                Desired::fails(
                    phase.as_str(),
                    "NotInPhase",
                    format!("the key is {}", decision.phase.as_str()),
                )
            }
        })
        .collect();
    APIKeyStatus {
        observed_generation: key.metadata.generation,
        phase: Some(decision.phase),
        conditions: merge(previous, conditions, key.metadata.generation, now),
        secret_ref,
        api_hostname: decision.hostname.clone(),
        limits: decision.plan.as_ref().map(|p| p.limits.clone()),
        auth_scheme: decision
            .auth
            .as_ref()
            .map(|(auth, credentials, _)| KeyAuthScheme {
                authentication_spec: auth.clone(),
                credentials: credentials.clone(),
            }),
        reviewed_by: key
            .spec
            .approval
            .as_ref()
            .and_then(|a| a.reviewed_by.clone()),
        reviewed_at: key
            .spec
            .approval
            .as_ref()
            .and_then(|a| a.reviewed_at.clone()),
    }
}

/// Makes both Secrets hold the key with the right labels and annotations. The inner `Err` is a
/// problem the consumer must fix (their own Secret is missing or empty).
async fn ensure_secrets(
    key: &APIKey,
    decision: &Decision,
    ctx: &Context,
) -> Result<Result<SecretKeyRef, String>> {
    let namespace = key.namespace().unwrap_or_default();
    let (auth, _, policy_namespace) = decision
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
        key: secrets::DATA_KEY.into(),
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
                    secrets::DATA_KEY
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
async fn remove_secrets(key: &APIKey, ctx: &Context) -> Result<()> {
    for secret in ctx.secrets_of(key) {
        ctx.delete_secret(&secret).await?;
    }
    Ok(())
}

async fn cleanup(key: &APIKey, ctx: &Context) -> Result<Action> {
    remove_secrets(key, ctx).await?;
    // Deterministic names cover Secrets the cache has not seen yet.
    let namespace = key.namespace().unwrap_or_default();
    if key.spec.secret_ref.is_none() {
        let api = Api::<Secret>::namespaced(ctx.client.clone(), &namespace);
        if delete_ignoring_missing(&api, &secrets::consumer_secret_name(key)).await? {
            ctx.metrics
                .controller
                .secret_deleted(Role::Consumer.as_str());
        }
    }
    ctx.written.forget(key);
    ctx.key_products.remove(key);
    Ok(Action::await_change())
}

/// Deletes a Secret; a Secret already gone is fine. Says whether this call deleted it.
pub async fn delete_ignoring_missing(api: &Api<Secret>, name: &str) -> Result<bool> {
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A test hook: when `DEVPORTAL_CRASH_AT` names this point, the process exits here at once, as
/// if killed. Integration tests use it to prove a restart neither duplicates nor loses a key.
fn crash_point(name: &str) {
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

#[cfg(test)]
mod tests;
