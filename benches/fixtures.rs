//! A typical APIKey CREATE AdmissionReview, as kube-apiserver sends it for `kubectl apply`, and the
//! product it refers to. Shared by the benchmarks.

use serde_json::{Value, json};

/// Namespace of the product and the keys.
pub const NAMESPACE: &str = "devportal-bench";
/// Name of the product.
pub const PRODUCT: &str = "toys";

/// The Published product with gold and silver tiers, as the controller leaves it.
pub fn product() -> Value {
    json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIProduct",
        "metadata": {"name": PRODUCT, "namespace": NAMESPACE, "uid": "6a1c3ff0-4a43-4fd7-9b35-3f9d1e0c2b11",
                     "resourceVersion": "1042", "generation": 1, "creationTimestamp": "2026-11-01T10:00:00Z"},
        "spec": {
            "displayName": "Toy Store API", "description": "Buy and sell toys", "version": "v1",
            "tags": ["retail", "toys"], "approvalMode": "manual", "publishStatus": "Published",
            "targetRef": {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "toystore"},
            "contact": {"team": "toys", "email": "toys@example.com"}
        },
        "status": {
            "observedGeneration": 1,
            "discoveredPlans": [
                {"tier": "gold", "limits": {"daily": 1000, "custom": [{"limit": 10, "window": "1s"}]}},
                {"tier": "silver", "limits": {"daily": 100}}
            ],
            "planTiers": "gold,silver"
        }
    })
}

/// The AdmissionReview of `kubectl apply` creating an APIKey for the product as `consumer`: for
/// the mutating webhook as sent, for the validating one (`stamped`) with `spec.requestedBy` set.
pub fn key_create_review(stamped: bool) -> Vec<u8> {
    let mut key = json!({
        "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKey",
        "metadata": {
            "name": "my-toys-key", "namespace": NAMESPACE,
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration":
                "{\"apiVersion\":\"devportal.kuadrant.io/v1alpha1\",\"kind\":\"APIKey\",\"metadata\":{\"annotations\":{},\"name\":\"my-toys-key\",\"namespace\":\"devportal-bench\"},\"spec\":{\"apiProductRef\":{\"name\":\"toys\"},\"planTier\":\"gold\",\"useCase\":\"Mobile app checkout\"}}\n"},
            "creationTimestamp": null,
            "managedFields": [{
                "manager": "kubectl-client-side-apply", "operation": "Update",
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "time": "2026-11-22T14:00:00Z",
                "fieldsType": "FieldsV1",
                "fieldsV1": {"f:metadata": {"f:annotations": {".": {}, "f:kubectl.kubernetes.io/last-applied-configuration": {}}},
                             "f:spec": {".": {}, "f:apiProductRef": {".": {}, "f:name": {}}, "f:planTier": {}, "f:useCase": {}}}
            }]
        },
        "spec": {"apiProductRef": {"name": PRODUCT}, "planTier": "gold", "useCase": "Mobile app checkout"}
    });
    if stamped {
        key["spec"]["requestedBy"] = json!({"userId": "consumer"});
    }
    serde_json::to_vec(&json!({
        "kind": "AdmissionReview", "apiVersion": "admission.k8s.io/v1",
        "request": {
            "uid": "0c9a8d74-9cb7-44dd-b98e-09fd62def2f4",
            "kind": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "kind": "APIKey"},
            "resource": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "resource": "apikeys"},
            "requestKind": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "kind": "APIKey"},
            "requestResource": {"group": "devportal.kuadrant.io", "version": "v1alpha1", "resource": "apikeys"},
            "name": "my-toys-key", "namespace": NAMESPACE, "operation": "CREATE",
            "userInfo": {"username": "consumer", "uid": "consumer", "groups": ["api-consumers", "system:authenticated"]},
            "object": key, "oldObject": null, "dryRun": false,
            "options": {"kind": "CreateOptions", "apiVersion": "meta.k8s.io/v1", "fieldManager": "kubectl-client-side-apply", "fieldValidation": "Strict"}
        }
    }))
    .expect("fixture serializes")
}
