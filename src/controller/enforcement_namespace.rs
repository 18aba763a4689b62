//! Where enforcement Secrets go: `--enforcement-namespace` when given, else the namespace of the
//! `Kuadrant` CR (`kuadrant.io/v1beta1`), else `kuadrant-system`.
//!
//! kuadrant-operator puts every AuthConfig in the namespace of the Kuadrant CR it serves — the
//! oldest one not being deleted, when there are several — and Authorino reads API-key Secrets
//! from the AuthConfig's namespace. Without the flag, devportal looks the CR up once before it
//! reconciles anything and then again every `--kuadrant-poll-interval` (a list of a handful of
//! objects; no watch, because the Kuadrant CRD may not be installed yet and a watch of a missing
//! kind would hold the controller unready). When the namespace changes, every key is reconciled
//! and its enforcement Secret moves: the new one is written before the old one is deleted.

use std::time::Duration;

use futures::Stream;
use kube::api::{ApiResource, DynamicObject, ListParams, ObjectMeta};
use kube::{Api, Client};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::names::{DEFAULT_KUADRANT_NAMESPACE, KUADRANT_GROUP, KUADRANT_VERSION};
use crate::{Error, Result};

/// The enforcement namespace in force, fixed or followed.
#[derive(Clone, Debug)]
pub struct EnforcementNamespace(watch::Receiver<String>);

impl EnforcementNamespace {
    /// The namespace now.
    pub fn get(&self) -> String {
        self.0.borrow().clone()
    }

    /// Emits once each time the namespace changes.
    pub fn changes(&self) -> impl Stream<Item = ()> + Send + use<> {
        futures::stream::unfold(self.0.clone(), |mut current| async move {
            current.changed().await.ok()?;
            current.borrow_and_update();
            Some(((), current))
        })
    }

    /// `configured` when given; else the Kuadrant CR's namespace, looked up now (retrying while
    /// the API server is unavailable) and then every `poll` until `shutdown`.
    pub async fn resolve(
        configured: Option<String>,
        client: Client,
        poll: Duration,
        shutdown: CancellationToken,
    ) -> Result<Self> {
        if let Some(namespace) = configured {
            tracing::info!(%namespace, "enforcement namespace (--enforcement-namespace)");
            return Ok(Self(watch::channel(namespace).1));
        }
        let first = loop {
            match lookup(&client).await {
                Ok(found) => break found,
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    return Err(Error::Config(format!(
                        "cannot list kuadrants.kuadrant.io to find the Kuadrant namespace ({}): grant `list` on them or set --enforcement-namespace",
                        status.message
                    )));
                }
                Err(error) => {
                    tracing::warn!(%error, "cannot list Kuadrant CRs yet; retrying");
                    tokio::select! {
                        () = shutdown.cancelled() => return Err(Error::ShuttingDown),
                        () = tokio::time::sleep(Duration::from_secs(2)) => {}
                    }
                }
            }
        };
        let namespace = chosen(first);
        tracing::info!(%namespace, "enforcement namespace (from the Kuadrant CR, or the default)");
        let (tx, rx) = watch::channel(namespace);
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(poll) => {}
                }
                match lookup(&client).await {
                    Ok(found) => {
                        let namespace = chosen(found);
                        if *tx.borrow() != namespace {
                            tracing::info!(%namespace, "the Kuadrant CR moved: moving enforcement Secrets");
                            tx.send_replace(namespace);
                        }
                    }
                    Err(error) => tracing::warn!(%error, "looking up the Kuadrant CR failed"),
                }
            }
        });
        Ok(Self(rx))
    }
}

fn chosen(found: Option<String>) -> String {
    found.unwrap_or_else(|| DEFAULT_KUADRANT_NAMESPACE.to_string())
}

/// The namespace of the Kuadrant CR in force; `None` when there is none or the kind is not
/// installed. A missing permission is an error: the operator must grant it or set the flag.
async fn lookup(client: &Client) -> std::result::Result<Option<String>, kube::Error> {
    let resource = ApiResource {
        group: KUADRANT_GROUP.into(),
        version: KUADRANT_VERSION.into(),
        api_version: format!("{KUADRANT_GROUP}/{KUADRANT_VERSION}"),
        kind: "Kuadrant".into(),
        plural: "kuadrants".into(),
    };
    let api = Api::<DynamicObject>::all_with(client.clone(), &resource);
    match api.list_metadata(&ListParams::default()).await {
        Ok(list) => Ok(in_force(list.items.iter().map(|k| &k.metadata))),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(None),
        Err(error) => Err(error),
    }
}

/// The namespace of the CR kuadrant-operator serves: the oldest not being deleted (then by
/// namespace and name, so the choice is stable).
fn in_force<'a>(crs: impl Iterator<Item = &'a ObjectMeta>) -> Option<String> {
    crs.filter(|m| m.deletion_timestamp.is_none())
        .min_by(|a, b| {
            (&a.creation_timestamp, &a.namespace, &a.name).cmp(&(
                &b.creation_timestamp,
                &b.namespace,
                &b.name,
            ))
        })
        .and_then(|m| m.namespace.clone())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    fn cr(namespace: &str, created: &str, deleting: bool) -> ObjectMeta {
        ObjectMeta {
            name: Some("kuadrant".into()),
            namespace: Some(namespace.into()),
            creation_timestamp: Some(Time(created.parse().unwrap())),
            deletion_timestamp: deleting.then(|| Time("2026-06-01T00:00:00Z".parse().unwrap())),
            ..ObjectMeta::default()
        }
    }

    #[test]
    fn the_oldest_kuadrant_not_being_deleted_wins() {
        let crs = [
            cr("newer", "2026-03-01T00:00:00Z", false),
            cr("oldest-deleting", "2026-01-01T00:00:00Z", true),
            cr("older", "2026-02-01T00:00:00Z", false),
        ];
        assert_eq!(in_force(crs.iter()).as_deref(), Some("older"));
        assert_eq!(in_force(crs[1..2].iter()), None);
        assert_eq!(chosen(None), "kuadrant-system");
    }
}
