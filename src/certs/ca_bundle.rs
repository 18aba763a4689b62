//! Injecting the CA into the webhook configurations' `caBundle`.

use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use kube::api::{Patch, PatchParams};
use kube::{Api, Client};

use crate::Result;

/// Sets the CA `bundle` on both webhook configurations named `name`.
pub(super) async fn patch_ca_bundles(client: &Client, name: &str, bundle: &[u8]) -> Result<()> {
    let mutating = Api::<MutatingWebhookConfiguration>::all(client.clone());
    let current = mutating.get_opt(name).await?.map(|c| {
        let webhooks = c.webhooks.unwrap_or_default();
        webhooks
            .into_iter()
            .map(|w| (w.name, w.client_config.ca_bundle))
            .collect::<Vec<_>>()
    });
    patch_bundle(&mutating, name, "mutating", current, bundle).await?;
    let validating = Api::<ValidatingWebhookConfiguration>::all(client.clone());
    let current = validating.get_opt(name).await?.map(|c| {
        let webhooks = c.webhooks.unwrap_or_default();
        webhooks
            .into_iter()
            .map(|w| (w.name, w.client_config.ca_bundle))
            .collect::<Vec<_>>()
    });
    patch_bundle(&validating, name, "validating", current, bundle).await
}

/// Sets `caBundle` on every webhook of one configuration whose bundle differs, by a JSON patch
/// that first tests each webhook's name (so a concurrent reorder fails instead of misapplying).
async fn patch_bundle<K>(
    api: &Api<K>,
    name: &str,
    kind: &str,
    webhooks: Option<Vec<(String, Option<ByteString>)>>,
    bundle: &[u8],
) -> Result<()>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
{
    let Some(webhooks) = webhooks else {
        tracing::warn!(
            configuration = name,
            kind,
            "webhook configuration not found; caBundle not set"
        );
        return Ok(());
    };
    let encoded = serde_json::to_value(ByteString(bundle.to_vec()))?;
    let mut operations = Vec::new();
    for (i, (webhook, current)) in webhooks.iter().enumerate() {
        if current.as_ref().map(|b| b.0.as_slice()) != Some(bundle) {
            operations.push(serde_json::json!({"op": "test", "path": format!("/webhooks/{i}/name"), "value": webhook}));
            operations.push(serde_json::json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": encoded}));
        }
    }
    if operations.is_empty() {
        return Ok(());
    }
    let patch: json_patch::Patch = serde_json::from_value(serde_json::Value::Array(operations))?;
    api.patch(name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await?;
    tracing::info!(configuration = name, kind, "patched the caBundle");
    Ok(())
}
