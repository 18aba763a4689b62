//! A new key's first two Secrets, written without reading first. Their names are derived from the
//! key's uid, so when the cache shows none of the key's Secrets the likely case is that none
//! exists: both are created at once, with a fresh value, and `create` never writes over an
//! existing object. If either exists already (ours from a moment ago, not yet in the cache, or
//! anyone else's), the other one just created is deleted again and the careful path in
//! [`super::secrets`] takes over: it reads both, checks whose they are and which value counts.

use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;

use crate::Result;
use crate::controller::context::Context;
use crate::keys;
use crate::names::API_KEY_DATA;
use crate::resources::{APIKey, SecretKeyRef};
use crate::secrets::{self, Enforcement, Role};

/// Creates both Secrets of a key that has none in the cache and generates its own value, the
/// consumer copy vouched for by devportal's MAC at rotation `generation`.
/// Returns the consumer Secret's reference when both were created; `None` when either existed
/// (nothing was overwritten; the caller reads and reconciles).
pub(super) async fn both(
    key: &APIKey,
    enforcement: &Enforcement,
    generation: Option<&str>,
    ctx: &Context,
) -> Result<Option<SecretKeyRef>> {
    let mac = ctx.mac_key.get().await?;
    let value = keys::generate(&ctx.config.key_prefix)?;
    let uid = key.metadata.uid.as_deref().unwrap_or_default();
    let consumer = secrets::vouched_consumer_secret(key, &value, mac.of(uid, generation, &value));
    let enforced = secrets::enforcement_secret(key, enforcement, &value);
    // Both at once, all or nothing.
    let (consumer_created, enforcement_created) = tokio::join!(
        created(ctx, &consumer, Role::Consumer),
        created(ctx, &enforced, Role::Enforcement),
    );
    let (consumer_created, enforcement_created) = (consumer_created?, enforcement_created?);
    if consumer_created && enforcement_created {
        return Ok(Some(SecretKeyRef {
            name: consumer.name_any(),
            key: API_KEY_DATA.into(),
        }));
    }
    // One of them existed already (ours from a moment ago, or anyone else's): the one just made
    // with a fresh value goes again, so the careful path starts from what was there — a value
    // the key already has wins, a foreign Secret is a conflict with nothing of ours enforced.
    let made = match (consumer_created, enforcement_created) {
        (true, false) => Some(&consumer),
        (false, true) => Some(&enforced),
        _ => None,
    };
    if let Some(made) = made {
        ctx.delete_own_secret(key, &namespace_of(made), &made.name_any())
            .await?;
    }
    Ok(None)
}

fn namespace_of(secret: &Secret) -> String {
    secret.metadata.namespace.clone().unwrap_or_default()
}

/// Creates `secret`: `true` when created, `false` when one of its name exists already.
async fn created(ctx: &Context, secret: &Secret, role: Role) -> Result<bool> {
    match ctx.create_secret(secret, role).await {
        Ok(()) => Ok(true),
        Err(crate::Error::Kube(kube::Error::Api(status))) if status.code == 409 => Ok(false),
        Err(error) => Err(error),
    }
}
