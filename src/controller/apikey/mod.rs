//! APIKey reconcile: decide the phase (within the key limit, see [`key_line`]), keep the two
//! Secrets in step while Approved, withdraw the enforcement Secret the moment the key leaves
//! Approved (keeping the consumer copy, and so the key's value), and report it all in status.

mod automatic;
mod first_write;
pub mod key_line;
mod own_value;
pub(super) mod phase;
mod refused;
mod rotation;
mod secrets;
#[cfg(test)]
mod tests;
mod value;

use key_line::Line;
use secrets::Outcome;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::{Api, Resource, ResourceExt};

pub use phase::{Evaluation, evaluate};

use super::context::Context;
use super::overlap::{self, Gate};
use crate::Result;
use crate::conditions::{Desired, merge};
use crate::discovery::resolve;
use crate::names::FINALIZER;
use crate::names::key_condition::READY;
use crate::names::key_reason::{
    ENFORCED, KEY_LIMIT_EXCEEDED, NAMESPACE_NOT_COVERED, NOT_ENFORCED, SELECTOR_OVERLAP,
};
use crate::resources::cached_key::CachedKey;
use crate::resources::{
    APIKey, APIKeyPhase, APIKeyStatus, APIProduct, KeyAuthScheme, SecretKeyRef,
};
use crate::secrets::Enforcement;

/// Reconciles one APIKey, behind the finalizer that guards its cross-namespace Secret. A key in
/// a namespace the admission webhook does not cover is left alone (see [`uncovered`]) until it is
/// deleted.
pub async fn reconcile(key: Arc<CachedKey>, ctx: Arc<Context>) -> Result<Action> {
    let namespace = key.namespace().unwrap_or_default();
    if !ctx.config.webhook_covers(&namespace) && key.meta().deletion_timestamp.is_none() {
        return uncovered(&key.to_key(), &ctx).await;
    }
    let api = Api::<CachedKey>::namespaced(ctx.client.clone(), &namespace);
    let result = finalizer(&api, FINALIZER, key, |event| async {
        match event {
            Finalizer::Apply(key) => apply(&key, &ctx).await,
            Finalizer::Cleanup(key) => cleanup(&key.to_key(), &ctx).await,
        }
    })
    .await;
    super::finalizer_result::outcome(result)
}

async fn apply(cached: &CachedKey, ctx: &Context) -> Result<Action> {
    let key = cached.to_key();
    let product_ref = ObjectRef::<APIProduct>::new(&key.spec.api_product_ref.name)
        .within(key.product_namespace().unwrap_or_default());
    ctx.key_products.set(&key, &product_ref);
    let product = ctx.products.get(&product_ref);
    // An owner's APIKeyApproval goes into spec.approval first; the write triggers the next round.
    if super::inbox::review(&key, product.as_deref(), ctx).await? {
        return Ok(Action::await_change());
    }
    let resolution = product.as_ref().map(|p| resolve(p, &ctx.caches));
    let now = Timestamp::now();
    // The flags, tightened by the APIKeyPolicies that concern the key.
    let effective = ctx.policies.effective(
        &key,
        product.as_deref(),
        &super::policy::defaults(&ctx.config),
    );
    let max_lifetime = effective.max_lifetime.as_ref().map(|l| l.value);
    let mut evaluation = phase::past_max_lifetime(
        &key,
        evaluate(&key, product.as_deref(), resolution.as_ref(), now),
        max_lifetime,
        now,
    );
    evaluation = super::policy::hold_for_owner(evaluation, &effective);
    let mut recheck = None;
    if matches!(
        evaluation.phase,
        APIKeyPhase::Approved | APIKeyPhase::Pending
    ) {
        let limit = &super::policy::key_limit(&ctx.config, &effective);
        match key_line::line(cached, &ctx.keys, &ctx.key_holders, limit, now) {
            Line::Clear => {}
            // Approved already: it was settled then, and stays.
            Line::Wait(_) if cached.phase() == Some(APIKeyPhase::Approved) => {}
            Line::Wait(wait) if evaluation.phase == APIKeyPhase::Approved => {
                return Ok(Action::requeue(wait));
            }
            Line::Wait(_) => {}
            Line::Blocked(message) => {
                let message = match &effective.max_keys.policy {
                    Some(policy) => format!("{message} (the limit of APIKeyPolicy {policy:?})"),
                    None => message,
                };
                evaluation = evaluation.with(APIKeyPhase::Pending, KEY_LIMIT_EXCEEDED, message);
                recheck = Some(key_line::BLOCKED_RECHECK);
            }
        }
    }

    // The labels Authorino needs: when no Secret can have them, no key of this product works.
    let labels = evaluation.auth.as_ref().map(|(auth, _, _)| {
        let product = crate::secrets::ProductId {
            namespace: product_ref.namespace.as_deref().unwrap_or_default(),
            name: &product_ref.name,
        };
        crate::secrets::labels_for_rule(
            key.metadata.uid.as_deref().unwrap_or_default(),
            product,
            &ctx.config.authorino_selector,
            &auth.selector,
        )
    });
    if let Some(Err(why)) = &labels
        && evaluation.phase != APIKeyPhase::Failed
    {
        evaluation = evaluation.with(APIKeyPhase::Failed, "UnsatisfiableSelector", why.clone());
    }
    // Labels another product's AuthPolicy would also accept are never written: the product
    // reconcile checks them first (see controller/overlap.rs).
    if let (Some(Ok(labels)), Some(product)) = (&labels, &product)
        && evaluation.phase == APIKeyPhase::Approved
    {
        match overlap::key_gate(product, labels) {
            Gate::Open => {}
            Gate::Refused(message) => {
                evaluation = evaluation.with(APIKeyPhase::Failed, SELECTOR_OVERLAP, message);
            }
            Gate::NotYet => return Ok(Action::requeue(overlap::NOT_YET_RECHECK)),
        }
    }
    let target = match labels {
        Some(Ok(labels)) if evaluation.phase == APIKeyPhase::Approved => {
            Some(Enforcement::for_key(&key, ctx.enforcement.get(), labels))
        }
        _ => None,
    };
    let rotation = rotation::before_secrets(cached, &key, target.as_ref(), ctx).await?;
    let never_enforced = cached
        .phase()
        .is_none_or(|phase| phase == APIKeyPhase::Pending);
    let generation = rotation.generation(cached).map(str::to_string);
    let reconciled = secrets::reconcile(
        &key,
        target.as_ref(),
        never_enforced,
        generation.as_deref(),
        ctx,
    )
    .await;
    let secret_ref = match reconciled {
        Err(error) => {
            if let Some(message) = refused::message(&error) {
                // The Secret reference the key had stays: its consumer copy may well exist.
                let secret_ref = key.status.as_ref().and_then(|s| s.secret_ref.clone());
                let refusal = refused::evaluation(evaluation, message);
                let status = status_for(&key, &refusal, secret_ref, &cached.conditions(), now);
                refused::report(cached, &key, &status, &refusal.message, ctx).await;
            }
            return Err(error);
        }
        Ok(Outcome::Kept(reference)) => reference,
        Ok(Outcome::Problem(reason, message)) => {
            evaluation = evaluation.with(APIKeyPhase::Failed, reason, message);
            secrets::withdraw(&key, ctx).await?;
            None
        }
    };
    if evaluation.phase != APIKeyPhase::Approved
        && let Some(kept) = &secret_ref
    {
        evaluation.message.push_str(&format!(
            "; not enforced meanwhile: the gateway refuses the key, whose value is kept in Secret {}",
            kept.name
        ));
    }
    if target.is_some() && secret_ref.is_some() {
        secrets::crash_point("after-secrets", &key);
    }
    // On the version read (the status write below changes it). A record that fails (the webhook
    // unreachable, say) does not hold up the status; it is retried with backoff after it.
    let recorded = match &product {
        Some(product)
            if evaluation.phase == APIKeyPhase::Approved && evaluation.record_automatic =>
        {
            automatic::record(&key, product, ctx).await
        }
        _ => Ok(()),
    };

    let mut status = status_for(&key, &evaluation, secret_ref, &cached.conditions(), now);
    status.rotation = rotation.record(cached, status.secret_ref.is_some(), now);
    super::inbox::sync(&key, product.as_deref(), &evaluation, ctx).await?;
    // A reconcile triggered by our own Secret writes can see the key before our status write
    // reached the cache; the same status for the same object version was already written.
    let handled = ctx.written.already(&key, &status);
    if !cached.status_is(&status) && !handled {
        ctx.replace_status(&key, &status).await?;
        ctx.written.remember(&key, &status);
    }
    if cached.phase() != Some(evaluation.phase) && !handled {
        if evaluation.phase == APIKeyPhase::Approved
            && let Some(created) = &key.metadata.creation_timestamp
            && let Ok(waited) = Duration::try_from(now.duration_since(created.0))
        {
            ctx.metrics.controller.approved_after(waited);
        }
        let warning = evaluation.phase == APIKeyPhase::Failed;
        ctx.publish_event(
            &key,
            warning,
            evaluation.phase.as_str(),
            &evaluation.message,
        )
        .await;
        ctx.phase_changed.notify_one();
    }

    recorded?;

    let until_expiry = phase::expiry(&key, max_lifetime)
        .filter(|_| {
            matches!(
                evaluation.phase,
                APIKeyPhase::Approved | APIKeyPhase::Pending
            )
        })
        .and_then(|at| Duration::try_from(at.duration_since(now)).ok())
        .map(|d| d + Duration::from_millis(20));
    // A deadline of its own within the resync period brings the key back for it; otherwise the
    // next change or the resync sweep does (see controller/resync.rs: no timer per key).
    Ok(match [until_expiry, recheck].into_iter().flatten().min() {
        Some(next) if next < ctx.config.resync => Action::requeue(next),
        _ => Action::await_change(),
    })
}

fn status_for(
    key: &APIKey,
    evaluation: &Evaluation,
    secret_ref: Option<SecretKeyRef>,
    previous: &[Condition],
    now: Timestamp,
) -> APIKeyStatus {
    let conditions = APIKeyPhase::ALL
        .iter()
        .map(|phase| {
            if *phase == evaluation.phase {
                Desired::holds(
                    phase.as_str(),
                    evaluation.reason,
                    evaluation.message.clone(),
                )
            } else {
                Desired::fails(
                    phase.as_str(),
                    "NotInPhase",
                    format!("the key is {}", evaluation.phase.as_str()),
                )
            }
        })
        .chain([ready(evaluation, secret_ref.as_ref())])
        .collect();
    APIKeyStatus {
        observed_generation: key.metadata.generation,
        phase: Some(evaluation.phase),
        conditions: merge(previous, conditions, key.metadata.generation, now),
        secret_ref,
        api_hostname: evaluation.hostname.clone(),
        limits: evaluation.plan.as_ref().map(|p| p.limits.clone()),
        auth_scheme: evaluation
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
        ..APIKeyStatus::default()
    }
}

/// The `Ready` condition beside the phase conditions (what `kubectl wait --for=condition=Ready`
/// reads): True when the key is Approved and its enforcement Secret is written, else False with
/// the phase's reason.
fn ready(evaluation: &Evaluation, secret_ref: Option<&SecretKeyRef>) -> Desired {
    let phase = evaluation.phase.as_str();
    match (evaluation.phase, secret_ref) {
        (APIKeyPhase::Approved, Some(kept)) => Desired::holds(
            READY,
            ENFORCED,
            format!(
                "{}; enforced: the gateway accepts the key, whose value is in Secret {}",
                evaluation.message, kept.name
            ),
        ),
        (APIKeyPhase::Approved, None) => Desired::fails(
            READY,
            NOT_ENFORCED,
            format!(
                "{}; no enforcement Secret holds its value yet",
                evaluation.message
            ),
        ),
        _ => Desired::fails(
            READY,
            if evaluation.reason.is_empty() {
                phase
            } else {
                evaluation.reason
            },
            format!("the key is {phase}: {}", evaluation.message),
        ),
    }
}

/// An APIKey in a namespace the admission webhook does not cover: nothing checked its requester,
/// its approval or its product, so it gets no Secrets (any it has are removed), no status and no
/// finalizer; a warning Event says why, once per key and process.
async fn uncovered(key: &APIKey, ctx: &Context) -> Result<Action> {
    if !ctx.secrets_of(key).is_empty() {
        secrets::remove_all(key, ctx).await?;
    }
    let uid = key.metadata.uid.clone().unwrap_or_default();
    let first = ctx
        .uncovered_warned
        .lock()
        .expect("warned keys")
        .insert(uid);
    if first {
        let namespace = key.metadata.namespace.as_deref().unwrap_or_default();
        ctx.publish_event(
            key,
            true,
            NAMESPACE_NOT_COVERED,
            &format!(
                "ignored: namespace {namespace:?} is not covered by devportal's admission webhook \
                 (--webhook-excluded-namespaces), so nothing validated this key's requester or \
                 approval; no Secret is written for it. Request keys in a covered namespace"
            ),
        )
        .await;
    }
    Ok(Action::await_change())
}

async fn cleanup(key: &APIKey, ctx: &Context) -> Result<Action> {
    secrets::remove_all(key, ctx).await?;
    super::inbox::remove(key, ctx).await?;
    ctx.written.forget(key);
    ctx.key_products.remove(key);
    Ok(Action::await_change())
}
