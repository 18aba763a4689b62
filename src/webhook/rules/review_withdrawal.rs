//! The withdrawal of an APIKey's review: when someone who may approve clears `spec.approval`,
//! the mutating webhook records when in the [`REVIEW_WITHDRAWN_ANNOTATION`], and every review of
//! the key's request up to then stays superseded (the controller does not re-apply an older
//! APIKeyApproval: see [`crate::review_order`]). Only devportal writes the annotation: the
//! mutating webhook restores it on every other write ([`patch`]) and the validating webhook
//! refuses a write that changed it otherwise ([`check`]).

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;

use super::{Change, Checked, Reason, Verdict};
use crate::names::REVIEW_WITHDRAWN_ANNOTATION;
use crate::resources::APIKey;
use crate::review_order;

/// The annotation's value on `key`, as stored.
fn raw(key: &APIKey) -> Option<&String> {
    key.annotations().get(REVIEW_WITHDRAWN_ANNOTATION)
}

/// The withdrawal `key` records, if any.
pub fn mark(key: &APIKey) -> Option<Timestamp> {
    raw(key)?.parse().ok()
}

/// The withdrawal the stored key of an UPDATE records (a new review is stamped after it).
pub fn withdrawn_at(change: &Change<'_, APIKey>) -> Option<Timestamp> {
    match *change {
        Change::Update { old, .. } => mark(old),
        Change::Create(_) => None,
    }
}

/// Whether `change` clears the key's review.
fn withdraws(change: &Change<'_, APIKey>) -> bool {
    matches!(*change, Change::Update { old, new }
        if old.spec.approval.is_some() && new.spec.approval.is_none())
}

/// What the annotation should read after `change` at `now`: a new withdrawal time when the
/// change clears the review (strictly after the cleared review and any earlier withdrawal),
/// else what the stored key says (nothing on CREATE).
fn wanted(change: &Change<'_, APIKey>, now: Timestamp) -> Option<String> {
    match *change {
        Change::Update { old, .. } if withdraws(change) => {
            let reviewed = old
                .spec
                .approval
                .as_ref()
                .and_then(|a| a.reviewed_at.as_ref())
                .map(|t| t.0);
            let at = review_order::stamp(now, reviewed.into_iter().chain(mark(old)));
            serde_json::to_value(MicroTime(at))
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
        }
        Change::Update { old, .. } => raw(old).cloned(),
        Change::Create(_) => None,
    }
}

/// The patch that makes the annotation what devportal says after `change` at `now` (with a
/// warning when a client's value was undone), if it is not that already.
pub fn patch(change: &Change<'_, APIKey>, now: Timestamp) -> Option<(PatchOperation, Vec<String>)> {
    let key = change.new_object();
    let wanted = wanted(change, now);
    if raw(key) == wanted.as_ref() {
        return None;
    }
    let warnings = if withdraws(change) {
        Vec::new()
    } else {
        vec![format!(
            "annotation {REVIEW_WITHDRAWN_ANNOTATION} was restored: devportal records there when \
             a key's review was withdrawn, and only devportal writes it"
        )]
    };
    let pointer = PointerBuf::from_tokens(["metadata", "annotations", REVIEW_WITHDRAWN_ANNOTATION]);
    let operation = match wanted {
        None => PatchOperation::Remove(RemoveOperation { path: pointer }),
        Some(at) if key.metadata.annotations.is_some() => PatchOperation::Add(AddOperation {
            path: pointer,
            value: at.into(),
        }),
        Some(at) => {
            // No annotations at all: the map is added whole, with anything another patch of the
            // same review adds (the requested-via annotation) merged in by [`merge_into`].
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(["metadata", "annotations"]),
                value: serde_json::json!({ REVIEW_WITHDRAWN_ANNOTATION: at }),
            })
        }
    };
    Some((operation, warnings))
}

/// Adds `operation` (from [`patch`]) to `patch`: when both add the whole annotations map, the
/// maps are merged, so neither undoes the other.
pub fn merge_into(patch: &mut Vec<PatchOperation>, operation: PatchOperation) {
    let whole = PointerBuf::from_tokens(["metadata", "annotations"]);
    if let PatchOperation::Add(AddOperation { path, value }) = &operation
        && *path == whole
        && let Some(PatchOperation::Add(earlier)) = patch.iter_mut().find(
            |op| matches!(op, PatchOperation::Add(AddOperation { path, .. }) if *path == whole),
        )
        && let (Some(map), Some(ours)) = (earlier.value.as_object_mut(), value.as_object())
    {
        map.extend(ours.clone());
        return;
    }
    patch.push(operation);
}

/// Refuses a change of the annotation other than devportal's record of a withdrawal: on CREATE
/// it is absent; on an UPDATE it changes only when the review is cleared, to a time after the
/// review cleared and any earlier withdrawal.
pub fn check(change: &Change<'_, APIKey>) -> Checked {
    let refuse = || {
        Verdict::deny(
            Reason::GuardedMetadata,
            format!(
                "annotation {REVIEW_WITHDRAWN_ANNOTATION} records when a key's review was \
                 withdrawn; only devportal's mutating webhook writes it"
            ),
        )
    };
    let new = change.new_object();
    match *change {
        Change::Create(_) if raw(new).is_some() => Err(refuse()),
        Change::Create(_) => Ok(()),
        Change::Update { old, .. } if raw(old) == raw(new) => Ok(()),
        Change::Update { old, .. } if withdraws(change) => {
            let reviewed = old
                .spec
                .approval
                .as_ref()
                .and_then(|a| a.reviewed_at.as_ref())
                .map(|t| t.0);
            match mark(new) {
                Some(at) if reviewed.is_none_or(|r| at > r) && mark(old).is_none_or(|m| at > m) => {
                    Ok(())
                }
                _ => Err(refuse()),
            }
        }
        Change::Update { .. } => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(approval: Option<(bool, &str)>, mark: Option<&str>) -> APIKey {
        let mut key: APIKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k", "namespace": "team"},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold"}
        }))
        .unwrap();
        key.spec.approval = approval.map(|(approved, at)| crate::resources::Approval {
            approved,
            reason: None,
            reviewed_by: Some("owner".into()),
            reviewed_at: Some(MicroTime(at.parse().unwrap())),
            product_uid: None,
            plan_tier: None,
        });
        if let Some(mark) = mark {
            key.annotations_mut()
                .insert(REVIEW_WITHDRAWN_ANNOTATION.into(), mark.into());
        }
        key
    }

    fn value(operation: &PatchOperation) -> serde_json::Value {
        match operation {
            PatchOperation::Add(add) => add.value.clone(),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn clearing_a_review_records_a_withdrawal_after_it() {
        // The revocation was stamped by a replica whose clock runs ahead of this one's.
        let old = key(Some((false, "2026-01-01T00:00:05.900000Z")), None);
        let new = key(None, None);
        let now: Timestamp = "2026-01-01T00:00:05.500000Z".parse().unwrap();
        let change = Change::Update {
            old: &old,
            new: &new,
        };
        let (operation, warnings) = patch(&change, now).unwrap();
        assert!(warnings.is_empty());
        assert_eq!(
            value(&operation),
            serde_json::json!({ REVIEW_WITHDRAWN_ANNOTATION: "2026-01-01T00:00:05.900001Z" })
        );
        let mut stamped = new.clone();
        stamped.annotations_mut().insert(
            REVIEW_WITHDRAWN_ANNOTATION.into(),
            "2026-01-01T00:00:05.900001Z".into(),
        );
        let admitted = Change::Update {
            old: &old,
            new: &stamped,
        };
        assert!(check(&admitted).is_ok());
        assert!(patch(&admitted, now).is_none(), "nothing more to do");
    }

    #[test]
    fn nobody_else_writes_or_removes_the_mark() {
        let marked = key(None, Some("2026-01-01T00:00:05Z"));
        let unmarked = key(None, None);
        // Removed by a client: restored, and refused if it got through.
        let removed = Change::Update {
            old: &marked,
            new: &unmarked,
        };
        let (operation, warnings) =
            patch(&removed, "2026-01-02T00:00:00Z".parse().unwrap()).unwrap();
        assert_eq!(
            value(&operation),
            serde_json::json!({ REVIEW_WITHDRAWN_ANNOTATION: "2026-01-01T00:00:05Z" })
        );
        assert_eq!(warnings.len(), 1);
        assert!(check(&removed).is_err());
        // Planted at CREATE or on a key whose review was not cleared.
        assert!(check(&Change::Create(&marked)).is_err());
        let reviewed = key(Some((true, "2026-01-01T00:00:00Z")), None);
        let planted = key(
            Some((true, "2026-01-01T00:00:00Z")),
            Some("2027-01-01T00:00:00Z"),
        );
        assert!(
            check(&Change::Update {
                old: &reviewed,
                new: &planted
            })
            .is_err()
        );
        // A withdrawal time before the cleared review is not devportal's.
        let backdated = key(None, Some("2025-01-01T00:00:00Z"));
        assert!(
            check(&Change::Update {
                old: &reviewed,
                new: &backdated
            })
            .is_err()
        );
    }

    #[test]
    fn both_whole_annotation_maps_survive() {
        let mut ops = vec![PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: serde_json::json!({"a": "1"}),
        })];
        merge_into(
            &mut ops,
            PatchOperation::Add(AddOperation {
                path: PointerBuf::from_tokens(["metadata", "annotations"]),
                value: serde_json::json!({"b": "2"}),
            }),
        );
        assert_eq!(ops.len(), 1);
        assert_eq!(value(&ops[0]), serde_json::json!({"a": "1", "b": "2"}));
    }
}
