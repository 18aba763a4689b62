//! Kubernetes resource models.
//!
//! [`apiproduct`], [`apikey`], [`apikeyrequest`], [`apikeyapproval`] and the cluster-scoped
//! [`apikeypolicy`] are devportal's own custom resources (group
//! `devportal.kuadrant.io`); [`gateway`] and [`kuadrant`] are read models for the foreign kinds the
//! controller reads. Read models carry only the fields devportal uses and ignore everything else, so
//! newer upstream versions of those CRDs keep deserializing.

/// Implements [`kube::Resource`] for `$cached`, the form in which the controller caches `$kind`
/// (a struct with a `metadata: ObjectMeta` field): kind, group, version and plural are `$kind`'s,
/// so watches, stores and `ObjectRef`s of the cached form address the real objects.
macro_rules! cached_form_of {
    ($cached:ty, $kind:ty) => {
        impl kube::Resource for $cached {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;

            fn kind(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::kind(dt)
            }

            fn group(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::group(dt)
            }

            fn version(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::version(dt)
            }

            fn plural(dt: &()) -> std::borrow::Cow<'_, str> {
                <$kind as kube::Resource>::plural(dt)
            }

            fn meta(&self) -> &kube::api::ObjectMeta {
                &self.metadata
            }

            fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}

pub mod apikey;
pub mod apikeyapproval;
pub mod apikeypolicy;
pub mod apikeyrequest;
pub mod apiproduct;
pub mod cached_key;
pub mod cached_request;
pub mod common;
pub mod gateway;
pub mod kuadrant;
pub mod upstream_schema;

pub use apikey::{
    APIKey, APIKeyPhase, APIKeySpec, APIKeyStatus, APIProductRef, Approval, KeyAuthScheme,
    KeyRotation, LocalSecretRef, RequestedBy, SecretKeyRef,
};
pub use apikeyapproval::{
    APIKeyApproval, APIKeyApprovalSpec, APIKeyApprovalStatus, PreviousReview, RequestNameRef,
};
pub use apikeypolicy::{
    APIKeyPolicy, APIKeyPolicySpec, APIKeyPolicyStatus, KeyViolation, PolicyAction, PolicyMatch,
    PolicyRules, PolicyViolations, ProductMatch, TierRule,
};
pub use apikeyrequest::{
    APIKeyRef, APIKeyRequest, APIKeyRequestSpec, APIKeyRequestStatus, ProductNameRef,
};
pub use apiproduct::{
    APIProduct, APIProductSpec, APIProductStatus, ApprovalMode, Contact, DiscoveredAuthScheme,
    DiscoveredPlan, DiscoveredPolicy, Documentation, HTTPRouteRef, OidcDiscovery, OpenApiStatus,
    ProductEnforcement, PublishStatus,
};
pub use common::{CustomLimit, Limits};

pub use crate::names::{GROUP, VERSION};
