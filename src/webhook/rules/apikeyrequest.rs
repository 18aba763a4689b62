//! The validating webhook for APIKeyRequests: [`validate_request`].
//!
//! An APIKeyRequest is the owner's view of one APIKey, kept by the controller in the product's
//! namespace; owners review what it says. Whoever else could create one, or change its spec or
//! the marks that tie it to its key and say whether the requester's e-mail is verified, could
//! show reviewers a request nobody made. So only the controller's identity (and API admins,
//! who may do anything devportal does) create them or change those; everyone else may change
//! only other metadata (labels, annotations, finalizers of their own).

use k8s_openapi::api::authentication::v1::UserInfo;
use kube::ResourceExt;

use super::{Change, Limits, Reason, Verdict, lookup_failed};
use crate::names::{APIKEY_ANNOTATION, APIKEY_UID_LABEL, EMAIL_VERIFIED_ANNOTATION, GROUP};
use crate::resources::{APIKeyRequest, APIKeyRequestSpec};
use crate::webhook::lookup::Lookup;

/// The parts of a request only the controller writes: its spec, the label and annotation naming
/// its APIKey, and whether the e-mail is verified.
type Mirrored<'a> = (
    &'a APIKeyRequestSpec,
    Option<&'a str>,
    Option<&'a str>,
    Option<&'a str>,
);

fn mirrored(request: &APIKeyRequest) -> Mirrored<'_> {
    let label = |name: &str| request.labels().get(name).map(String::as_str);
    let annotation = |name: &str| request.annotations().get(name).map(String::as_str);
    (
        &request.spec,
        label(APIKEY_UID_LABEL),
        annotation(APIKEY_ANNOTATION),
        annotation(EMAIL_VERIFIED_ANNOTATION),
    )
}

/// Whether `change` writes what only the controller writes.
pub fn writes_mirror(change: &Change<'_, APIKeyRequest>) -> bool {
    match change {
        Change::Create(_) => true,
        Change::Update { old, new } => mirrored(old) != mirrored(new),
    }
}

/// The validating webhook for APIKeyRequests: the controller's identity and API admins (who may
/// `approve` every product) may create them and change what they mirror; nobody else.
pub async fn validate_request<C: Lookup>(
    lookup: &C,
    limits: &Limits,
    change: Change<'_, APIKeyRequest>,
    user: &UserInfo,
) -> Verdict {
    let Some(username) = user.username.as_deref().filter(|u| !u.is_empty()) else {
        return Verdict::deny(Reason::NoUser, "the request carries no username");
    };
    if username == limits.controller_username {
        return Verdict::allow(Reason::Allowed);
    }
    if !writes_mirror(&change) {
        return Verdict::allow(Reason::Unchanged);
    }
    match lookup.may_approve(user, "", "").await {
        Ok(true) => Verdict::allow(Reason::Allowed),
        Ok(false) => {
            let what = match change {
                Change::Create(_) => "create APIKeyRequests".to_string(),
                Change::Update { new, .. } => format!(
                    "change the spec, the {APIKEY_UID_LABEL} label or the {APIKEY_ANNOTATION} \
                     and {EMAIL_VERIFIED_ANNOTATION} annotations of APIKeyRequest {}",
                    new.name_any()
                ),
            };
            Verdict::deny(
                Reason::NotController,
                format!(
                    "user {username:?} may not {what}: APIKeyRequests mirror APIKeys and only \
                     devportal's controller (or an API admin, with verb \"approve\" on every \
                     apiproducts.{GROUP}) writes them; request a key with an APIKey and review \
                     one with an APIKeyApproval"
                ),
            )
        }
        Err(e) => lookup_failed("admin permissions (SubjectAccessReview)", e),
    }
}
