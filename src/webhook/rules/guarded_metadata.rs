//! The pieces of an APIKey's metadata that can destroy or orphan a key, and who may change them:
//! devportal's finalizer (removing it lets the key go without its enforcement Secret) and
//! `ownerReferences` (a dangling owner makes the garbage collector delete the key).
//!
//! The requested-via annotation, which records the front end a key was requested through, changes
//! for nobody. Every other metadata change (labels, annotations, other finalizers) passes.

use k8s_openapi::api::authentication::v1::UserInfo;

use super::delegation::requested_via;
use super::{Checked, Limits, Reason, Verdict, lookup_failed};
use crate::names::{FINALIZER, REQUESTED_VIA_ANNOTATION};
use crate::resources::APIKey;
use crate::webhook::lookup::Lookup;

/// Checks an UPDATE of `old` to `new` by `user`; `Ok` carries warnings for kubectl.
pub async fn check<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    old: &APIKey,
    new: &APIKey,
    user: &UserInfo,
) -> Checked<Vec<String>> {
    let has_finalizer = |key: &APIKey| {
        key.metadata
            .finalizers
            .as_ref()
            .is_some_and(|f| f.iter().any(|f| f == FINALIZER))
    };
    // The mutating webhook restores it on every UPDATE; this catches a write that bypassed it.
    if requested_via(old) != requested_via(new) {
        return Err(Verdict::deny(
            Reason::GuardedMetadata,
            format!(
                "annotation {REQUESTED_VIA_ANNOTATION} records who requested the key; only devportal writes it"
            ),
        ));
    }
    let finalizer_removed = has_finalizer(old) && !has_finalizer(new);
    let owners_changed = old.metadata.owner_references != new.metadata.owner_references;
    if !finalizer_removed && !owners_changed {
        return Ok(Vec::new());
    }
    let username = user.username.as_deref().unwrap_or_default();
    if username == limits.controller_username {
        return Ok(Vec::new());
    }
    let requester = old
        .spec
        .requested_by
        .as_ref()
        .is_some_and(|r| r.user_id == username);
    if owners_changed && !finalizer_removed && requester {
        return Ok(Vec::new());
    }
    // Admins hold `approve` on every product in every namespace.
    let admin = lookup
        .may_approve(user, "", "")
        .await
        .map_err(|e| lookup_failed("your permissions", e))?;
    if admin {
        let mut warnings = Vec::new();
        if finalizer_removed {
            warnings.push(format!(
                "removed devportal's finalizer {FINALIZER}: the key's enforcement Secret is no longer \
                 removed with it; devportal's controller deletes it when it next finds it orphaned"
            ));
        }
        return Ok(warnings);
    }
    let what = if finalizer_removed {
        format!(
            "only devportal's controller removes the finalizer {FINALIZER} (it guards the key's \
             enforcement Secret); delete the APIKey instead, or ask an admin"
        )
    } else {
        "only the requester, an admin or devportal's controller may change ownerReferences of an \
         APIKey (a dangling owner would have the garbage collector delete it)"
            .to_string()
    };
    Err(Verdict::deny(Reason::GuardedMetadata, what))
}
