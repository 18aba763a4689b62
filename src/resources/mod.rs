//! Kubernetes resource models.
//!
//! [`apiproduct`], [`apikey`], [`apikeyrequest`] and [`apikeyapproval`] are devportal's own custom
//! resources (group
//! `devportal.kuadrant.io`); [`gateway`] and [`kuadrant`] are read models for the foreign kinds the
//! controller reads. Read models carry only the fields devportal uses and ignore everything else, so
//! newer upstream versions of those CRDs keep deserializing.

pub mod apikey;
pub mod apikeyapproval;
pub mod apikeyrequest;
pub mod apiproduct;
pub mod cached_key;
mod common;
pub mod gateway;
pub mod kuadrant;

pub use apikey::{
    APIKey, APIKeyPhase, APIKeySpec, APIKeyStatus, APIProductRef, Approval, KeyAuthScheme,
    KeyRotation, LocalSecretRef, RequestedBy, SecretKeyRef,
};
pub use apikeyapproval::{APIKeyApproval, APIKeyApprovalSpec, RequestNameRef};
pub use apikeyrequest::{
    APIKeyRef, APIKeyRequest, APIKeyRequestSpec, APIKeyRequestStatus, ProductNameRef,
};
pub use apiproduct::{
    APIProduct, APIProductSpec, APIProductStatus, ApprovalMode, Contact, DiscoveredAuthScheme,
    DiscoveredPlan, DiscoveredPolicy, Documentation, HTTPRouteRef, OidcDiscovery, OpenApiStatus,
    PublishStatus,
};
pub use common::{CustomLimit, Limits};

pub use crate::names::{GROUP, VERSION};
