//! The MAC key of generated key values ([`ValueMac`]): 32 random bytes in the Secret
//! [`MAC_KEY_SECRET`] in devportal's own namespace (`POD_NAMESPACE`, the Lease's), which tenants
//! cannot read or write under the shipped RBAC.
//!
//! The first active controller that needs it (to issue or take back a value) creates it —
//! immutable, with a create that never writes over an existing Secret — and every replica reads
//! it when it first needs it, so replicas racing to create it end up with the one that won. The
//! key is read once per process. If the Secret is lost (deleted, or devportal moved to another
//! namespace) a new key is made: keys enforced at that moment keep their values (the enforcement
//! Secret is devportal's own record), keys not Approved at that moment get a new value when
//! Approved again (docs/operator-guide.md).

use std::collections::BTreeMap;
use std::sync::Arc;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};
use tokio::sync::OnceCell;

use crate::keys::ValueMac;
use crate::names::{CONTROLLER_MANAGER, MAC_KEY_DATA, MAC_KEY_SECRET};
use crate::{Error, Result};

/// The MAC key, loaded (or created) on first use.
pub struct MacKey {
    api: Api<Secret>,
    namespace: String,
    loaded: OnceCell<Arc<ValueMac>>,
}

impl MacKey {
    /// The key kept in `namespace`, not read yet.
    pub fn new(client: Client, namespace: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            namespace: namespace.to_string(),
            loaded: OnceCell::new(),
        }
    }

    /// The key: read once, created first if it does not exist.
    pub async fn get(&self) -> Result<Arc<ValueMac>> {
        self.loaded
            .get_or_try_init(|| async { self.load().await.map(Arc::new) })
            .await
            .cloned()
    }

    async fn load(&self) -> Result<ValueMac> {
        self.read_or_create().await.map_err(|error| match error {
            Error::Kube(kube::Error::Api(status)) if status.code == 403 => Error::Config(format!(
                "devportal may not read or create Secret {}/{MAC_KEY_SECRET}, the MAC key of \
                 generated key values ({}): grant get and create on secrets in its own namespace \
                 (the `devportal` Role in manifests/rbac/controller.yaml)",
                self.namespace, status.message
            )),
            other => other,
        })
    }

    async fn read_or_create(&self) -> Result<ValueMac> {
        // Twice at most: a replica that loses the race to create it reads the winner's.
        for _ in 0..2 {
            if let Some(secret) = self.api.get_opt(MAC_KEY_SECRET).await? {
                return parse(&secret).ok_or_else(|| {
                    Error::Config(format!(
                        "Secret {}/{MAC_KEY_SECRET} holds no {MAC_KEY_DATA:?} entry of {} bytes; \
                         delete it and restart devportal to have a new MAC key made (keys not \
                         Approved now get a new value when Approved again)",
                        self.namespace,
                        crate::keys::MAC_KEY_LEN
                    ))
                });
            }
            match self.api.create(&params(), &fresh()?).await {
                Ok(created) => {
                    tracing::info!(secret = %format!("{}/{MAC_KEY_SECRET}", self.namespace), "created the MAC key of generated key values");
                    return parse(&created).ok_or_else(|| {
                        Error::Config("the MAC key Secret just created reads back empty".into())
                    });
                }
                Err(kube::Error::Api(status)) if status.code == 409 => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(Error::Config(format!(
            "Secret {}/{MAC_KEY_SECRET} was created by another replica but cannot be read back",
            self.namespace
        )))
    }
}

/// The key a MAC key Secret holds, if it holds a well-formed one.
fn parse(secret: &Secret) -> Option<ValueMac> {
    ValueMac::from_bytes(&secret.data.as_ref()?.get(MAC_KEY_DATA)?.0)
}

/// A new MAC key Secret: immutable, so that it is only ever replaced by deleting it.
fn fresh() -> Result<Secret> {
    Ok(Secret {
        metadata: ObjectMeta {
            name: Some(MAC_KEY_SECRET.into()),
            labels: Some(BTreeMap::from([(
                "app.kubernetes.io/part-of".to_string(),
                "devportal".to_string(),
            )])),
            ..ObjectMeta::default()
        },
        immutable: Some(true),
        type_: Some("Opaque".into()),
        data: Some(BTreeMap::from([(
            MAC_KEY_DATA.to_string(),
            ByteString(ValueMac::new_key()?.to_vec()),
        )])),
        ..Secret::default()
    })
}

fn params() -> PostParams {
    PostParams {
        dry_run: false,
        field_manager: Some(CONTROLLER_MANAGER.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_mac_key_secret_is_immutable_and_readable_and_a_damaged_one_is_not_taken() {
        let secret = fresh().unwrap();
        assert_eq!(secret.immutable, Some(true));
        assert!(parse(&secret).is_some());
        assert_ne!(
            secret.data,
            fresh().unwrap().data,
            "every new MAC key is random"
        );
        let mut short = secret.clone();
        short
            .data
            .as_mut()
            .unwrap()
            .insert(MAC_KEY_DATA.into(), ByteString(vec![1; 16]));
        assert!(parse(&short).is_none());
        let mut empty = secret;
        empty.data = None;
        assert!(parse(&empty).is_none());
    }
}
