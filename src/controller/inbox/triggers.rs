//! What makes the APIKey reconciler look at the inbox: request and approval events, mapped to the
//! key they concern. Requests that mirror no key the cache has ask for a sweep; approvals are
//! indexed by the request they review.

use std::sync::Arc;

use futures::{Stream, TryStreamExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Resource, ResourceExt};

use crate::controller::context::Context;
use crate::controller::orphans::Sweeps;
use crate::resources::APIKeyApproval;
use crate::resources::cached_key::CachedKey;
use crate::resources::cached_request::CachedRequest;
use crate::watches::Feed;

/// The APIKey an APIKeyRequest mirrors.
pub(crate) fn key_of(request: &CachedRequest) -> ObjectRef<CachedKey> {
    let reference = request.api_key_ref();
    ObjectRef::new(&reference.name).within(&reference.namespace)
}

/// Whether `request` names, by namespace, name and uid, an APIKey the cache has; one that does
/// not is for the sweep to judge.
fn mirrors_a_key(request: &CachedRequest, keys: &Store<CachedKey>) -> bool {
    let uid = request.key_uid();
    keys.get(&key_of(request))
        .is_some_and(|key| uid.is_some() && key.meta().uid.as_deref() == uid)
}

/// The requests that changed (a request changed or deleted by someone else is put back by its
/// key's reconcile); one whose key the cache does not have asks `sweeps` for a sweep.
pub(crate) fn requests(
    feed: Feed<CachedRequest>,
    keys: Store<CachedKey>,
    sweeps: Arc<Sweeps>,
) -> impl Stream<Item = Result<CachedRequest, watcher::Error>> + Send {
    feed.events()
        .inspect_ok(move |event| {
            if let watcher::Event::Apply(request) = event
                && !mirrors_a_key(request, &keys)
            {
                sweeps.request();
            }
        })
        .touched_objects()
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
    requests: Store<CachedRequest>,
) -> impl Fn(APIKeyApproval) -> Option<ObjectRef<CachedKey>> {
    move |approval| {
        let namespace = approval.namespace().unwrap_or_default();
        requests
            .get(&ObjectRef::new(&approval.spec.api_key_request_ref.name).within(&namespace))
            .map(|request| key_of(&request))
    }
}
