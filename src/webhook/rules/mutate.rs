//! The mutating webhook for APIKeys: [`mutate_key`] stamps `spec.requestedBy` from the request's
//! user (and e-mail, when the authenticator provides one), or keeps the user a trusted front end
//! names (and its e-mail) with the front end in an annotation, and adds the controller's finalizer
//! at CREATE, records an automatic product's approval in a key created without one, and stamps
//! `approval.reviewedBy`/`reviewedAt` (to the microsecond, strictly after the review it replaces:
//! [`crate::review_order`]) and what was reviewed (`productUID` of the product as it is now,
//! `planTier` of the key) on every approval write, and records a withdrawn review
//! ([`review_withdrawal`]). At CREATE it also marks whether the e-mail came from the requester's
//! identity ([`super::email`]) and, when a maximum key lifetime is configured, gives a key without
//! `expiresAt` one at that distance.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation, RemoveOperation};
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::Timestamp;

use super::delegation::{annotation_patch, effective_identity, requested_via};
use super::email::{self, Source};
use super::expiry;
use super::review_withdrawal;
use super::{Change, Limits, Reason, Verdict, lookup_failed};
use crate::names::{
    AUTOMATIC_REVIEWER, EMAIL_VERIFIED_ANNOTATION, FINALIZER, REQUESTED_VIA_ANNOTATION,
};
use crate::resources::{APIKey, Approval, ApprovalMode, RequestedBy};
use crate::webhook::lookup::{Lookup, Read};

/// The e-mail address the authenticator put into `userInfo.extra`, if any: the first value under a
/// key named `email` or ending in `/email` (`example.com/email`).
pub fn email_from_extra(user: &UserInfo) -> Option<&str> {
    user.extra
        .as_ref()?
        .iter()
        .find(|(k, _)| *k == "email" || k.ends_with("/email"))
        .and_then(|(_, values)| values.first())
        .map(String::as_str)
        .filter(|v| !v.is_empty())
}

fn add(path: &[&str], value: serde_json::Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

/// The uid of the product `key` references as it is now (a live read), if it exists.
async fn reviewed_product_uid<C: Lookup>(
    lookup: &C,
    key: &APIKey,
) -> Result<Option<String>, Verdict> {
    let Some(namespace) = key.product_namespace() else {
        return Ok(None);
    };
    let name = &key.spec.api_product_ref.name;
    let product = lookup
        .product(namespace, name, Read::Live)
        .await
        .map_err(|e| lookup_failed(&format!("APIProduct {namespace}/{name}"), e))?;
    Ok(product.and_then(|p| p.metadata.uid.clone()))
}

/// The approval to record in a key created without one, when its product (read from the watch
/// cache) approves keys automatically: [`Approval::automatic`], bound to the product's uid and the
/// key's tier. A key sent with an approval is a review, stamped by [`stamp_approval`] instead.
async fn automatic_approval<C: Lookup>(
    lookup: &C,
    key: &APIKey,
    now: Timestamp,
) -> Result<Option<serde_json::Value>, Verdict> {
    let Some(namespace) = key
        .product_namespace()
        .filter(|_| key.spec.approval.is_none())
    else {
        return Ok(None);
    };
    let name = &key.spec.api_product_ref.name;
    let product = lookup
        .product(namespace, name, Read::Cached)
        .await
        .map_err(|e| lookup_failed(&format!("APIProduct {namespace}/{name}"), e))?;
    Ok(product
        .filter(|p| p.spec.approval_mode == ApprovalMode::Automatic)
        .map(|p| {
            let approval = Approval::automatic(
                namespace,
                name,
                p.metadata.uid.clone(),
                &key.spec.plan_tier,
                MicroTime(crate::review_order::truncate(now)),
            );
            serde_json::to_value(approval).unwrap_or_default()
        }))
}

/// The stamps of an approval write (none without one): who, when, and what was reviewed. A
/// `planTier` or `productUID` the client set in this very request (one the stored approval did
/// not already have) is the reviewer's statement of what they read; if the key or the product has
/// changed since, the write is refused rather than binding the approval to something not
/// reviewed.
async fn stamp_approval<C: Lookup>(
    lookup: &C,
    change: Change<'_, APIKey>,
    username: &str,
    now: Timestamp,
) -> Result<Vec<PatchOperation>, Verdict> {
    let key = change.new_object();
    let sent = key.spec.approval.as_ref();
    let before = match &change {
        Change::Update { old, .. } => old.spec.approval.as_ref(),
        Change::Create(_) => None,
    };
    if !approval_written(change.clone()) {
        return Ok(Vec::new());
    }
    let asserted = |field: fn(&Approval) -> Option<&String>| {
        sent.and_then(field)
            .filter(|value| before.and_then(field) != Some(*value))
    };
    let tier = &key.spec.plan_tier;
    if let Some(reviewed) = asserted(|a| a.plan_tier.as_ref())
        && reviewed != tier
    {
        return Err(Verdict::deny(
            Reason::ReviewOutdated,
            format!(
                "spec.approval.planTier {reviewed:?} is the tier you reviewed, and the key now asks \
                 for {tier:?}: read the request again before approving it"
            ),
        ));
    }
    let uid = reviewed_product_uid(lookup, key).await?;
    if let Some(reviewed) = asserted(|a| a.product_uid.as_ref())
        && Some(reviewed) != uid.as_ref()
    {
        return Err(Verdict::deny(
            Reason::ReviewOutdated,
            format!(
                "spec.approval.productUID {reviewed:?} is not the uid of the APIProduct the key \
                 references now ({}): it was deleted or re-created since you read it",
                uid.as_deref().unwrap_or("none")
            ),
        ));
    }
    // Strictly after the review it replaces and any withdrawal of the key's review.
    let at = crate::review_order::stamp(
        now,
        before
            .and_then(|a| a.reviewed_at.as_ref())
            .map(|t| t.0)
            .into_iter()
            .chain(review_withdrawal::withdrawn_at(&change)),
    );
    let mut stamps = vec![
        add(
            &["spec", "approval", "reviewedBy"],
            serde_json::Value::String(username.into()),
        ),
        add(
            &["spec", "approval", "reviewedAt"],
            serde_json::to_value(MicroTime(at)).unwrap_or_default(),
        ),
        add(
            &["spec", "approval", "planTier"],
            serde_json::Value::String(tier.clone()),
        ),
    ];
    match uid {
        Some(uid) => stamps.push(add(
            &["spec", "approval", "productUID"],
            serde_json::Value::String(uid),
        )),
        None if sent.is_some_and(|a| a.product_uid.is_some()) => {
            stamps.push(PatchOperation::Remove(RemoveOperation {
                path: PointerBuf::from_tokens(["spec", "approval", "productUID"]),
            }));
        }
        None => {}
    }
    Ok(stamps)
}

fn approval_written(change: Change<'_, APIKey>) -> bool {
    match change {
        Change::Create(key) => key.spec.approval.is_some(),
        Change::Update { old, new } => {
            new.spec.approval.is_some() && new.spec.approval != old.spec.approval
        }
    }
}

/// The mutating webhook for APIKeys: stamps `spec.requestedBy` on CREATE (the caller, or the user
/// a trusted front end acts for, see [`super::delegation`]) and
/// `approval.reviewedBy`/`reviewedAt`/`productUID`/`planTier` on every approval write (whatever
/// the client sent there is overwritten, except the controller's record of an automatic
/// approval), and keeps the requested-via annotation what devportal made it. `productUID` is read
/// live; when the product does not exist it is removed, and the validating webhook refuses such an
/// approval.
pub async fn mutate_key<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    change: Change<'_, APIKey>,
    user: &UserInfo,
    now: Timestamp,
) -> Verdict {
    let Some(username) = user.username.as_deref().filter(|u| !u.is_empty()) else {
        // Nothing to stamp with; validation denies the request.
        return Verdict::allow(Reason::Unchanged);
    };
    let key = change.new_object();
    let mut verdict = Verdict::allow(Reason::Unchanged);

    if let Change::Create(_) = change {
        let sent = key.spec.requested_by.as_ref();
        let identity = match effective_identity(lookup, user, sent.map(|r| r.user_id.as_str()))
            .await
        {
            Ok(identity) => identity,
            Err(e) => return lookup_failed("impersonation permissions (SubjectAccessReview)", e),
        };
        let client_email = sent.and_then(|r| r.email.as_deref());
        let (email, source) = match (email_from_extra(user), client_email) {
            // A trusted front end's user: the e-mail is the user's, as the front end gives it
            // (the front end's own identity has none of theirs).
            _ if identity.delegated_by.is_some() => (client_email, Source::Identity),
            (Some(authenticated), Some(client)) if authenticated != client => {
                verdict.warnings.push(format!(
                    "spec.requestedBy.email {client:?} was replaced with {authenticated:?} from your identity"
                ));
                (Some(authenticated), Source::Identity)
            }
            (Some(authenticated), _) => (Some(authenticated), Source::Identity),
            (None, client) => (client, Source::Client),
        };
        let verified = email::verified_value(email, source);
        if let (Some(email), Some("false")) = (email, verified) {
            verdict.warnings.push(format!(
                "spec.requestedBy.email {email:?} is shown to reviewers as unverified \
                 ({EMAIL_VERIFIED_ANNOTATION}=false): your identity carries no e-mail address"
            ));
        }
        if let Some(client) = sent.map(|r| r.user_id.as_str())
            && client != identity.user
        {
            verdict.warnings.push(format!(
                "spec.requestedBy.userId {client:?} was replaced with your username {username:?}: \
                 only a front end that may impersonate {client:?} may request keys for them"
            ));
        }
        let stamped = RequestedBy {
            user_id: identity.user.clone(),
            email: email.map(str::to_string),
        };
        if sent != Some(&stamped) {
            let value = serde_json::to_value(&stamped).unwrap_or_default();
            verdict.patch.push(add(&["spec", "requestedBy"], value));
        }
        if let Some(stamp) = annotation_patch(key, identity.delegated_by.as_deref()) {
            if identity.delegated_by.is_none() {
                verdict.warnings.push(format!(
                    "annotation {REQUESTED_VIA_ANNOTATION} was removed: devportal sets it when a \
                     front end acts for a user it may impersonate"
                ));
            }
            verdict.patch.push(stamp);
        }
        if let Some(mark) = email::verified_patch(key, verified, &verdict.patch) {
            verdict.patch.push(mark);
        }
        // The limits in force for this key: the flags, tightened by APIKeyPolicies.
        let effective = match super::policy::judge_cached(lookup, limits, key, now).await {
            Ok(judged) => judged.effective,
            Err(denial) => return denial,
        };
        let lifetime = effective.max_lifetime.as_ref();
        if let Some(expiry) = expiry::default_for(key, lifetime.map(|l| l.value), now)
            && let Some(lifetime) = lifetime
        {
            verdict.warnings.push(format!(
                "spec.expiresAt was set to {expiry}: keys here live at most {} ({}); request a \
                 new key before then",
                expiry::lifetime_text(lifetime.value),
                lifetime.source("--max-key-lifetime")
            ));
            let value = serde_json::to_value(Time(expiry)).unwrap_or_default();
            verdict.patch.push(add(&["spec", "expiresAt"], value));
        }
        // An automatic product's approval, recorded at birth so the controller does not spend
        // a write (and this webhook a second review) on it — unless an APIKeyPolicy wants an
        // owner to approve the key.
        match &effective.manual_approval {
            Some(policy) => {
                if matches!(automatic_approval(lookup, key, now).await, Ok(Some(_))) {
                    verdict.warnings.push(format!(
                        "the key waits for an owner's approval: APIKeyPolicy {policy:?} (rule \
                         {}) requires one, even though the product approves automatically",
                        crate::policy::RuleName::ManualApproval
                    ));
                }
            }
            None => match automatic_approval(lookup, key, now).await {
                Ok(Some(approval)) => verdict.patch.push(add(&["spec", "approval"], approval)),
                Ok(None) => {}
                Err(denial) => return denial,
            },
        }
        // The controller's finalizer, set at birth so the controller does not spend a write on it.
        let finalizers = key.metadata.finalizers.as_deref().unwrap_or_default();
        if !finalizers.iter().any(|f| f == FINALIZER) {
            verdict.patch.push(if key.metadata.finalizers.is_none() {
                add(&["metadata", "finalizers"], serde_json::json!([FINALIZER]))
            } else {
                add(&["metadata", "finalizers", "-"], FINALIZER.into())
            });
        }
    }

    if let Change::Update { old, new } = change
        && let Some(restore) = annotation_patch(new, requested_via(old))
    {
        verdict.warnings.push(format!(
            "annotation {REQUESTED_VIA_ANNOTATION} was restored: it records the front end that \
             requested the key and only devportal writes it"
        ));
        verdict.patch.push(restore);
    }
    if let Change::Update { old, new } = change
        && let Some(restore) =
            email::verified_patch(new, email::verified_annotation(old), &verdict.patch)
    {
        verdict.warnings.push(format!(
            "annotation {EMAIL_VERIFIED_ANNOTATION} was restored: it records whether the \
             requester's e-mail came from their identity, and only devportal writes it"
        ));
        verdict.patch.push(restore);
    }

    // The controller records automatic approvals under their own reviewer name; anyone else's
    // approval is stamped with their username.
    let reviewer = match key.spec.approval.as_ref() {
        Some(a)
            if username == limits.controller_username
                && a.reviewed_by.as_deref() == Some(AUTOMATIC_REVIEWER) =>
        {
            AUTOMATIC_REVIEWER
        }
        _ => username,
    };
    match stamp_approval(lookup, change.clone(), reviewer, now).await {
        Ok(stamps) => verdict.patch.extend(stamps),
        Err(denial) => return denial,
    }
    if let Some((stamp, warnings)) = review_withdrawal::patch(&change, now) {
        review_withdrawal::merge_into(&mut verdict.patch, stamp);
        verdict.warnings.extend(warnings);
    }

    if !verdict.patch.is_empty() {
        verdict.reason = Reason::Mutated;
    }
    verdict
}
