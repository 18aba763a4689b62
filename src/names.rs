//! The names everyone shares: API group, labels, annotations, the finalizer, field managers and
//! condition types. The controller, the webhook and the tests all take them from here, so a name
//! is written once.

/// API group of devportal's resources.
pub const GROUP: &str = "devportal.kuadrant.io";
/// API version of devportal's resources.
pub const VERSION: &str = "v1alpha1";
/// `apiVersion` of devportal's resources.
pub const API_VERSION: &str = "devportal.kuadrant.io/v1alpha1";
/// API group of Gateway API resources.
pub const GATEWAY_GROUP: &str = "gateway.networking.k8s.io";

/// Finalizer on every APIKey: the controller removes the key's Secrets (one of them in another
/// namespace, out of reach of owner references) before the key goes away.
pub const FINALIZER: &str = "devportal.kuadrant.io/secrets";

/// Field manager of every write the controller makes.
pub const CONTROLLER_MANAGER: &str = "devportal-controller";
/// Field manager of every write `kubectl devportal` makes.
pub const PLUGIN_MANAGER: &str = "kubectl-devportal";

/// Annotation a platform engineer puts on an HTTPRoute that API owners may publish.
pub const EXPOSED_ANNOTATION: &str = "devportal.kuadrant.io/exposed";

/// Label on every Secret devportal writes; its watch selects on it.
pub const MANAGED_LABEL: &str = "devportal.kuadrant.io/managed";
/// The label selector matching every Secret devportal writes.
pub const MANAGED_SELECTOR: &str = "devportal.kuadrant.io/managed=true";
/// Label telling the two Secrets apart: `enforcement` or `consumer`.
pub const ROLE_LABEL: &str = "devportal.kuadrant.io/role";
/// Annotation naming the APIKey (`namespace/name`) a Secret belongs to.
pub const APIKEY_ANNOTATION: &str = "devportal.kuadrant.io/apikey";

/// Label on both of a key's Secrets: the uid of the APIKey they belong to. On the enforcement
/// Secret it is the controller's mark of ownership (the consumer Secret's is its owner reference).
pub const APIKEY_UID_LABEL: &str = "devportal.kuadrant.io/apikey-uid";

/// Label on every enforcement Secret: the namespace of the APIProduct the key is for. Set by
/// devportal from the product itself, so an AuthPolicy selector that requires it (and
/// [`PRODUCT_LABEL`]) accepts no other product's keys.
pub const PRODUCT_NAMESPACE_LABEL: &str = "devportal.kuadrant.io/product-namespace";
/// Label on every enforcement Secret: the name of the APIProduct the key is for (names longer
/// than a label value allows are cut and end in a checksum; `status.enforcement.labels` of the
/// product shows the value).
pub const PRODUCT_LABEL: &str = "devportal.kuadrant.io/product";

/// Annotation on an APIKeyApproval, stamped by the admission webhook: the plan tier of the
/// APIKeyRequest it reviewed. The controller applies the approval only while the key asks for it.
pub const REVIEWED_TIER_ANNOTATION: &str = "devportal.kuadrant.io/reviewed-plan-tier";
/// Annotation on an APIKeyApproval, stamped by the admission webhook: the uid of the APIProduct
/// it reviewed. The controller applies the approval only to that very product.
pub const REVIEWED_PRODUCT_UID_ANNOTATION: &str = "devportal.kuadrant.io/reviewed-product-uid";

/// Annotation on an APIKeyApproval, stamped by the admission webhook: the trusted front end that
/// created it for the reviewer named in `spec.reviewedBy` (absent when the reviewer created it).
pub const REVIEWED_VIA_ANNOTATION: &str = "devportal.kuadrant.io/reviewed-via";

/// Annotation on an APIKeyApproval, written by the admission webhook only: the reviews that
/// updates of the approval replaced (JSON list of `{approved, reviewedBy, reviewedAt, reason}`,
/// newest first, at most ten), so changing a decision never loses the record of the earlier one.
pub const PREVIOUS_REVIEWS_ANNOTATION: &str = "devportal.kuadrant.io/previous-reviews";

/// Annotation on an APIKey, written by the admission webhook only: when someone who may approve
/// last cleared the key's `spec.approval` (RFC 3339, microseconds). Every review of the key's
/// request up to then stays superseded: clearing a revocation does not bring back an older
/// APIKeyApproval.
pub const REVIEW_WITHDRAWN_ANNOTATION: &str = "devportal.kuadrant.io/review-withdrawn-at";

/// Authorino's default `--secret-label-selector`: the Secrets it watches at all.
pub const AUTHORINO_DEFAULT_SECRET_SELECTOR: &str = "authorino.kuadrant.io/managed-by=authorino";
/// The default `--enforcement-namespace`: where kuadrant-operator runs (and puts AuthConfigs) in
/// a default install.
pub const DEFAULT_KUADRANT_NAMESPACE: &str = "kuadrant-system";
/// API group of the `Kuadrant` CR (and of AuthPolicy).
pub const KUADRANT_GROUP: &str = "kuadrant.io";
/// Version of the `Kuadrant` CR devportal lists.
pub const KUADRANT_VERSION: &str = "v1beta1";
/// The data key that holds the key value in both Secrets (the one Authorino reads).
pub const API_KEY_DATA: &str = "api_key";
/// Annotation PlanPolicy predicates match the tier on.
pub const PLAN_ANNOTATION: &str = "secret.kuadrant.io/plan-id";
/// Annotation carrying the requester.
pub const USER_ANNOTATION: &str = "secret.kuadrant.io/user-id";
/// Annotation carrying the expiry time, when the key has one.
pub const EXPIRES_ANNOTATION: &str = "secret.kuadrant.io/expires-at";

/// The reviewer recorded in `spec.approval.reviewedBy` when a product in `approvalMode: automatic`
/// approved a key: the controller writes that approval, so switching the product to manual keeps
/// the keys already granted. `system:` names are reserved to Kubernetes components, so no person
/// holds it; the admission webhook lets only the controller's identity write it.
pub const AUTOMATIC_REVIEWER: &str = "system:devportal:automatic";

/// Annotation on an APIKey created by a trusted front end on behalf of a user: the front end's own
/// username, while `spec.requestedBy` names the user. The admission webhook stamps it when it
/// accepts the delegation and removes (or restores) it on every other write, so it is never
/// anyone's say-so.
pub const REQUESTED_VIA_ANNOTATION: &str = "devportal.kuadrant.io/requested-via";

/// Annotation on an APIKey with an e-mail in `spec.requestedBy`, and on its APIKeyRequest:
/// `"true"` when the e-mail came from the requester's identity (`userInfo.extra`, or a trusted
/// front end acting for them), `"false"` when it is only what the client typed. The admission
/// webhook stamps it at CREATE and restores it on every other write; the controller copies it
/// to the APIKeyRequest. Absent (keys from before it existed): unverified.
pub const EMAIL_VERIFIED_ANNOTATION: &str = "devportal.kuadrant.io/email-verified";

/// Annotation on an APIKey by which its requester (or an admin) asks for a new key value: any
/// non-empty single-line token of at most 64 characters (`kubectl devportal rotate` writes an RFC
/// 3339 timestamp). The controller rotates once per new token and records it in
/// `status.rotation.request`.
pub const ROTATION_REQUEST_ANNOTATION: &str = "devportal.kuadrant.io/rotation-request";
/// Annotation on both of a key's Secrets: the rotation token whose new value they carry (never
/// the value). After a crash between the Secret writes and the status write, it tells the
/// controller that the rotation already happened and only its record is missing.
pub const ROTATION_ANNOTATION: &str = "devportal.kuadrant.io/rotation";

/// Annotation on a consumer Secret of a generated key: devportal's keyed MAC (HMAC-SHA256, hex)
/// of the value, bound to the APIKey's uid and its rotation generation. The controller takes a
/// value back from a consumer Secret (a key Approved again) only when it verifies, so a value
/// written there by hand, copied from another key or from before a rotation is never enforced.
pub const VALUE_MAC_ANNOTATION: &str = "devportal.kuadrant.io/value-mac";
/// The Secret, in devportal's own namespace (`POD_NAMESPACE`), holding the MAC key of
/// [`VALUE_MAC_ANNOTATION`]; created once by the first active controller.
pub const MAC_KEY_SECRET: &str = "devportal-value-mac-key";
/// The data entry of [`MAC_KEY_SECRET`] that holds the MAC key (32 random bytes).
pub const MAC_KEY_DATA: &str = "mac_key";

/// Annotations on the self-managed certificate Secret.
pub mod certs {
    /// When the CA stops being valid (RFC 3339).
    pub const CA_NOT_AFTER: &str = "devportal.kuadrant.io/ca-not-after";
    /// When the previous CA, still trusted during a rotation, stops being valid.
    pub const PREVIOUS_CA_NOT_AFTER: &str = "devportal.kuadrant.io/ca-previous-not-after";
    /// When the serving certificate stops being valid.
    pub const SERVING_NOT_AFTER: &str = "devportal.kuadrant.io/serving-not-after";
    /// The DNS names the serving certificate was issued for.
    pub const SERVING_NAMES: &str = "devportal.kuadrant.io/serving-names";
}

/// Condition types of an APIProduct.
pub mod product_condition {
    /// Route found and accepted, PlanPolicy and AuthPolicy found.
    pub const READY: &str = "Ready";
    /// A PlanPolicy applies.
    pub const PLAN_POLICY: &str = "PlanPolicyDiscovered";
    /// An accepted and enforced AuthPolicy applies.
    pub const AUTH_POLICY: &str = "AuthPolicyDiscovered";
    /// The JWT issuer's token endpoint is known.
    pub const OIDC: &str = "OIDCDiscovered";
    /// The OpenAPI document was fetched.
    pub const OPENAPI: &str = "OpenAPISpecReady";
}

/// Reasons of an APIKey's phase conditions (and Events) that tests and docs refer to.
pub mod key_reason {
    /// `Pending`: the approval in `spec.approval` is for another APIProduct (one deleted and
    /// re-created under the same name) or another plan tier than the key's; it counts as none.
    pub const APPROVAL_OUTDATED: &str = "ApprovalOutdated";
    /// `Approved` by the product's `approvalMode: automatic`, recorded (or about to be) in
    /// `spec.approval` with reviewer [`AUTOMATIC_REVIEWER`](super::AUTOMATIC_REVIEWER).
    pub const AUTO_APPROVED: &str = "AutoApproved";
    /// Warning Event: the key lives in a namespace the admission webhook does not cover, so
    /// nothing validated it and the controller leaves it alone.
    pub const NAMESPACE_NOT_COVERED: &str = "NamespaceNotCovered";
    /// `Pending`: the key is past the per-requester, per-product key limit in creation order; it
    /// waits until an earlier key is deleted, rejected or long expired.
    pub const KEY_LIMIT_EXCEEDED: &str = "KeyLimitExceeded";
    /// Event on an APIKey: a new value replaced the old one in both Secrets, on a rotation request.
    pub const ROTATED: &str = "Rotated";
    /// Warning Event on an APIKey: its consumer Secret held a value devportal did not issue for
    /// it (written by hand, another key's, or one from before a rotation) and no enforcement
    /// Secret held its value, so the key was issued a new value.
    pub const KEY_VALUE_REISSUED: &str = "KeyValueReissued";
    /// `Failed`: the product's enforcement Secrets would also be accepted by another product's
    /// AuthPolicy, so devportal writes none (see the product's `Ready` condition).
    pub const SELECTOR_OVERLAP: &str = "SelectorOverlap";
    /// `Failed`: the API server refused to write one of the key's Secrets (an exhausted
    /// ResourceQuota, a namespace being terminated or missing, an admission policy); the message
    /// starts with the API server's reason and quotes its answer. Retried until the write succeeds.
    pub const SECRET_WRITE_REFUSED: &str = "SecretWriteRefused";
    /// `Failed`: the enforcement namespace is missing or being deleted (by the controller's
    /// Namespace cache), so no enforcement Secret can be written; nothing is sent to the API
    /// server until it is created again, and then every key is reconciled at once.
    pub const ENFORCEMENT_NAMESPACE_UNAVAILABLE: &str = "EnforcementNamespaceUnavailable";
    /// `Ready=True`: the key is Approved and its enforcement Secret is written (the gateway
    /// accepts it).
    pub const ENFORCED: &str = "Enforced";
    /// `Ready=False`: the key is Approved but no enforcement Secret holds its value yet.
    pub const NOT_ENFORCED: &str = "NotEnforced";
    /// `Pending`: the product approves automatically, but an APIKeyPolicy with action `Deny`
    /// and `manualApproval: true` wants an owner to approve the key.
    pub const APPROVAL_REQUIRED_BY_POLICY: &str = "ApprovalRequiredByPolicy";
    /// Warning Event on an APIKey: the audit found it breaking a rule of an APIKeyPolicy (once
    /// per policy and rule, when it starts to).
    pub const POLICY_VIOLATION: &str = "PolicyViolation";
}

/// Condition types of an APIKey besides its phase conditions (`Pending`, `Approved`, `Denied`,
/// `Expired`, `Failed`, one True).
pub mod key_condition {
    /// True when the key is Approved and enforced; False with the phase's reason otherwise
    /// (`kubectl wait --for=condition=Ready apikey/<name>`).
    pub const READY: &str = "Ready";
}

/// Condition types and reasons of an APIKeyPolicy's status.
pub mod policy_condition {
    /// The policy's selectors and lifetime parse, so it is in force.
    pub const ACCEPTED: &str = "Accepted";
    /// The policy is in force and the existing keys were audited against it.
    pub const READY: &str = "Ready";
    /// Reason of `Accepted`/`Ready` True.
    pub const AUDITED: &str = "Audited";
    /// Reason of `Accepted`/`Ready` False: devportal ignores the policy until it is fixed.
    pub const INVALID: &str = "Invalid";
}

/// Reasons of an APIKeyRequest's conditions and Events that tests and docs refer to.
pub mod request_reason {
    /// Event on an APIKeyRequest: an APIKeyApproval of it was written onto its APIKey.
    pub const APPROVAL_APPLIED: &str = "ApprovalApplied";
}

/// Condition types of an APIKeyApproval.
pub mod approval_condition {
    /// Whether this review is the one that counts for its request (the one its APIKey carries).
    pub const VALID: &str = "Valid";
}

/// Reasons of an APIKeyApproval's `Valid` condition (and Events) that tests and docs refer to.
pub mod approval_reason {
    /// `Valid=True`: the APIKey carries this review.
    pub const APPLIED: &str = "Applied";
    /// `Valid=False`: a later review of the request (another APIKeyApproval, or one written on
    /// the APIKey, or the withdrawal of the key's review) counts instead.
    pub const SUPERSEDED: &str = "Superseded";
    /// `Valid=False` (and a Warning Event): the review is of another tier or product than the
    /// key's now, so it was not applied.
    pub const OUTDATED: &str = "ApprovalOutdated";
    /// `Valid=False` (and a Warning Event): the key had expired when the review came, so it was
    /// not applied (an expired key is never enforced again; the webhook refuses such reviews).
    pub const KEY_EXPIRED: &str = "KeyExpired";
}

/// Reasons of an APIProduct's conditions that tests and docs refer to.
pub mod product_reason {
    /// `AuthPolicyDiscovered=True`, with a warning: the apiKey rule reads Secrets from every
    /// namespace (`allNamespaces: true`), so anyone who can create a labelled Secret anywhere
    /// can mint a key.
    pub const KEYS_FROM_ALL_NAMESPACES: &str = "KeysFromAllNamespaces";
    /// `PlanPolicyDiscovered=True`, but some of the PlanPolicy's tiers were not copied into
    /// status (and accept no keys): their names hold control, format or invisible characters.
    /// The message names them escaped.
    pub const TIERS_SKIPPED: &str = "TiersSkipped";
    /// `AuthPolicyDiscovered` (and, when the product is refused, `Ready=False`): the labels of
    /// this product's enforcement Secrets and another product's AuthPolicy selector overlap (one
    /// product's keys would work on the other's API). The message names the other product.
    pub const SELECTOR_OVERLAP: &str = "SelectorOverlap";
}

/// Warning Event on a `Kuadrant` CR outside `--enforcement-namespace`: devportal does not
/// follow it (a tenant may be able to create one), it reports it.
pub const KUADRANT_ELSEWHERE_REASON: &str = "KuadrantNamespaceMismatch";

/// Condition types the crate reads on objects others write: Gateway API routes and Kuadrant
/// policies.
pub mod foreign_condition {
    /// The route's gateway, or Kuadrant for a policy, accepted it.
    pub const ACCEPTED: &str = "Accepted";
    /// Kuadrant enforces the policy.
    pub const ENFORCED: &str = "Enforced";
}
