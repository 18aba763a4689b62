//! The admission decisions: DESIGN.md's "Invariants enforced at admission", as pure functions of
//! the change, the requesting user, the clock and a [`Lookup`].
//!
//! Nothing here speaks HTTP or JSON framing; [`super::review`] turns AdmissionReviews into calls to
//! these functions and their [`Verdict`]s back into AdmissionReviews.

use std::time::Duration;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, PatchOperation};
use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::{SignedDuration, Timestamp};

use super::lookup::{Lookup, Read};
use crate::names::{EXPOSED_ANNOTATION, FINALIZER};
use crate::resources::{
    APIKey, APIKeyPhase, APIKeySpec, APIProduct, GROUP, PublishStatus, RequestedBy,
};

/// Limits the webhook enforces, from the command line.
#[derive(Clone, Debug)]
pub struct Policy {
    /// At most this many live keys per requester per product.
    pub max_keys_per_user_per_product: usize,
    /// `expiresAt` may lie at most this far in the future.
    pub max_key_lifetime: Duration,
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
    /// A restricted field changed on a key that is no longer Pending.
    NotPending,
    /// Someone other than the requester (or an owner/admin) changed a restricted field.
    NotRequester,
    /// `expiresAt` is not in the future.
    ExpiresInPast,
    /// `expiresAt` is beyond the maximum lifetime.
    ExpiresTooLate,
    /// The live-keys guardrail.
    TooManyKeys,
    /// The product's HTTPRoute does not exist.
    RouteNotFound,
    /// The product's HTTPRoute is not marked as exposed.
    RouteNotExposed,
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
            Reason::NotPending => "not_pending",
            Reason::NotRequester => "not_requester",
            Reason::ExpiresInPast => "expires_in_past",
            Reason::ExpiresTooLate => "expires_too_late",
            Reason::TooManyKeys => "too_many_keys",
            Reason::RouteNotFound => "route_not_found",
            Reason::RouteNotExposed => "route_not_exposed",
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
            Reason::TooLarge => (413, "RequestEntityTooLarge"),
            Reason::LookupFailed => (500, "InternalError"),
            Reason::NotApprover
            | Reason::NotRequester
            | Reason::ProductNotPublished
            | Reason::TooManyKeys
            | Reason::RequesterMismatch
            | Reason::ReviewerMismatch => (403, "Forbidden"),
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

// ---------------------------------------------------------------------------------------------
// Mutating: APIKey CREATE and UPDATE.

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

/// Whether `s` looks like an e-mail address: one `@`, a non-empty local part, a dotted domain,
/// no whitespace or control characters, at most 254 bytes.
pub fn plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    s.len() <= 254
        && !local.is_empty()
        && local.len() <= 64
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
        && !s
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || "<>()[],;:\\\"".contains(c))
}

fn add(path: &[&str], value: serde_json::Value) -> PatchOperation {
    PatchOperation::Add(AddOperation {
        path: PointerBuf::from_tokens(path.iter().copied()),
        value,
    })
}

fn approval_written(change: Change<'_, APIKey>) -> bool {
    match change {
        Change::Create(key) => key.spec.approval.is_some(),
        Change::Update { old, new } => {
            new.spec.approval.is_some() && new.spec.approval != old.spec.approval
        }
    }
}

/// The mutating webhook for APIKeys: stamps `spec.requestedBy` on CREATE and
/// `approval.reviewedBy`/`reviewedAt` on every approval write.
pub fn mutate_key(change: Change<'_, APIKey>, user: &UserInfo, now: Timestamp) -> Verdict {
    let Some(username) = user.username.as_deref().filter(|u| !u.is_empty()) else {
        // Nothing to stamp with; validation denies the request.
        return Verdict::allow(Reason::Unchanged);
    };
    let key = change.new_object();
    let mut verdict = Verdict::allow(Reason::Unchanged);

    if let Change::Create(_) = change {
        let sent = key.spec.requested_by.as_ref();
        let email = match (
            email_from_extra(user),
            sent.and_then(|r| r.email.as_deref()),
        ) {
            (Some(authenticated), Some(client)) if authenticated != client => {
                verdict.warnings.push(format!(
                    "spec.requestedBy.email {client:?} was replaced with {authenticated:?} from your identity"
                ));
                Some(authenticated)
            }
            (Some(authenticated), _) => Some(authenticated),
            (None, client) => client,
        };
        if let Some(client) = sent.map(|r| r.user_id.as_str())
            && client != username
        {
            verdict.warnings.push(format!(
                "spec.requestedBy.userId {client:?} was replaced with your username {username:?}"
            ));
        }
        let stamped = RequestedBy {
            user_id: username.into(),
            email: email.map(str::to_string),
        };
        if sent != Some(&stamped) {
            let value = serde_json::to_value(&stamped).unwrap_or_default();
            verdict.patch.push(add(&["spec", "requestedBy"], value));
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

    if approval_written(change) {
        verdict.patch.push(add(
            &["spec", "approval", "reviewedBy"],
            serde_json::Value::String(username.into()),
        ));
        let at = serde_json::to_value(Time(now)).unwrap_or_default();
        verdict
            .patch
            .push(add(&["spec", "approval", "reviewedAt"], at));
    }

    if !verdict.patch.is_empty() {
        verdict.reason = Reason::Mutated;
    }
    verdict
}

// ---------------------------------------------------------------------------------------------
// Validating: APIKey CREATE and UPDATE.

/// Answers "may this user approve that product?" at most once per product per request.
struct Approvers<'a, C> {
    lookup: &'a C,
    user: &'a UserInfo,
    known: Vec<(String, String, bool)>,
}

impl<C: Lookup> Approvers<'_, C> {
    async fn may(&mut self, namespace: &str, product: &str) -> Checked<bool> {
        if let Some((_, _, allowed)) = self
            .known
            .iter()
            .find(|(ns, name, _)| ns == namespace && name == product)
        {
            return Ok(*allowed);
        }
        let allowed = self
            .lookup
            .may_approve(self.user, namespace, product)
            .await
            .map_err(|e| lookup_failed("approval permissions (SubjectAccessReview)", e))?;
        self.known.push((namespace.into(), product.into(), allowed));
        Ok(allowed)
    }
}

/// The namespace and name of the product a key references.
fn product_of(key: &APIKey) -> Checked<(&str, &str)> {
    let namespace = key.product_namespace().ok_or_else(|| {
        Verdict::deny(
            Reason::BadRequest,
            "the APIKey has no namespace and spec.apiProductRef.namespace is empty",
        )
    })?;
    Ok((namespace, key.spec.api_product_ref.name.as_str()))
}

fn is_pending(key: &APIKey) -> bool {
    key.spec.approval.is_none()
        && matches!(
            key.status.as_ref().and_then(|s| s.phase),
            None | Some(APIKeyPhase::Pending)
        )
}

/// The requester-editable fields that differ between `old` and `new`, by their field path.
fn changed_request_fields(old: &APIKeySpec, new: &APIKeySpec) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.api_product_ref != new.api_product_ref {
        changed.push("spec.apiProductRef");
    }
    if old.plan_tier != new.plan_tier {
        changed.push("spec.planTier");
    }
    if old.use_case != new.use_case {
        changed.push("spec.useCase");
    }
    if old.expires_at != new.expires_at {
        changed.push("spec.expiresAt");
    }
    if old.secret_ref != new.secret_ref {
        changed.push("spec.secretRef");
    }
    changed
}

/// The product exists, is Published (or the user owns it) and offers the requested tier. A denial
/// based on the cached copy is confirmed with a live read first, so a product published or given
/// plans a moment ago is not refused on stale data.
async fn check_product<C: Lookup>(
    lookup: &C,
    approvers: &mut Approvers<'_, C>,
    namespace: &str,
    name: &str,
    tier: &str,
) -> Checked {
    let cached = product_checks(lookup, approvers, namespace, name, tier, Read::Cached).await;
    match cached {
        Err(Verdict {
            reason: Reason::ProductNotPublished | Reason::NoPlans | Reason::UnknownTier,
            ..
        }) => product_checks(lookup, approvers, namespace, name, tier, Read::Live).await,
        other => other,
    }
}

async fn product_checks<C: Lookup>(
    lookup: &C,
    approvers: &mut Approvers<'_, C>,
    namespace: &str,
    name: &str,
    tier: &str,
    read: Read,
) -> Checked {
    let product = lookup
        .product(namespace, name, read)
        .await
        .map_err(|e| lookup_failed(&format!("APIProduct {namespace}/{name}"), e))?
        .ok_or_else(|| {
            Verdict::deny(
                Reason::ProductNotFound,
                format!(
                    "APIProduct {name:?} not found in namespace {namespace:?}: set spec.apiProductRef \
                     to a product listed by `kubectl get apiproducts -A`"
                ),
            )
        })?;
    if product.spec.publish_status != PublishStatus::Published
        && !approvers.may(namespace, name).await?
    {
        return Err(Verdict::deny(
            Reason::ProductNotPublished,
            format!(
                "APIProduct {namespace}/{name} is a Draft: only its owners and API admins may \
                 request keys until it is Published"
            ),
        ));
    }
    check_tier(&product, namespace, name, tier)
}

fn check_tier(product: &APIProduct, namespace: &str, name: &str, tier: &str) -> Checked {
    let plans = product
        .status
        .as_ref()
        .map(|s| s.discovered_plans.as_slice())
        .unwrap_or_default();
    if plans.is_empty() {
        return Err(Verdict::deny(
            Reason::NoPlans,
            format!(
                "APIProduct {namespace}/{name} offers no plan tiers yet (no PlanPolicy discovered for \
                 its route), so it accepts no key requests"
            ),
        ));
    }
    if plans.iter().any(|p| p.tier == tier) {
        return Ok(());
    }
    let tiers: Vec<_> = plans.iter().map(|p| p.tier.as_str()).collect();
    Err(Verdict::deny(
        Reason::UnknownTier,
        format!(
            "spec.planTier {tier:?} is not offered by APIProduct {namespace}/{name}; choose one of: {}",
            tiers.join(", ")
        ),
    ))
}

fn check_expiry(key: &APIKey, policy: &Policy, now: Timestamp) -> Checked {
    let Some(Time(expires)) = key.spec.expires_at else {
        return Ok(());
    };
    if expires <= now {
        return Err(Verdict::deny(
            Reason::ExpiresInPast,
            format!("spec.expiresAt {expires} is not in the future (now is {now})"),
        ));
    }
    let lifetime = SignedDuration::try_from(policy.max_key_lifetime).unwrap_or(SignedDuration::MAX);
    let latest = now.saturating_add(lifetime).unwrap_or(Timestamp::MAX);
    if expires > latest {
        return Err(Verdict::deny(
            Reason::ExpiresTooLate,
            format!(
                "spec.expiresAt {expires} is beyond the maximum key lifetime of {} days; choose a \
                 time no later than {latest}",
                policy.max_key_lifetime.as_secs() / 86_400
            ),
        ));
    }
    Ok(())
}

fn check_guardrail<C: Lookup>(
    lookup: &C,
    policy: &Policy,
    user: &str,
    namespace: &str,
    product: &str,
) -> Checked {
    let live = lookup.live_keys(user, namespace, product);
    if live >= policy.max_keys_per_user_per_product {
        return Err(Verdict::deny(
            Reason::TooManyKeys,
            format!(
                "user {user:?} already holds {live} live keys for APIProduct {namespace}/{product}, \
                 the maximum is {}: delete one you no longer need first",
                policy.max_keys_per_user_per_product
            ),
        ));
    }
    Ok(())
}

/// The approval, if written, comes from someone who may approve the product and names them.
async fn check_approval<C: Lookup>(
    approvers: &mut Approvers<'_, C>,
    change: Change<'_, APIKey>,
    username: &str,
) -> Checked {
    let written = match change {
        Change::Create(key) => key.spec.approval.is_some(),
        Change::Update { old, new } => new.spec.approval != old.spec.approval,
    };
    if !written {
        return Ok(());
    }
    let key = change.new_object();
    let (namespace, name) = product_of(key)?;
    if !approvers.may(namespace, name).await? {
        return Err(Verdict::deny(
            Reason::NotApprover,
            format!(
                "user {username:?} may not approve keys for APIProduct {namespace}/{name}: needs verb \
                 \"approve\" on apiproducts.{GROUP} {name:?} in namespace {namespace:?}"
            ),
        ));
    }
    if let Some(approval) = &key.spec.approval
        && approval.reviewed_by.as_deref() != Some(username)
    {
        return Err(Verdict::deny(
            Reason::ReviewerMismatch,
            format!(
                "spec.approval.reviewedBy must be the reviewer's own username {username:?}; \
                 devportal's mutating webhook stamps it"
            ),
        ));
    }
    Ok(())
}

/// The validating webhook for APIKeys.
pub async fn validate_key<C: Lookup>(
    lookup: &C,
    policy: &Policy,
    change: Change<'_, APIKey>,
    user: &UserInfo,
    now: Timestamp,
) -> Verdict {
    match validate_key_checked(lookup, policy, change, user, now).await {
        Ok(reason) => Verdict::allow(reason),
        Err(denial) => denial,
    }
}

async fn validate_key_checked<C: Lookup>(
    lookup: &C,
    policy: &Policy,
    change: Change<'_, APIKey>,
    user: &UserInfo,
    now: Timestamp,
) -> Checked<Reason> {
    let username = user
        .username
        .as_deref()
        .filter(|u| !u.is_empty())
        .ok_or_else(|| Verdict::deny(Reason::NoUser, "the request carries no username"))?;
    let mut approvers = Approvers {
        lookup,
        user,
        known: Vec::new(),
    };
    match change {
        Change::Create(key) => {
            let requested_by = key.spec.requested_by.as_ref();
            if requested_by.map(|r| r.user_id.as_str()) != Some(username) {
                return Err(Verdict::deny(
                    Reason::RequesterMismatch,
                    format!("spec.requestedBy.userId must be your own username {username:?}"),
                ));
            }
            if let Some(email) = requested_by.and_then(|r| r.email.as_deref())
                && !plausible_email(email)
            {
                return Err(Verdict::deny(
                    Reason::InvalidEmail,
                    format!(
                        "spec.requestedBy.email {email:?} is not an e-mail address (expected name@domain.example)"
                    ),
                ));
            }
            check_approval(&mut approvers, change, username).await?;
            let (namespace, name) = product_of(key)?;
            check_product(lookup, &mut approvers, namespace, name, &key.spec.plan_tier).await?;
            check_expiry(key, policy, now)?;
            check_guardrail(lookup, policy, username, namespace, name)?;
            Ok(Reason::Allowed)
        }
        Change::Update { old, new } => {
            if old.spec == new.spec {
                return Ok(Reason::Unchanged);
            }
            if old.spec.requested_by != new.spec.requested_by {
                return Err(Verdict::deny(
                    Reason::RequestedByImmutable,
                    "spec.requestedBy is immutable: it records who requested the key",
                ));
            }
            let changed = changed_request_fields(&old.spec, &new.spec);
            if !changed.is_empty() {
                if !is_pending(old) {
                    let phase = match &old.spec.approval {
                        Some(a) if a.approved => "approved",
                        Some(_) => "rejected",
                        None => old
                            .status
                            .as_ref()
                            .and_then(|s| s.phase)
                            .map_or("Pending", APIKeyPhase::as_str),
                    };
                    return Err(Verdict::deny(
                        Reason::NotPending,
                        format!(
                            "{} may change only while the key is Pending, and this key is {phase}: \
                             request a new APIKey instead",
                            changed.join(", ")
                        ),
                    ));
                }
                let requester = old
                    .spec
                    .requested_by
                    .as_ref()
                    .map(|r| r.user_id.as_str())
                    .unwrap_or_default();
                let (old_ns, old_name) = product_of(old)?;
                if username != requester && !approvers.may(old_ns, old_name).await? {
                    return Err(Verdict::deny(
                        Reason::NotRequester,
                        format!(
                            "only the requester {requester:?} or an owner of APIProduct \
                             {old_ns}/{old_name} may change {}",
                            changed.join(", ")
                        ),
                    ));
                }
                let (namespace, name) = product_of(new)?;
                let product_changed = old.spec.api_product_ref != new.spec.api_product_ref
                    || old.product_namespace() != new.product_namespace();
                if product_changed || old.spec.plan_tier != new.spec.plan_tier {
                    check_product(lookup, &mut approvers, namespace, name, &new.spec.plan_tier)
                        .await?;
                }
                if old.spec.expires_at != new.spec.expires_at {
                    check_expiry(new, policy, now)?;
                }
                if product_changed {
                    check_guardrail(lookup, policy, requester, namespace, name)?;
                }
            }
            check_approval(&mut approvers, change, username).await?;
            Ok(Reason::Allowed)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validating: APIProduct CREATE and UPDATE.

/// The validating webhook for APIProducts: `targetRef` names an existing, exposed HTTPRoute in the
/// product's namespace. Checked on CREATE and whenever `targetRef` changes.
pub async fn validate_product<C: Lookup>(lookup: &C, change: Change<'_, APIProduct>) -> Verdict {
    let product = change.new_object();
    if let Change::Update { old, new } = change
        && old.spec.target_ref == new.spec.target_ref
    {
        return Verdict::allow(Reason::Unchanged);
    }
    let Some(namespace) = product.metadata.namespace.as_deref() else {
        return Verdict::deny(Reason::BadRequest, "the APIProduct has no namespace");
    };
    let route_name = product.spec.target_ref.name.as_str();
    // A route annotated a moment ago may still be unannotated in the cache: confirm live.
    for read in [Read::Cached, Read::Live] {
        match route_verdict(lookup, namespace, route_name, read).await {
            Verdict {
                reason: Reason::RouteNotExposed,
                ..
            } if read == Read::Cached => continue,
            verdict => return verdict,
        }
    }
    Verdict::allow(Reason::Allowed)
}

async fn route_verdict<C: Lookup>(
    lookup: &C,
    namespace: &str,
    route_name: &str,
    read: Read,
) -> Verdict {
    let route = match lookup.route(namespace, route_name, read).await {
        Ok(route) => route,
        Err(e) => return lookup_failed(&format!("HTTPRoute {namespace}/{route_name}"), e),
    };
    let Some(route) = route else {
        return Verdict::deny(
            Reason::RouteNotFound,
            format!(
                "spec.targetRef: HTTPRoute {route_name:?} not found in namespace {namespace:?}; an \
                 APIProduct must target an existing HTTPRoute in its own namespace"
            ),
        );
    };
    let exposed = route
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(EXPOSED_ANNOTATION))
        .is_some_and(|v| v == "true");
    if !exposed {
        return Verdict::deny(
            Reason::RouteNotExposed,
            format!(
                "spec.targetRef: HTTPRoute {route_name:?} in namespace {namespace:?} is not exposed \
                 to API owners; a platform engineer must annotate it {EXPOSED_ANNOTATION}=\"true\""
            ),
        );
    }
    Verdict::allow(Reason::Allowed)
}
