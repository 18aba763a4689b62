//! What the inbox reads and remembers between reconciles: the request cache, the approval store, the
//! approvals indexed by the request they review, and which Events were already sent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::ResourceExt;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::watcher;

use super::queue::Lane;
use super::requests::RequestCache;
use crate::controller::index::RefIndex;
use crate::resources::APIKeyApproval;

/// What the inbox reads and remembers.
pub(crate) struct Inbox {
    /// The APIKeyRequests, as the controller last wrote them.
    pub(crate) requests: Arc<RequestCache>,
    /// The APIKeyApprovals.
    pub(crate) approvals: Store<APIKeyApproval>,
    /// The APIKeyApprovals by the request they review: (namespace, request name).
    pub(super) by_request: RefIndex<(String, String), APIKeyApproval>,
    /// The request phase last announced with an Event, by key uid.
    pub(super) announced: Mutex<HashMap<String, &'static str>>,
    /// The request status last written, by key uid: the request's resourceVersion the write
    /// built on and a digest of the status without timestamps. A reconcile that sees that
    /// version again (the cache has not caught up with the write) does not write it twice; the
    /// memo goes once the cache has moved past that version.
    pub(super) status_written: Mutex<HashMap<String, (Option<String>, u64)>>,
    /// The requests of automatically approved keys, written when the reconciles pause.
    pub(crate) lane: Lane,
}

impl Inbox {
    /// An inbox over the request cache and the approval store.
    pub(crate) fn new(requests: Arc<RequestCache>, approvals: Store<APIKeyApproval>) -> Self {
        Self {
            requests,
            approvals,
            by_request: RefIndex::default(),
            announced: Mutex::default(),
            status_written: Mutex::default(),
            lane: Lane::default(),
        }
    }

    /// Keeps the index of approvals by request in step with an approval event.
    pub(crate) fn index(&self, event: &watcher::Event<APIKeyApproval>) {
        match event {
            watcher::Event::Apply(approval) | watcher::Event::InitApply(approval) => {
                let request = (
                    approval.namespace().unwrap_or_default(),
                    approval.spec.api_key_request_ref.name.clone(),
                );
                self.by_request
                    .set(ObjectRef::from_obj(approval), Some(request));
            }
            watcher::Event::Delete(approval) => {
                self.by_request.set(ObjectRef::from_obj(approval), None);
            }
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
    }

    /// The APIKeyApprovals of the request `namespace/request`.
    pub(super) fn approvals_of(
        &self,
        namespace: &str,
        request: &str,
    ) -> Vec<std::sync::Arc<APIKeyApproval>> {
        self.by_request
            .lookup(&(namespace.to_string(), request.to_string()))
            .iter()
            .filter_map(|approval| self.approvals.get(approval))
            .filter(|a| a.spec.api_key_request_ref.name == request)
            .collect()
    }
}
