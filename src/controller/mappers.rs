//! Mappers from watch events to the objects they concern, for the reconcilers `wiring.rs`
//! assembles: the keys a key's departure frees from the key limit, and the products a Kuadrant
//! policy is on (and was on before it moved).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use kube::Resource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;

use super::apikey::key_line;
use super::context::Context;
use crate::discovery::Target;
use crate::key_limit::{self, Holder};
use crate::resources::APIProduct;
use crate::resources::cached_key::CachedKey;
use crate::resources::kuadrant::PolicyTargetRef;

/// A policy by kind, namespace and name, remembered with the target it last pointed at.
pub(super) type PolicyTargets = Arc<Mutex<HashMap<(String, String, String), Target>>>;

/// Keeps the holder index in step with the APIKey events (before the reconciler sees them), and
/// wakes the keys held back by the limit when a key ahead of them stops counting.
pub(super) fn follow_holders(
    ctx: &Context,
    event: &watcher::Event<CachedKey>,
    wake: &futures::channel::mpsc::UnboundedSender<ObjectRef<CachedKey>>,
) {
    let (key, gone) = match event {
        watcher::Event::Apply(key) | watcher::Event::InitApply(key) => {
            (key, !key_limit::counts_unless_expired(key))
        }
        watcher::Event::Delete(key) => (key, true),
        watcher::Event::Init | watcher::Event::InitDone => return,
    };
    let holder = match event {
        watcher::Event::Delete(_) => None,
        _ => Holder::of(key),
    };
    ctx.key_holders
        .set(ObjectRef::from_obj(key), holder.map(Arc::new));
    if gone {
        for peer in key_line::wake_after(key, &ctx.key_holders, &ctx.config.key_limit) {
            // The receiver lives as long as the reconciler; nothing to do once it is gone.
            let _ = wake.unbounded_send(peer);
        }
    }
}

/// Maps a policy event to the products on its target — and on its previous target, so products
/// a policy was moved away from are reconciled too.
pub(super) fn policy_mapper<P>(
    ctx: Arc<Context>,
    previous: PolicyTargets,
    target_of: fn(&P) -> &PolicyTargetRef,
) -> impl Fn(P) -> Vec<ObjectRef<APIProduct>>
where
    P: Resource<DynamicType = ()>,
{
    move |policy: P| {
        let namespace = policy.meta().namespace.clone().unwrap_or_default();
        let id = (
            P::kind(&()).to_string(),
            namespace.clone(),
            policy.meta().name.clone().unwrap_or_default(),
        );
        let current = Target::of_policy(target_of(&policy), &namespace);
        let mut remembered = previous.lock().expect("policy targets");
        let before = match &current {
            Some(target) => remembered.insert(id, target.clone()),
            None => remembered.remove(&id),
        };
        drop(remembered);
        let mut products: Vec<_> = current
            .iter()
            .chain(before.iter())
            .flat_map(|t| ctx.targets.lookup(t))
            .collect();
        products.sort_by_key(|p| p.to_string());
        products.dedup();
        products
    }
}
