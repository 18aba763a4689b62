//! How long the oldest key still waiting has waited, by whom it waits for: the gauge
//! (`devportal_apikeys_oldest_pending_seconds`) the stuck-Pending alert reads.

use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::runtime::reflector::ObjectRef;

use super::apikey::key_line::{self, Line};
use super::apikey::phase;
use super::context::Context;
use super::policy;
use crate::resources::cached_key::CachedKey;
use crate::resources::{APIKey, APIKeyPhase, APIProduct, ApprovalMode};

/// The age in seconds of the oldest key that is Pending or has no phase yet (never reconciled),
/// by how it is to be approved, as the leader's caches see it; 0 when no key waits so.
/// `Automatic`: its product approves keys automatically, so it waits for devportal. `Manual`:
/// it waits for an owner, because its product approves keys manually or because an
/// APIKeyPolicy requires an owner's approval of it (`ApprovalRequiredByPolicy`). Keys being
/// deleted, keys whose product is not (or no longer) there and keys the key limit (the flag, or
/// a policy's) holds back (they wait for their requester to free a place) are not waiting.
pub(super) fn oldest_pending(ctx: &Context, now: Timestamp) -> [(ApprovalMode, f64); 2] {
    let keys = ctx.keys.state();
    let product_of = |key: &CachedKey| {
        let product = ObjectRef::<APIProduct>::new(&key.spec().api_product_ref.name)
            .within(key.product_namespace().unwrap_or_default());
        ctx.products.get(&product)
    };
    // The limits in force for the key: the flags, tightened by the policies that concern it.
    let effective = |key: &APIKey, product: Option<&APIProduct>| {
        ctx.policies
            .effective(key, product, &policy::defaults(&ctx.config))
    };
    oldest(
        keys.iter().map(|key| key.as_ref()),
        |key| product_of(key).map(|p| p.spec.approval_mode),
        // As the reconcile decides (`policy::hold_for_owner`): a key without an approval in
        // force, which its product would approve, waits for an owner when a policy requires one.
        |key| {
            let (key, product) = (key.to_key(), product_of(key));
            let product = product.as_deref();
            !product.is_some_and(|p| phase::approval_in_force(&key, p))
                && effective(&key, product).manual_approval.is_some()
        },
        |key| {
            let limit = policy::key_limit(
                &ctx.config,
                &effective(&key.to_key(), product_of(key).as_deref()),
            );
            matches!(
                key_line::line(key, &ctx.keys, &ctx.key_holders, &limit, now),
                Line::Blocked(_)
            )
        },
        now,
    )
}

/// [`oldest_pending`] over `keys`, with `mode_of` naming the approval mode of a key's product,
/// `owner_required` telling the keys of automatic products an APIKeyPolicy holds for an owner
/// (they count as `Manual`), and `held` telling the keys the key limit holds back. Both are
/// asked oldest first, and only while the answer can still change a result: a policy's verdict
/// costs a match against every policy, a key's line a look at its requester's keys.
fn oldest<'a>(
    keys: impl Iterator<Item = &'a CachedKey>,
    mode_of: impl Fn(&CachedKey) -> Option<ApprovalMode>,
    owner_required: impl Fn(&CachedKey) -> bool,
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
    let mut automatic = None;
    let mut manual = None;
    for (product_mode, age, key) in waiting {
        if automatic.is_some() && manual.is_some() {
            break;
        }
        // A manual product's key waits for an owner whatever the policies say.
        if product_mode == ApprovalMode::Manual && manual.is_some() {
            continue;
        }
        let slot = match product_mode {
            ApprovalMode::Automatic if !owner_required(key) => &mut automatic,
            _ => &mut manual,
        };
        if slot.is_none() && !held(key) {
            *slot = Some(age);
        }
    }
    [
        (ApprovalMode::Automatic, automatic.unwrap_or(0.0)),
        (ApprovalMode::Manual, manual.unwrap_or(0.0)),
    ]
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
            oldest(keys.iter(), mode, |_| false, held, now),
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
            oldest(keys.iter(), mode, |_| false, |_| false, now),
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
        let ages = oldest(keys.iter(), mode, |_| false, held, now);
        // k0 (the oldest) is held; k1 is the oldest waiting key.
        assert_eq!(ages[0], (ApprovalMode::Automatic, 86_400.0 - 60.0));
        assert_eq!(*asked.borrow(), ["k0", "k1"]);
    }

    #[test]
    fn a_key_a_policy_holds_for_an_owner_waits_as_manual_not_automatic() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let by_policy = |k: &CachedKey| {
            k.meta()
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with("held"))
        };
        // A day-old key of an automatic product that an APIKeyPolicy holds for an owner
        // (ApprovalRequiredByPolicy): it waits for people, not for devportal.
        let keys = [key(
            "held-by-policy",
            "auto",
            "2026-01-01T00:00:00Z",
            Some("Pending"),
        )];
        assert_eq!(
            oldest(keys.iter(), mode, by_policy, |_| false, now),
            [
                (ApprovalMode::Automatic, 0.0),
                (ApprovalMode::Manual, 86_400.0)
            ]
        );
        // Among other keys: the automatic gauge reads the oldest key devportal is to approve,
        // the manual one the oldest that waits for an owner, whichever made it wait so.
        let keys = [
            key(
                "held-by-policy",
                "auto",
                "2026-01-01T00:00:00Z",
                Some("Pending"),
            ),
            key("a", "auto", "2026-01-01T23:59:00Z", Some("Pending")),
            key("f", "manual", "2026-01-01T12:00:00Z", Some("Pending")),
        ];
        assert_eq!(
            oldest(keys.iter(), mode, by_policy, |_| false, now),
            [
                (ApprovalMode::Automatic, 60.0),
                (ApprovalMode::Manual, 86_400.0)
            ]
        );
        // Also held back by the key limit: waiting for its requester, so in neither.
        let limited = |k: &CachedKey| k.meta().name.as_deref() == Some("held-by-policy");
        assert_eq!(
            oldest(keys.iter(), mode, by_policy, limited, now),
            [
                (ApprovalMode::Automatic, 60.0),
                (ApprovalMode::Manual, 43_200.0)
            ]
        );
    }

    #[test]
    fn only_keys_of_automatic_products_are_asked_about_policies() {
        let now: Timestamp = "2026-01-02T00:00:00Z".parse().unwrap();
        let keys = [
            key("m", "manual", "2026-01-01T00:00:00Z", Some("Pending")),
            key("a", "auto", "2026-01-01T12:00:00Z", None),
        ];
        let asked = std::cell::RefCell::new(Vec::new());
        let by_policy = |k: &CachedKey| {
            asked.borrow_mut().push(k.meta().name.clone().unwrap());
            false
        };
        assert_eq!(
            oldest(keys.iter(), mode, by_policy, |_| false, now),
            [
                (ApprovalMode::Automatic, 43_200.0),
                (ApprovalMode::Manual, 86_400.0)
            ]
        );
        assert_eq!(*asked.borrow(), ["a"]);
    }
}
