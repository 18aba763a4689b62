//! The cluster's Service IP ranges, followed from `networking.k8s.io/v1` `ServiceCIDR` objects
//! (served from Kubernetes 1.33), so discovery fetches never reach a Service by its ClusterIP.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ipnet::IpNet;
use k8s_openapi::api::networking::v1::ServiceCIDR;
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The Service ranges as last seen; `None` until the first complete list (or until it is clear
/// that the cluster serves no ServiceCIDR API).
#[derive(Clone, Debug)]
pub struct ServiceRanges(watch::Receiver<Option<Arc<[IpNet]>>>);

impl ServiceRanges {
    /// Fixed ranges, known from the start (tests, and code that runs without a cluster).
    pub fn fixed(ranges: Vec<IpNet>) -> Self {
        let (_, receiver) = watch::channel(Some(ranges.into()));
        Self(receiver)
    }

    /// Follows the cluster's ServiceCIDRs until `stop` is cancelled. A cluster that does not
    /// serve the API (before 1.33) or does not let devportal list it counts as having none: the
    /// private ranges, where Service ranges usually lie, are refused anyway, and `--fetch-deny`
    /// covers the rest.
    pub fn follow(client: Client, stop: CancellationToken) -> Self {
        let (sender, receiver) = watch::channel(None);
        tokio::spawn(async move {
            tokio::select! {
                () = follow(Api::all(client), &sender) => {}
                () = stop.cancelled() => {}
            }
        });
        Self(receiver)
    }

    /// Waits up to `timeout` for the ranges to be known; false if they still are not.
    pub async fn known(&self, timeout: Duration) -> bool {
        let mut receiver = self.0.clone();
        matches!(
            tokio::time::timeout(timeout, receiver.wait_for(Option::is_some)).await,
            Ok(Ok(_))
        )
    }

    /// The Service range holding `ip`, if any.
    pub fn containing(&self, ip: IpAddr) -> Option<IpNet> {
        self.0
            .borrow()
            .as_ref()?
            .iter()
            .find(|range| range.contains(&ip))
            .copied()
    }
}

async fn follow(api: Api<ServiceCIDR>, sender: &watch::Sender<Option<Arc<[IpNet]>>>) {
    let mut current: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
    let mut listing: BTreeMap<String, Vec<IpNet>> = BTreeMap::new();
    let publish = |ranges: &BTreeMap<String, Vec<IpNet>>| {
        let all: Vec<IpNet> = ranges.values().flatten().copied().collect();
        tracing::info!(ranges = ?all, "Service ranges refused to discovery fetches");
        sender.send_replace(Some(all.into()));
    };
    let events = watcher(api, watcher::Config::default()).default_backoff();
    futures::pin_mut!(events);
    while let Some(event) = events.next().await {
        match event {
            Ok(watcher::Event::Init) => listing.clear(),
            Ok(watcher::Event::InitApply(cidr)) => {
                listing.insert(cidr.name_any(), ranges_of(&cidr));
            }
            Ok(watcher::Event::InitDone) => {
                current = std::mem::take(&mut listing);
                publish(&current);
            }
            Ok(watcher::Event::Apply(cidr)) => {
                current.insert(cidr.name_any(), ranges_of(&cidr));
                publish(&current);
            }
            Ok(watcher::Event::Delete(cidr)) => {
                current.remove(&cidr.name_any());
                publish(&current);
            }
            Err(watcher::Error::InitialListFailed(kube::Error::Api(status)))
                if status.is_not_found() || status.is_forbidden() =>
            {
                tracing::warn!(
                    code = status.code,
                    "cannot list networking.k8s.io/v1 ServiceCIDRs (Kubernetes before 1.33, or \
                     RBAC): discovery fetches refuse private ranges and --fetch-deny, but not a \
                     Service range outside them"
                );
                sender.send_replace(Some(Arc::from([])));
                return;
            }
            Err(error) => tracing::warn!(%error, "watching ServiceCIDRs failed; retrying"),
        }
    }
}

/// The ranges of one ServiceCIDR; an unparsable one (which the API server would not accept) is
/// logged and skipped.
fn ranges_of(cidr: &ServiceCIDR) -> Vec<IpNet> {
    let listed = cidr.spec.as_ref().and_then(|s| s.cidrs.as_ref());
    listed
        .into_iter()
        .flatten()
        .filter_map(|text| match text.parse::<IpNet>() {
            Ok(range) => Some(range.trunc()),
            Err(_) => {
                tracing::warn!(name = %cidr.name_any(), range = %text, "unparsable ServiceCIDR range");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::networking::v1::ServiceCIDRSpec;

    #[test]
    fn ranges_are_read_from_the_spec() {
        let cidr = ServiceCIDR {
            metadata: kube::api::ObjectMeta {
                name: Some("kubernetes".into()),
                ..Default::default()
            },
            spec: Some(ServiceCIDRSpec {
                cidrs: Some(vec!["10.96.0.0/12".into(), "fd00:10:96::/112".into()]),
            }),
            status: None,
        };
        assert_eq!(
            ranges_of(&cidr),
            vec![
                "10.96.0.0/12".parse::<IpNet>().unwrap(),
                "fd00:10:96::/112".parse().unwrap()
            ]
        );
        let ranges = ServiceRanges::fixed(ranges_of(&cidr));
        assert_eq!(
            ranges.containing("10.100.3.4".parse().unwrap()),
            Some("10.96.0.0/12".parse().unwrap())
        );
        assert_eq!(ranges.containing("10.112.0.1".parse().unwrap()), None);
    }
}
