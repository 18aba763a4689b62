//! The admission rules (docs/webhook.md#endpoints lists what each endpoint enforces), as pure functions of the
//! change, the requesting user, the clock and a [`Lookup`](super::lookup::Lookup).
//!
//! This module holds what every rule shares: the [`Change`] under review, the [`Limits`] from the
//! command line, the bounded [`Reason`] of every answer (with its HTTP status and metric label)
//! and the [`Verdict`]. The rules themselves live in one room per webhook:
//!
//! - [`mutate`]: the mutating webhook for APIKeys (requester, reviewer, finalizer);
//! - [`apikey`]: the validating webhook for APIKeys (the key limit in [`key_limit`]);
//! - [`apiproduct`]: the validating webhook for APIProducts;
//! - [`apikeyrequest`]: the validating webhook for APIKeyRequests (only the controller writes them);
//! - [`delegation`]: whom a trusted front end may name as the user it acts for;
//! - [`automatic`]: the controller's record of an automatic approval;
//! - [`approval`]: the mutating and validating webhooks for APIKeyApprovals, and the controller's
//!   writes of approvals onto APIKeys;
//! - [`rotation`]: who may ask for a key's rotation, and for which keys;
//! - [`review_withdrawal`]: the record of a key's review being cleared, which only devportal
//!   writes;
//! - [`expiry`]: a key's expiry under the maximum lifetime;
//! - [`policy`]: the APIKeyPolicies that concern a key, the limits in force, and their verdict;
//! - [`email`]: the requester's e-mail and whether it is verified.
//!
//! Nothing here speaks HTTP or JSON framing; [`super::review`] turns AdmissionReviews into calls to
//! these functions and their [`Verdict`]s back into AdmissionReviews.

pub mod apikey;
pub mod apikeyrequest;
pub mod apiproduct;
pub mod approval;
pub mod automatic;
pub mod delegation;
pub mod email;
pub mod expiry;
pub mod guarded_metadata;
pub mod key_limit;
pub mod mutate;
pub mod policy;
mod re_review;
pub mod review_withdrawal;
pub mod rotation;

use std::time::Duration;

use json_patch::PatchOperation;

use crate::key_limit::KeyLimitArgs;

/// Limits the webhook enforces, from the command line.
#[derive(Clone, Debug)]
pub struct Limits {
    /// At most this many keys per requester per product that are or can become live.
    pub max_keys_per_user_per_product: usize,
    /// How long an expired key keeps counting toward that limit.
    pub expired_key_grace: Duration,
    /// `expiresAt` may lie at most this far in the future, and a key created without one gets
    /// one this far away; zero: no maximum.
    pub max_key_lifetime: Duration,
    /// The controller's user name: the one identity that removes devportal's finalizer.
    pub controller_username: String,
}

impl Limits {
    /// The maximum key lifetime, if there is one.
    pub fn max_lifetime(&self) -> Option<Duration> {
        (!self.max_key_lifetime.is_zero()).then_some(self.max_key_lifetime)
    }

    /// The flags as the defaults APIKeyPolicies tighten (the webhook does not see brought keys'
    /// values: their length is the controller's to check).
    pub fn policy_defaults(&self) -> crate::policy::Defaults {
        crate::policy::Defaults {
            max_keys: self.max_keys_per_user_per_product,
            max_lifetime: self.max_lifetime(),
            min_own_key_length: 0,
        }
    }

    /// The key limit, as the controller applies it too.
    pub fn key_limit(&self) -> KeyLimitArgs {
        KeyLimitArgs {
            max_keys_per_user_per_product: self.max_keys_per_user_per_product,
            expired_key_grace: self.expired_key_grace,
            max_key_lifetime: self.max_key_lifetime,
        }
    }
}

/// What is being admitted: a new object, or an old one and its replacement.
#[derive(Clone, Copy, Debug)]
pub enum Change<'a, T> {
    /// CREATE.
    Create(&'a T),
    /// UPDATE.
    Update {
        /// The stored object.
        old: &'a T,
        /// The object as it would be stored.
        new: &'a T,
    },
}

impl<'a, T> Change<'a, T> {
    /// The object as it would be stored.
    pub fn new_object(&self) -> &'a T {
        match self {
            Change::Create(new) | Change::Update { new, .. } => new,
        }
    }
}

/// Why a request was allowed or denied: a bounded set, usable as a metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Allowed after every check.
    Allowed,
    /// Allowed with a patch (mutating webhook).
    Mutated,
    /// Allowed: only metadata (or nothing the webhook checks) changed.
    Unchanged,
    /// Allowed: an operation or subresource the webhook does not police.
    NotApplicable,
    /// The AdmissionReview itself was malformed.
    BadRequest,
    /// The AdmissionReview was larger than the configured cap.
    TooLarge,
    /// A lookup failed (API server unreachable, for example).
    LookupFailed,
    /// The request carried no username.
    NoUser,
    /// `spec.requestedBy` does not name the requester.
    RequesterMismatch,
    /// `spec.requestedBy.email` is not an e-mail address.
    InvalidEmail,
    /// `spec.requestedBy` changed after CREATE.
    RequestedByImmutable,
    /// The referenced APIProduct does not exist.
    ProductNotFound,
    /// The referenced APIProduct is a Draft and the user does not own it.
    ProductNotPublished,
    /// The product has no discovered plans.
    NoPlans,
    /// `planTier` is not one of the product's tiers.
    UnknownTier,
    /// The user may not approve keys for the product.
    NotApprover,
    /// `approval.reviewedBy` is not the reviewer.
    ReviewerMismatch,
    /// The tier or product an approval says it reviewed is no longer the key's.
    ReviewOutdated,
    /// A restricted field changed on a key that is no longer Pending.
    NotPending,
    /// Someone other than the requester (or an admin) changed a request field.
    NotRequester,
    /// `expiresAt` is not in the future.
    ExpiresInPast,
    /// `expiresAt` is beyond the maximum lifetime.
    ExpiresTooLate,
    /// The key limit per requester and product.
    TooManyKeys,
    /// The product's HTTPRoute does not exist.
    RouteNotFound,
    /// The product's HTTPRoute is not marked as exposed.
    RouteNotExposed,
    /// The APIKeyRequest an APIKeyApproval refers to does not exist.
    RequestNotFound,
    /// An UPDATE of an APIKeyApproval's request reference, or of devportal's review annotations
    /// other than with a new review.
    ApprovalImmutable,
    /// Someone other than the controller (or an admin) removed devportal's finalizer, or someone
    /// other than the requester, an admin or the controller changed `ownerReferences`.
    GuardedMetadata,
    /// A rotation request (annotation) with a malformed token, or on a key whose value comes from
    /// the consumer's own Secret.
    BadRotationRequest,
    /// Someone other than the controller (or an admin) created an APIKeyRequest or changed what
    /// it mirrors of its APIKey.
    NotController,
    /// A review (a new APIKeyApproval or a changed decision) of a request whose key has expired:
    /// nothing can change it any more.
    RequestExpired,
    /// A rule of an APIKeyPolicy with action `Deny` (the message names the policy and the rule).
    PolicyViolation,
}

impl Reason {
    /// A short label, such as `too_many_keys`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::Mutated => "mutated",
            Reason::Unchanged => "unchanged",
            Reason::NotApplicable => "not_applicable",
            Reason::BadRequest => "bad_request",
            Reason::TooLarge => "too_large",
            Reason::LookupFailed => "lookup_failed",
            Reason::NoUser => "no_user",
            Reason::RequesterMismatch => "requester_mismatch",
            Reason::InvalidEmail => "invalid_email",
            Reason::RequestedByImmutable => "requested_by_immutable",
            Reason::ProductNotFound => "product_not_found",
            Reason::ProductNotPublished => "product_not_published",
            Reason::NoPlans => "no_plans",
            Reason::UnknownTier => "unknown_tier",
            Reason::NotApprover => "not_approver",
            Reason::ReviewerMismatch => "reviewer_mismatch",
            Reason::ReviewOutdated => "review_outdated",
            Reason::NotPending => "not_pending",
            Reason::NotRequester => "not_requester",
            Reason::ExpiresInPast => "expires_in_past",
            Reason::ExpiresTooLate => "expires_too_late",
            Reason::TooManyKeys => "too_many_keys",
            Reason::RouteNotFound => "route_not_found",
            Reason::RouteNotExposed => "route_not_exposed",
            Reason::GuardedMetadata => "guarded_metadata",
            Reason::RequestNotFound => "request_not_found",
            Reason::ApprovalImmutable => "approval_immutable",
            Reason::BadRotationRequest => "bad_rotation_request",
            Reason::NotController => "not_controller",
            Reason::RequestExpired => "request_expired",
            Reason::PolicyViolation => "policy_violation",
        }
    }

    /// Whether the request is admitted.
    pub fn allows(self) -> bool {
        matches!(
            self,
            Reason::Allowed | Reason::Mutated | Reason::Unchanged | Reason::NotApplicable
        )
    }

    /// The HTTP-style code and Kubernetes `Status.reason` of a denial.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Reason::BadRequest | Reason::NoUser => (400, "BadRequest"),
            Reason::ReviewOutdated => (409, "Conflict"),
            Reason::TooLarge => (413, "RequestEntityTooLarge"),
            Reason::LookupFailed => (500, "InternalError"),
            Reason::NotApprover
            | Reason::NotRequester
            | Reason::ProductNotPublished
            | Reason::TooManyKeys
            | Reason::RequesterMismatch
            | Reason::ReviewerMismatch
            | Reason::GuardedMetadata
            | Reason::NotController
            | Reason::PolicyViolation => (403, "Forbidden"),
            _ => (422, "Invalid"),
        }
    }
}

/// The outcome of one decision.
#[derive(Clone, Debug, PartialEq)]
pub struct Verdict {
    /// Why.
    pub reason: Reason,
    /// For a denial, what the user reads.
    pub message: String,
    /// JSON Patch operations (mutating webhook only).
    pub patch: Vec<PatchOperation>,
    /// Admission warnings kubectl prints.
    pub warnings: Vec<String>,
}

impl Verdict {
    /// An admission with no patch.
    pub fn allow(reason: Reason) -> Self {
        Verdict {
            reason,
            message: String::new(),
            patch: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// A denial.
    pub fn deny(reason: Reason, message: impl Into<String>) -> Self {
        Verdict {
            message: message.into(),
            ..Verdict::allow(reason)
        }
    }

    /// Whether the request is admitted.
    pub fn allowed(&self) -> bool {
        self.reason.allows()
    }
}

/// A denial on its way out of a check.
type Checked<T = ()> = Result<T, Verdict>;

fn lookup_failed(what: &str, err: crate::Error) -> Verdict {
    Verdict::deny(
        Reason::LookupFailed,
        format!("devportal could not look up {what}: {err}; try again"),
    )
}
