//! What makes the APIKey reconciler look at the inbox: request and approval events, mapped to the
//! key they concern. Requests that mirror no key the cache has ask for a sweep; approvals are
//! indexed by the request they review.

use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};

use super::requests::{RequestCache, key_of};
use crate::controller::context::Context;
use crate::controller::orphans::Sweeps;
use crate::resources::APIKeyApproval;
use crate::resources::cached_key::CachedKey;
use crate::resources::cached_request::{CachedRequest, RequestSummary};
use crate::watches::Feed;

/// Whether `request` names, by namespace, name and uid, an APIKey the cache has; one that does
/// not is for the sweep to judge.
fn mirrors_a_key(request: &RequestSummary, keys: &Store<CachedKey>) -> bool {
    let uid = request.key_uid();
    keys.get(&key_of(request))
        .is_some_and(|key| uid.is_some() && kube::Resource::meta(&*key).uid.as_deref() == uid)
}

/// Keeps `cache` from the requests' events and names the keys whose requests changed (a request
/// changed or deleted by someone else is put back by its key's reconcile): a request's key at its
/// event, and at the end of a (re-)list the keys whose requests the list changed, once the cache
/// holds it. A request whose key the cache does not have asks `sweeps` for a sweep.
pub(crate) fn requests(
    feed: Feed<CachedRequest>,
    cache: Arc<RequestCache>,
    keys: Store<CachedKey>,
    sweeps: Arc<Sweeps>,
) -> impl Stream<Item = ObjectRef<CachedKey>> + Send {
    feed.events()
        .filter_map(|event| std::future::ready(event.ok()))
        .map(move |event| {
            let relisted = cache.apply(&event);
            match event {
                watcher::Event::Apply(request) => {
                    if !mirrors_a_key(request.summary(), &keys) {
                        sweeps.request();
                    }
                    vec![key_of(request.summary())]
                }
                watcher::Event::Delete(request) => vec![key_of(request.summary())],
                watcher::Event::InitDone => relisted,
                watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
            }
        })
        .flat_map(futures::stream::iter)
}

/// The approvals that changed, indexed by the request they review on the way.
pub(crate) fn approvals(
    feed: Feed<APIKeyApproval>,
    ctx: Arc<Context>,
) -> impl Stream<Item = Result<APIKeyApproval, watcher::Error>> + Send {
    feed.events()
        .inspect_ok(move |event| ctx.inbox.index(event))
        .touched_objects()
}

/// Maps an approval to the key its request (found in `requests`) mirrors.
pub(crate) fn approval_to_key(
    requests: Arc<RequestCache>,
) -> impl Fn(APIKeyApproval) -> Option<ObjectRef<CachedKey>> {
    move |approval| {
        let namespace = approval.namespace().unwrap_or_default();
        requests
            .get(&namespace, &approval.spec.api_key_request_ref.name)
            .map(|request| key_of(&request))
    }
}
