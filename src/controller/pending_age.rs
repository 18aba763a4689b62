//! How long the oldest key still waiting has waited, by the approval mode of its product: the
//! gauge (`devportal_apikeys_oldest_pending_seconds`) the stuck-Pending alert reads.

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;

use super::apikey::key_line::{self, Line};
use super::context::Context;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKeyPhase, APIProduct, ApprovalMode};

/// The age in seconds of the oldest key of each approval mode that is Pending or has no phase
/// yet (never reconciled), as the leader's caches see it; 0 when no key of that mode waits.
/// Keys being deleted, keys whose product is not (or no longer) there and keys the key limit
/// holds back (they wait for their requester to free a place, not for devportal) are not
/// waiting.
pub(super) fn oldest_pending(ctx: &Context, now: Timestamp) -> [(ApprovalMode, f64); 2] {
    let keys = ctx.keys.state();
    oldest(
        keys.iter().map(|key| key.as_ref()),
        |key| {
            let product = ObjectRef::<APIProduct>::new(&key.spec().api_product_ref.name)
                .within(key.product_namespace().unwrap_or_default());
            ctx.products.get(&product).map(|p| p.spec.approval_mode)
        },
        |key| {
            matches!(
                key_line::line(key, &ctx.keys, &ctx.key_holders, &ctx.config.key_limit, now),
                Line::Blocked(_)
            )
        },
        now,
    )
}

/// [`oldest_pending`] over `keys`, with `mode_of` naming the approval mode of a key's product
/// and `held` telling the keys the key limit holds back. `held` is asked oldest first and only
/// until a key of each mode is not held: a key's line costs a look at its requester's keys.
fn oldest<'a>(
    keys: impl Iterator<Item = &'a CachedKey>,
    mode_of: impl Fn(&CachedKey) -> Option<ApprovalMode>,
    held: impl Fn(&CachedKey) -> bool,
    now: Timestamp,
) -> [(ApprovalMode, f64); 2] {
    let mut waiting: Vec<(ApprovalMode, f64, &CachedKey)> = keys
        .filter_map(|key| {
            let meta = key.meta();
            let pending = matches!(key.phase(), None | Some(APIKeyPhase::Pending));
            let (true, None, Some(created)) =
                (pending, &meta.deletion_timestamp, &meta.creation_timestamp)
            else {
                return None;
            };
            let age = now.duration_since(created.0).as_secs_f64().max(0.0);
            Some((mode_of(key)?, age, key))
        })
        .collect();
    waiting.sort_by(|a, b| b.1.total_cmp(&a.1));
    [ApprovalMode::Automatic, ApprovalMode::Manual].map(|mode| {
        let age = waiting
            .iter()
            .filter(|(m, _, _)| *m == mode)
            .find(|(_, _, key)| !held(key))
            .map_or(0.0, |(_, age, _)| *age);
        (mode, age)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(name: &str, product: &str, created: &str, phase: Option<&str>) -> CachedKey {
        let mut key = json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": name, "namespace": "team", "creationTimestamp": created},
            "spec": {"apiProductRef": {"name": product}, "planTier": "gold"}
        });
        if let Some(phase) = phase {
            key["status"] = json!({"phase": phase});
        }
        serde_json::from_value(key).expect("a key")
    }

    fn mode(key: &CachedKey) -> Option<ApprovalMode> {
        match key.spec().api_product_ref.name.as_str() {
            "auto" => Some(ApprovalMode::Automatic),
            "manual" => Some(ApprovalMode::Manual),
            _ => None,
        }
    }

    #[test]
    fn the_oldest_waiting_key_of_each_mode_counts() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let keys = [
            key("a", "auto", "2026-01-01T23:59:00Z", Some("Pending")),
            key("b", "auto", "2026-01-01T23:58:00Z", None),
            // Approved, Failed or without a product: not waiting, however old.
            key("c", "auto", "2026-01-01T00:00:00Z", Some("Approved")),
            key("d", "manual", "2026-01-01T00:00:00Z", Some("Failed")),
            key("e", "gone", "2025-01-01T00:00:00Z", Some("Pending")),
            key("f", "manual", "2026-01-01T12:00:00Z", Some("Pending")),
            // Held back by the key limit: waiting for its requester, not for devportal.
            key("held", "auto", "2026-01-01T00:00:00Z", Some("Pending")),
        ];
        let held = |k: &CachedKey| k.meta().name.as_deref() == Some("held");
        assert_eq!(
            oldest(keys.iter(), mode, held, now),
            [
                (ApprovalMode::Automatic, 120.0),
                (ApprovalMode::Manual, 43_200.0)
            ]
        );
    }

    #[test]
    fn nothing_waiting_reads_zero() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let keys = [key("c", "auto", "2026-01-01T00:00:00Z", Some("Denied"))];
        assert_eq!(
            oldest(keys.iter(), mode, |_| false, now),
            [(ApprovalMode::Automatic, 0.0), (ApprovalMode::Manual, 0.0)]
        );
    }

    #[test]
    fn held_is_asked_oldest_first_and_only_until_a_key_is_not_held() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let keys: Vec<CachedKey> = (0..50)
            .map(|i| {
                let created = format!("2026-01-01T00:{:02}:00Z", i);
                key(&format!("k{i}"), "auto", &created, Some("Pending"))
            })
            .collect();
        let asked = std::cell::RefCell::new(Vec::new());
        let held = |k: &CachedKey| {
            let name = k.meta().name.clone().unwrap();
            asked.borrow_mut().push(name.clone());
            name == "k0"
        };
        let ages = oldest(keys.iter(), mode, held, now);
        // k0 (the oldest) is held; k1 is the oldest waiting key.
        assert_eq!(ages[0], (ApprovalMode::Automatic, 86_400.0 - 60.0));
        assert_eq!(*asked.borrow(), ["k0", "k1"]);
    }
}
