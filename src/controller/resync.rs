//! The periodic resync of APIKeys, as one steady sweep instead of a timer per key.
//!
//! Every key is reconciled once per `--resync` period even when nothing changed: the safety net
//! for whatever a watch missed. kube-runtime's usual way — each reconcile ending with
//! `Action::requeue(resync)` — keeps a scheduler entry per key for the whole period (a delay-queue
//! slot and a hash-table entry with the key's reference: about 500 bytes a key, 5 MiB at 10,000
//! keys). [`sweep`] walks the key store instead, one key at a time, spread evenly over the
//! period, so the scheduler holds only the keys with a deadline of their own (an expiry, a limit
//! recheck) and the one the sweep just named; nor do all keys come due at once.

use std::sync::{Arc, Weak};
use std::time::Duration;

use futures::Stream;
use kube::Resource;
use kube::runtime::reflector::{ObjectRef, Store};
use tokio::time::Instant;

/// One pass over the store: the objects it held when the pass began, and when it began.
struct Pass<K> {
    /// Not yet named, last first. Weak: a key deleted meanwhile is not kept alive for the sweep.
    remaining: Vec<Weak<K>>,
    /// How many the pass began with.
    total: usize,
    began: Instant,
}

/// Names every object of `store` once per `period`, evenly spaced, pass after pass; the first
/// pass begins one period from now (the initial list reconciles every object already).
pub fn sweep<K>(store: Store<K>, period: Duration) -> impl Stream<Item = ObjectRef<K>> + Send
where
    K: Resource<DynamicType = ()> + Clone + Send + Sync + 'static,
{
    let first = Pass {
        remaining: Vec::new(),
        total: 0,
        began: Instant::now(),
    };
    futures::stream::unfold((store, first), move |(store, mut pass)| async move {
        loop {
            let Some(next) = pass.remaining.pop() else {
                tokio::time::sleep_until(pass.began + period).await;
                let mut remaining: Vec<_> = store.state().iter().map(Arc::downgrade).collect();
                remaining.reverse();
                pass = Pass {
                    total: remaining.len(),
                    remaining,
                    began: Instant::now(),
                };
                continue;
            };
            let done = pass.total - pass.remaining.len() - 1;
            tokio::time::sleep_until(pass.began + due_after(period, done, pass.total)).await;
            if let Some(object) = next.upgrade() {
                return Some((ObjectRef::from_obj(&*object), (store, pass)));
            }
        }
    })
}

/// When the `index`-th of `total` objects of a pass is due: spaced evenly over `period`.
fn due_after(period: Duration, index: usize, total: usize) -> Duration {
    let total = u128::try_from(total.max(1)).unwrap_or(u128::MAX);
    let index = u128::try_from(index).unwrap_or(u128::MAX);
    let nanos = period.as_nanos().saturating_mul(index) / total;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use futures::StreamExt;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::ObjectMeta;
    use kube::runtime::reflector;
    use kube::runtime::watcher::Event;

    use super::*;

    fn config_map(name: &str) -> ConfigMap {
        ConfigMap {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                ..ObjectMeta::default()
            },
            ..ConfigMap::default()
        }
    }

    #[test]
    fn a_pass_spreads_its_objects_over_the_period() {
        let period = Duration::from_secs(60);
        assert_eq!(due_after(period, 0, 3), Duration::ZERO);
        assert_eq!(due_after(period, 1, 3), Duration::from_secs(20));
        assert_eq!(due_after(period, 2, 3), Duration::from_secs(40));
        assert_eq!(due_after(period, 0, 0), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn every_object_is_named_once_per_period_and_deleted_ones_are_skipped() {
        let (store, mut writer) = reflector::store::<ConfigMap>();
        for name in ["a", "b", "c", "d"] {
            writer.apply_watcher_event(&Event::Apply(config_map(name)));
        }
        let period = Duration::from_secs(40);
        let start = Instant::now();
        let mut sweep = Box::pin(sweep(store, period));

        let mut named = Vec::new();
        for _ in 0..2 {
            let object = sweep.next().await.unwrap();
            named.push((object.name, start.elapsed().as_secs()));
        }
        // One of the two not named yet is deleted before its turn: it is skipped.
        let gone = ["a", "b", "c", "d"]
            .into_iter()
            .find(|name| named.iter().all(|(named, _)| named != name))
            .unwrap();
        writer.apply_watcher_event(&Event::Delete(config_map(gone)));
        let object = sweep.next().await.unwrap();
        assert_ne!(object.name, gone);
        named.push((object.name, start.elapsed().as_secs()));
        // The first pass begins one period in; its four objects are ten seconds apart.
        let times: Vec<_> = named.iter().map(|(_, at)| *at).collect();
        assert_eq!(times[..2], [40, 50]);
        assert!(times[2] == 60 || times[2] == 70, "{times:?}");

        // The next pass begins a period after this one began, with the three that are left.
        let next = sweep.next().await.unwrap();
        assert_eq!(start.elapsed().as_secs(), 80, "{}", next.name);
    }
}
