//! Trusted front ends, the Kubernetes way. A portal front end (the Kuadrant Backstage plugin's
//! backend) either impersonates its users (`Impersonate-User` headers: the API server then hands
//! the webhook the user, and nothing here applies), or acts as itself and names the user in the
//! object: `spec.requestedBy.userId` of an APIKey, `reviewedBy` of an approval. Such a claim is
//! accepted only from a caller Kubernetes already trusts to act as that user: one that may
//! `impersonate` the user (core group, resource `users`, that name), asked with a
//! SubjectAccessReview. Otherwise the caller is recorded, as for everyone else.
//!
//! [`effective_identity`] is the decision, shared by every rule that records who did something.
//! When a claim is accepted, the front end's own name goes into the
//! [`REQUESTED_VIA_ANNOTATION`] of an APIKey, which only the webhook writes ([`annotation_patch`]),
//! so audit shows both.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::api::authentication::v1::UserInfo;

use super::email::plausible_email;
use super::{Checked, Reason, Verdict, lookup_failed};
use crate::Result;
use crate::names::REQUESTED_VIA_ANNOTATION;
use crate::resources::APIKey;
use crate::webhook::lookup::Lookup;

/// On whose behalf a request acts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The user to record: the caller, or the user a trusted front end acts for.
    pub user: String,
    /// The caller's own username when it acts for [`Identity::user`]: the front end.
    pub delegated_by: Option<String>,
}

/// Whom `caller` acts for when it names `claimed` as the user: `claimed` if that is the caller
/// itself or a user the caller may `impersonate` (one SubjectAccessReview, through the lookup's
/// rate-limited live calls), else the caller. No claim (absent or empty) is the caller. A failed
/// lookup is an error, never a silent fallback to the caller.
pub async fn effective_identity<C: Lookup>(
    lookup: &C,
    caller: &UserInfo,
    claimed: Option<&str>,
) -> Result<Identity> {
    let username = caller.username.clone().unwrap_or_default();
    let oneself = Identity {
        user: username.clone(),
        delegated_by: None,
    };
    let Some(claimed) = claimed.filter(|c| !c.is_empty() && *c != username) else {
        return Ok(oneself);
    };
    if username.is_empty() || !lookup.may_impersonate(caller, claimed).await? {
        return Ok(oneself);
    }
    Ok(Identity {
        user: claimed.into(),
        delegated_by: Some(username),
    })
}

/// Whether `caller` may act for `user` (is `user`, or may impersonate them): a trusted front end
/// edits its user's request as the user would.
pub async fn acts_for<C: Lookup>(lookup: &C, caller: &UserInfo, user: &str) -> Checked<bool> {
    let identity = effective_identity(lookup, caller, Some(user))
        .await
        .map_err(|e| lookup_failed("impersonation permissions (SubjectAccessReview)", e))?;
    Ok(!user.is_empty() && identity.user == user)
}

/// The value of `key`'s [`REQUESTED_VIA_ANNOTATION`], if set.
pub fn requested_via(key: &APIKey) -> Option<&str> {
    key.metadata
        .annotations
        .as_ref()?
        .get(REQUESTED_VIA_ANNOTATION)
        .map(String::as_str)
}

/// The patch that makes `key`'s [`REQUESTED_VIA_ANNOTATION`] read `wanted` (absent for `None`),
/// if it does not already: on a CREATE, the front end when a claim was accepted and nothing
/// otherwise; on an UPDATE, what the stored object says.
pub fn annotation_patch(key: &APIKey, wanted: Option<&str>) -> Option<PatchOperation> {
    if requested_via(key) == wanted {
        return None;
    }
    let pointer = PointerBuf::from_tokens(["metadata", "annotations", REQUESTED_VIA_ANNOTATION]);
    Some(match wanted {
        None => PatchOperation::Remove(RemoveOperation { path: pointer }),
        Some(front_end) if key.metadata.annotations.is_some() => {
            PatchOperation::Add(AddOperation {
                path: pointer,
                value: front_end.into(),
            })
        }
        Some(front_end) => PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["metadata", "annotations"]),
            value: serde_json::json!({ REQUESTED_VIA_ANNOTATION: front_end }),
        }),
    })
}

/// The requester of a new `key` created by `user`, as validation checks it: `spec.requestedBy`
/// names the caller or a user it may impersonate, the annotation names the front end exactly
/// when it acts for someone, and the e-mail, unless a trusted front end gave it, looks like one.
pub async fn check_requester<C: Lookup>(
    lookup: &C,
    key: &APIKey,
    user: &UserInfo,
) -> Checked<Identity> {
    let requested_by = key.spec.requested_by.as_ref();
    let identity = effective_identity(lookup, user, requested_by.map(|r| r.user_id.as_str()))
        .await
        .map_err(|e| lookup_failed("impersonation permissions (SubjectAccessReview)", e))?;
    if requested_by.map(|r| r.user_id.as_str()) != Some(identity.user.as_str()) {
        return Err(Verdict::deny(
            Reason::RequesterMismatch,
            format!(
                "spec.requestedBy.userId must be your own username {:?}, or a user you may \
                 impersonate",
                identity.user
            ),
        ));
    }
    if requested_via(key) != identity.delegated_by.as_deref() {
        return Err(Verdict::deny(
            Reason::GuardedMetadata,
            format!(
                "annotation {REQUESTED_VIA_ANNOTATION} is written by devportal's mutating webhook \
                 only, when a front end acts for a user it may impersonate"
            ),
        ));
    }
    if identity.delegated_by.is_none()
        && let Some(email) = requested_by.and_then(|r| r.email.as_deref())
        && !plausible_email(email)
    {
        return Err(Verdict::deny(
            Reason::InvalidEmail,
            format!(
                "spec.requestedBy.email {email:?} is not an e-mail address (expected name@domain.example)"
            ),
        ));
    }
    Ok(identity)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::webhook::lookup::MemoryLookup;

    fn caller(name: &str) -> UserInfo {
        UserInfo {
            username: Some(name.into()),
            ..UserInfo::default()
        }
    }

    const FRONT_END: &str = "system:serviceaccount:portal:backstage";
    const ALICE: &str = "user:default/alice";

    #[tokio::test]
    async fn a_front_end_acts_for_exactly_the_users_it_may_impersonate() {
        let lookup = MemoryLookup::default().with_impersonator(FRONT_END, ALICE);
        let front_end = caller(FRONT_END);
        assert_eq!(
            effective_identity(&lookup, &front_end, Some(ALICE))
                .await
                .unwrap(),
            Identity {
                user: ALICE.into(),
                delegated_by: Some(FRONT_END.into())
            }
        );
        let bob = effective_identity(&lookup, &front_end, Some("user:default/bob"))
            .await
            .unwrap();
        assert_eq!((bob.user.as_str(), bob.delegated_by), (FRONT_END, None));
    }

    #[tokio::test]
    async fn no_claim_or_ones_own_name_is_oneself_and_others_may_not_claim() {
        let lookup = MemoryLookup::default().with_impersonator(FRONT_END, ALICE);
        for claim in [None, Some(""), Some(FRONT_END)] {
            let me = effective_identity(&lookup, &caller(FRONT_END), claim)
                .await
                .unwrap();
            assert_eq!((me.user.as_str(), me.delegated_by), (FRONT_END, None));
        }
        // Only the front end holds the grant: a consumer naming alice is the consumer.
        let consumer = effective_identity(&lookup, &caller("consumer"), Some(ALICE))
            .await
            .unwrap();
        assert_eq!(
            (consumer.user.as_str(), consumer.delegated_by),
            ("consumer", None)
        );
    }

    #[test]
    fn the_annotation_is_stamped_restored_or_removed() {
        let mut key: APIKey = serde_json::from_value(serde_json::json!({
            "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
            "metadata": {"name": "k", "namespace": "team"},
            "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold"}
        }))
        .unwrap();
        assert_eq!(annotation_patch(&key, None), None);
        let stamp = annotation_patch(&key, Some(FRONT_END)).unwrap();
        assert_eq!(
            serde_json::to_value(&stamp).unwrap(),
            serde_json::json!({"op": "add", "path": "/metadata/annotations",
                               "value": {REQUESTED_VIA_ANNOTATION: FRONT_END}})
        );
        key.metadata.annotations =
            Some([(REQUESTED_VIA_ANNOTATION.to_string(), "forged".to_string())].into());
        let restore = annotation_patch(&key, Some(FRONT_END)).unwrap();
        assert_eq!(
            serde_json::to_value(&restore).unwrap(),
            serde_json::json!({"op": "add",
                               "path": "/metadata/annotations/devportal.kuadrant.io~1requested-via",
                               "value": FRONT_END})
        );
        let remove = annotation_patch(&key, None).unwrap();
        assert_eq!(
            serde_json::to_value(&remove).unwrap(),
            serde_json::json!({"op": "remove",
                               "path": "/metadata/annotations/devportal.kuadrant.io~1requested-via"})
        );
    }
}
