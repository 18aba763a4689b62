//! The integrity of an APIKey's request and review, attacked through the real API server (with
//! devportal's webhook and controller running) as the persona who would try: a reviewer
//! rewriting a request and an approval outliving what it approved ([`approvals`]), a status
//! written by someone else that the controller cannot apply over and a key in a namespace the
//! webhook does not cover, and an AuthPolicy that takes keys from anywhere ([`controller`]). See
//! docs/security.md.
//!
//! This file holds what both share: clients, RBAC helpers and waits.

mod approvals;
mod controller;

use std::time::Duration;

use crate::support;
use devportal::names::key_reason::{APPROVAL_OUTDATED, NAMESPACE_NOT_COVERED};
use devportal::names::product_reason::KEYS_FROM_ALL_NAMESPACES;
use devportal::names::{APIKEY_UID_LABEL, MANAGED_SELECTOR, product_condition};
use devportal::resources::kuadrant::AuthPolicy;
use devportal::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode};
use devportal::secrets::Role;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, PolicyRule};
use kube::api::{DeleteParams, ListParams, ObjectMeta, Patch, PatchParams, PostParams};
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use support::access::binding_in_effect;
use support::secrets::secrets_of;
use support::{Persona, TestNamespace, control_plane_with_devportal, eventually, fixtures};

const WAIT: Duration = Duration::from_secs(30);
/// A rule's group and resource.
const APIKEY_STATUS: (&str, &str) = ("devportal.kuadrant.io", "apikeys/status");
const APIPRODUCTS: (&str, &str) = ("devportal.kuadrant.io", "apiproducts");

async fn client(persona: Persona) -> Client {
    control_plane_with_devportal().client(persona).await
}

fn rule((group, resource): (&str, &str), names: &[&str], verbs: &[&str]) -> PolicyRule {
    PolicyRule {
        api_groups: Some(vec![group.into()]),
        resources: Some(vec![resource.into()]),
        resource_names: (!names.is_empty()).then(|| names.iter().map(|n| n.to_string()).collect()),
        verbs: verbs.iter().map(|v| v.to_string()).collect(),
        ..PolicyRule::default()
    }
}

/// Creates the ClusterRole `name` (once per control plane) with `rules`, as the admin.
async fn cluster_role(admin: &Client, name: &str, rules: Vec<PolicyRule>) {
    let role = ClusterRole {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..ObjectMeta::default()
        },
        rules: Some(rules),
        ..ClusterRole::default()
    };
    match Api::<ClusterRole>::all(admin.clone())
        .create(&PostParams::default(), &role)
        .await
    {
        Ok(_) => {}
        Err(kube::Error::Api(status)) if status.code == 409 => {}
        Err(error) => panic!("cluster role {name}: {error}"),
    }
}

/// Waits until the product `ns/name` has discovered its plans (the webhook admits keys only for
/// discovered tiers) and returns it.
async fn discovered(admin: &Client, ns: &str, name: &str) -> APIProduct {
    let products = Api::<APIProduct>::namespaced(admin.clone(), ns);
    eventually(
        &format!("{name}'s plans to be discovered"),
        WAIT,
        || async {
            let product = products.get(name).await.ok()?;
            let plans = &product.status.as_ref()?.discovered_plans;
            (!plans.is_empty()).then_some(product)
        },
    )
    .await
}

/// Waits until key `name` is in `phase` for `reason`.
async fn wait_reason(keys: &Api<APIKey>, name: &str, phase: APIKeyPhase, reason: &str) -> APIKey {
    eventually(
        &format!("{name} to be {phase:?} ({reason})"),
        WAIT,
        || async {
            let key = keys.get(name).await.ok()?;
            let status = key.status.as_ref()?;
            let holds = status
                .conditions
                .iter()
                .any(|c| c.type_ == phase.as_str() && c.status == "True" && c.reason == reason);
            (status.phase == Some(phase) && holds).then_some(key)
        },
    )
    .await
}

/// The roles of devportal's Secrets of key `ns/name`, sorted.
async fn secret_roles(admin: &Client, ns: &str, name: &str) -> Vec<String> {
    let mut roles: Vec<_> = secrets_of(admin, ns, name)
        .await
        .into_iter()
        .map(|(role, _)| role)
        .collect();
    roles.sort();
    roles
}

/// Waits until key `ns/name` has exactly the Secrets of `roles`.
async fn wait_secret_roles(admin: &Client, ns: &str, name: &str, roles: &[Role]) {
    let mut want: Vec<String> = roles.iter().map(|r| r.as_str().to_string()).collect();
    want.sort();
    eventually(
        &format!("{ns}/{name} to have Secrets {want:?}"),
        WAIT,
        || async { (secret_roles(admin, ns, name).await == want).then_some(()) },
    )
    .await;
}

fn forbidden_because<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>, needle: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {
            assert!(
                status.message.contains(needle),
                "{what}: {}",
                status.message
            )
        }
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

fn merge(value: serde_json::Value) -> Patch<serde_json::Value> {
    Patch::Merge(value)
}

/// Asserts that `result` is a 409 Conflict whose message contains `needle`.
fn conflict_because<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>, needle: &str) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 409 => {
            assert!(
                status.message.contains(needle),
                "{what}: {}",
                status.message
            )
        }
        other => panic!("{what}: expected 409 Conflict, got {other:?}"),
    }
}
