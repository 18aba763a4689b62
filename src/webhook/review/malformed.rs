//! The answers to AdmissionReviews that cannot be judged: a body that is not JSON, a wrong
//! apiVersion or kind, a review without a request, an unknown operation, an object of another kind,
//! an oversized body. Each still gets an AdmissionReview with an error `Status`, carrying the
//! request's `uid` whenever it can be recovered (so the API server relays the message to the
//! user); without a `uid` the HTTP status is 400 (or 413).

use kube::Resource;
use kube::core::Status;
use kube::core::admission::{AdmissionResponse, META_API_VERSION_V1, META_KIND};
use serde::Deserialize;

use super::{Endpoint, Outcome, Reply, v1_types};
use crate::webhook::rules::Reason;

/// Just enough of an AdmissionReview to say why a body did not decode.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    api_version: Option<String>,
    kind: Option<String>,
    request: Option<ProbeRequest>,
}

#[derive(Deserialize)]
struct ProbeRequest {
    uid: Option<String>,
    operation: Option<serde_json::Value>,
    kind: Option<ProbeKind>,
}

#[derive(Deserialize)]
struct ProbeKind {
    #[serde(default)]
    group: String,
    #[serde(default)]
    kind: String,
}

/// An AdmissionReview denying request `uid` (possibly empty) with `reason` and `message`.
fn error_review(uid: &str, reason: Reason, message: &str) -> Vec<u8> {
    let mut response = AdmissionResponse::invalid(message);
    response.uid = uid.into();
    response.types = v1_types();
    let (code, status_reason) = reason.status();
    response.result = Status::failure(message, status_reason).with_code(code);
    serde_json::to_vec(&response.into_review()).unwrap_or_default()
}

/// Finds `request.uid` near the start of a body that cannot be parsed as a whole (truncated or
/// malformed elsewhere). The API server writes `request.uid` first.
pub fn recover_uid(body: &[u8]) -> Option<String> {
    let at = find(body, b"\"request\"")?;
    let rest = &body[at..];
    let uid_at = find(rest, b"\"uid\"")? + 5;
    let mut rest = &rest[uid_at..];
    while let [b' ' | b'\n' | b'\r' | b'\t' | b':', tail @ ..] = rest {
        rest = tail;
    }
    let uid = serde_json::Deserializer::from_slice(rest)
        .into_iter::<String>()
        .next()?
        .ok()?;
    (!uid.is_empty() && uid.len() <= 128).then_some(uid)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The reply to a body that exceeded `limit` bytes; `prefix` is what was read of it.
pub(super) fn too_large(endpoint: Endpoint, prefix: &[u8], limit: usize) -> Reply {
    let message =
        format!("the AdmissionReview is larger than the webhook's limit of {limit} bytes");
    let uid = recover_uid(prefix);
    Reply {
        http_status: if uid.is_some() { 200 } else { 413 },
        body: error_review(
            uid.as_deref().unwrap_or_default(),
            Reason::TooLarge,
            &message,
        ),
        outcome: Outcome {
            endpoint,
            operation: "unknown",
            reason: Reason::TooLarge,
        },
    }
}

/// A BadRequest denial of request `uid` (HTTP 400 when there is no `uid` to answer).
pub(super) fn bad(
    endpoint: Endpoint,
    uid: Option<&str>,
    operation: &'static str,
    message: &str,
) -> Reply {
    Reply {
        http_status: if uid.is_some() { 200 } else { 400 },
        body: error_review(uid.unwrap_or_default(), Reason::BadRequest, message),
        outcome: Outcome {
            endpoint,
            operation,
            reason: Reason::BadRequest,
        },
    }
}

/// Explains why `body` did not decode as an AdmissionReview of `K`, as precisely as possible.
pub(super) fn bad_body<K: Resource<DynamicType = ()>>(
    endpoint: Endpoint,
    body: &[u8],
    err: &serde_json::Error,
) -> Reply {
    let Ok(probe) = serde_json::from_slice::<Probe>(body) else {
        let uid = recover_uid(body);
        let message = format!("the body is not a JSON AdmissionReview: {err}");
        return bad(endpoint, uid.as_deref(), "unknown", &message);
    };
    let request = probe.request.as_ref();
    let uid = request.and_then(|r| r.uid.as_deref());
    let message = if probe.api_version.as_deref() != Some(META_API_VERSION_V1)
        || probe.kind.as_deref() != Some(META_KIND)
    {
        format!(
            "expected an {META_KIND} of apiVersion {META_API_VERSION_V1}, got kind {:?} of apiVersion {:?}",
            probe.kind.unwrap_or_default(),
            probe.api_version.unwrap_or_default()
        )
    } else if request.is_none() {
        "the AdmissionReview has no request".to_string()
    } else if let Some(op) = request.and_then(|r| r.operation.as_ref()).filter(|op| {
        !matches!(
            op.as_str(),
            Some("CREATE" | "UPDATE" | "DELETE" | "CONNECT")
        )
    }) {
        format!("unknown operation {op}; expected CREATE, UPDATE, DELETE or CONNECT")
    } else if let Some(kind) = request
        .and_then(|r| r.kind.as_ref())
        .filter(|k| k.group != K::group(&()) || k.kind != K::kind(&()))
    {
        format!(
            "{} admits {}.{} only, got kind {:?} in group {:?}",
            endpoint.path(),
            K::kind(&()),
            K::group(&()),
            kind.kind,
            kind.group
        )
    } else if let (Endpoint::MutateKeys | Endpoint::MutateApprovals, Some(uid)) = (endpoint, uid) {
        // A well-formed review whose object does not match the schema (a required field missing,
        // say): mutating admission runs before schema validation, which rejects the object with
        // the API server's own field-level message. Nothing to stamp; the validating webhook,
        // after schema validation, stays the enforcement point.
        return untouched(endpoint, uid);
    } else {
        format!("the AdmissionReview does not decode: {err}")
    };
    bad(endpoint, uid, "unknown", &message)
}

/// Allows request `uid` without a patch.
fn untouched(endpoint: Endpoint, uid: &str) -> Reply {
    let mut response = AdmissionResponse::invalid("");
    response.uid = uid.into();
    response.types = v1_types();
    response.allowed = true;
    response.result = Status::success();
    Reply {
        http_status: 200,
        body: serde_json::to_vec(&response.into_review()).unwrap_or_default(),
        outcome: Outcome {
            endpoint,
            operation: "unknown",
            reason: Reason::NotApplicable,
        },
    }
}
