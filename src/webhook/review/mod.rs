//! AdmissionReview v1 in and out: decode the body, dispatch to [`super::rules`], encode the reply.
//!
//! Every input gets a well-formed answer. When the request's `uid` can be recovered the answer is
//! an AdmissionReview (HTTP 200) whose response denies with a 4xx `Status`, so the API server
//! shows the user what was wrong; otherwise it is an HTTP 400 (or 413) whose body is still an
//! AdmissionReview with an error `Status`. The answers to bodies that cannot be judged live in
//! `malformed.rs`.

mod malformed;

pub use malformed::recover_uid;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::core::admission::{
    AdmissionRequest, AdmissionResponse, AdmissionReview, META_API_VERSION_V1, META_KIND, Operation,
};
use kube::core::{Status, TypeMeta};
use serde::de::DeserializeOwned;

use super::lookup::Lookup;
use super::lookup::rate::{self, Charge, Lane};
use super::rules::{self, Change, Limits, Reason, Verdict};
use crate::resources::{APIKey, APIKeyApproval, APIKeyRequest, APIProduct};

/// One admission endpoint, one concern each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/mutate/apikeys`: stamps requester and reviewer.
    MutateKeys,
    /// `/validate/apikeys`: the APIKey invariants.
    ValidateKeys,
    /// `/validate/apiproducts`: the APIProduct's route.
    ValidateProducts,
    /// `/mutate/apikeyapprovals`: stamps the reviewer and what was reviewed.
    MutateApprovals,
    /// `/validate/apikeyapprovals`: who may review, and immutability.
    ValidateApprovals,
    /// `/validate/apikeyrequests`: only the controller writes them.
    ValidateRequests,
}

impl Endpoint {
    /// Every endpoint.
    pub const ALL: [Endpoint; 6] = [
        Endpoint::MutateKeys,
        Endpoint::ValidateKeys,
        Endpoint::ValidateProducts,
        Endpoint::MutateApprovals,
        Endpoint::ValidateApprovals,
        Endpoint::ValidateRequests,
    ];

    /// The URL path the endpoint is served on.
    pub fn path(self) -> &'static str {
        match self {
            Endpoint::MutateKeys => "/mutate/apikeys",
            Endpoint::ValidateKeys => "/validate/apikeys",
            Endpoint::ValidateProducts => "/validate/apiproducts",
            Endpoint::MutateApprovals => "/mutate/apikeyapprovals",
            Endpoint::ValidateApprovals => "/validate/apikeyapprovals",
            Endpoint::ValidateRequests => "/validate/apikeyrequests",
        }
    }

    /// The resource the endpoint admits, as a label (`apikeys`).
    pub fn resource(self) -> &'static str {
        match self {
            Endpoint::MutateKeys | Endpoint::ValidateKeys => "apikeys",
            Endpoint::ValidateProducts => "apiproducts",
            Endpoint::MutateApprovals | Endpoint::ValidateApprovals => "apikeyapprovals",
            Endpoint::ValidateRequests => "apikeyrequests",
        }
    }
}

/// What happened to one AdmissionReview, with bounded values only (for logs and metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// `CREATE`, `UPDATE`, `DELETE`, `CONNECT`, or `unknown` when the body could not be read.
    pub operation: &'static str,
    /// The decision.
    pub reason: Reason,
}

/// The HTTP answer to one AdmissionReview.
#[derive(Clone, Debug)]
pub struct Reply {
    /// HTTP status: 200 whenever the body is an answer the API server can use.
    pub http_status: u16,
    /// JSON body, always an AdmissionReview.
    pub body: Vec<u8>,
    /// What was decided.
    pub outcome: Outcome,
}

/// The admission webhook's logic over a [`Lookup`].
pub struct Webhook<C> {
    lookup: C,
    limits: Limits,
}
fn operation_label(op: &Operation) -> &'static str {
    match op {
        Operation::Create => "CREATE",
        Operation::Update => "UPDATE",
        Operation::Delete => "DELETE",
        Operation::Connect => "CONNECT",
    }
}

fn v1_types() -> TypeMeta {
    TypeMeta {
        api_version: META_API_VERSION_V1.into(),
        kind: META_KIND.into(),
    }
}

impl<C: Lookup> Webhook<C> {
    /// A webhook answering from `lookup` and enforcing `limits`.
    pub fn new(lookup: C, limits: Limits) -> Self {
        Webhook { lookup, limits }
    }

    /// Answers one AdmissionReview body, with `now` as the time of the decision.
    pub async fn admit(&self, endpoint: Endpoint, body: &[u8], now: Timestamp) -> Reply {
        match endpoint {
            Endpoint::MutateKeys | Endpoint::ValidateKeys => {
                self.admit_as::<APIKey>(endpoint, body, now).await
            }
            Endpoint::ValidateProducts => self.admit_as::<APIProduct>(endpoint, body, now).await,
            Endpoint::MutateApprovals | Endpoint::ValidateApprovals => {
                self.admit_as::<APIKeyApproval>(endpoint, body, now).await
            }
            Endpoint::ValidateRequests => self.admit_as::<APIKeyRequest>(endpoint, body, now).await,
        }
    }

    /// Answers a body that exceeded `limit` bytes; `prefix` is what was read of it.
    pub fn too_large(&self, endpoint: Endpoint, prefix: &[u8], limit: usize) -> Reply {
        malformed::too_large(endpoint, prefix, limit)
    }

    async fn admit_as<K>(&self, endpoint: Endpoint, body: &[u8], now: Timestamp) -> Reply
    where
        K: Resource<DynamicType = ()> + DeserializeOwned + Admit,
    {
        let review: AdmissionReview<K> = match serde_json::from_slice(body) {
            Ok(review) => review,
            Err(err) => return malformed::bad_body::<K>(endpoint, body, &err),
        };
        let uid = review.request.as_ref().map(|r| r.uid.clone());
        if review.types.api_version != META_API_VERSION_V1 || review.types.kind != META_KIND {
            let message = format!(
                "expected an {META_KIND} of apiVersion {META_API_VERSION_V1}, got kind {:?} of apiVersion {:?}",
                review.types.kind, review.types.api_version
            );
            return malformed::bad(endpoint, uid.as_deref(), "unknown", &message);
        }
        let request: AdmissionRequest<K> = match review.try_into() {
            Ok(request) => request,
            Err(_) => {
                return malformed::bad(
                    endpoint,
                    None,
                    "unknown",
                    "the AdmissionReview has no request",
                );
            }
        };
        let operation = operation_label(&request.operation);
        if request.kind.group != K::group(&()) || request.kind.kind != K::kind(&()) {
            let message = format!(
                "{} admits {}.{} only, got kind {:?} in group {:?}",
                endpoint.path(),
                K::kind(&()),
                K::group(&()),
                request.kind.kind,
                request.kind.group
            );
            return malformed::bad(endpoint, Some(&request.uid), operation, &message);
        }
        let verdict = match self.verdict(endpoint, &request, now).await {
            Ok(verdict) => verdict,
            Err(message) => {
                return malformed::bad(endpoint, Some(&request.uid), operation, &message);
            }
        };
        respond(endpoint, &request, operation, verdict)
    }

    /// The rules' verdict on `request`, or why the request cannot be judged.
    async fn verdict<K: Resource + Admit>(
        &self,
        endpoint: Endpoint,
        request: &AdmissionRequest<K>,
        now: Timestamp,
    ) -> Result<Verdict, String> {
        if request
            .sub_resource
            .as_deref()
            .is_some_and(|s| !s.is_empty())
        {
            return Ok(Verdict::allow(Reason::NotApplicable));
        }
        let new = request.object.as_ref();
        let change = match request.operation {
            Operation::Create => Change::Create(new.ok_or("a CREATE without an object")?),
            Operation::Update => Change::Update {
                old: request
                    .old_object
                    .as_ref()
                    .ok_or("an UPDATE without an oldObject")?,
                new: new.ok_or("an UPDATE without an object")?,
            },
            Operation::Delete | Operation::Connect => {
                return Ok(Verdict::allow(Reason::NotApplicable));
            }
        };
        let context = Context {
            user: &request.user_info,
            now,
            dry_run: request.dry_run,
        };
        let charge = self.charge(&request.user_info, K::lane(endpoint, &change));
        Ok(rate::charged_to(charge, K::admit(self, endpoint, change, context)).await)
    }

    /// Whom the live calls of an admission by `user` in `lane` are charged to: the user, except
    /// the controller's identity (it applies everyone's reviews), which only the lane and the
    /// ceiling bound. A dry run is charged like the write it rehearses.
    fn charge(&self, user: &UserInfo, lane: Lane) -> Charge {
        let username = user.username.as_deref().unwrap_or_default();
        let controller =
            !username.is_empty() && username == self.limits.controller_username.as_str();
        Charge {
            caller: (!controller).then(|| username.into()),
            lane,
        }
    }
}

/// Who asks, when, and whether the request is a dry run.
#[derive(Clone, Copy)]
struct Context<'a> {
    user: &'a UserInfo,
    now: Timestamp,
    dry_run: bool,
}

/// Dispatch from an endpoint and a typed change to the rules.
trait Admit: Sized {
    /// The live-call lane of `change` at `endpoint`.
    fn lane(endpoint: Endpoint, change: &Change<'_, Self>) -> Lane;

    fn admit<C: Lookup>(
        webhook: &Webhook<C>,
        endpoint: Endpoint,
        change: Change<'_, Self>,
        context: Context<'_>,
    ) -> impl std::future::Future<Output = Verdict> + Send;
}

impl Admit for APIKey {
    /// An approval or revocation written on an existing key is a review; a CREATE, even one
    /// carrying an approval, is a request.
    fn lane(_endpoint: Endpoint, change: &Change<'_, Self>) -> Lane {
        match change {
            Change::Update { old, new } if old.spec.approval != new.spec.approval => Lane::Review,
            _ => Lane::Request,
        }
    }

    async fn admit<C: Lookup>(
        webhook: &Webhook<C>,
        endpoint: Endpoint,
        change: Change<'_, Self>,
        context: Context<'_>,
    ) -> Verdict {
        if endpoint == Endpoint::MutateKeys
            && rules::approval::controller_applies(&webhook.limits, &change, context.user)
        {
            rules::approval::check_controller_review(&webhook.lookup, change).await
        } else if endpoint == Endpoint::MutateKeys {
            rules::mutate::mutate_key(
                &webhook.lookup,
                &webhook.limits,
                change,
                context.user,
                context.now,
            )
            .await
        } else {
            let Context { user, now, dry_run } = context;
            rules::apikey::validate_key(
                &webhook.lookup,
                &webhook.limits,
                change,
                user,
                now,
                dry_run,
            )
            .await
        }
    }
}

impl Admit for APIProduct {
    fn lane(_endpoint: Endpoint, _change: &Change<'_, Self>) -> Lane {
        Lane::Request
    }

    async fn admit<C: Lookup>(
        webhook: &Webhook<C>,
        _endpoint: Endpoint,
        change: Change<'_, Self>,
        _context: Context<'_>,
    ) -> Verdict {
        rules::apiproduct::validate_product(&webhook.lookup, change).await
    }
}

impl Admit for APIKeyApproval {
    fn lane(_endpoint: Endpoint, _change: &Change<'_, Self>) -> Lane {
        Lane::Review
    }

    async fn admit<C: Lookup>(
        webhook: &Webhook<C>,
        endpoint: Endpoint,
        change: Change<'_, Self>,
        context: Context<'_>,
    ) -> Verdict {
        if endpoint == Endpoint::MutateApprovals {
            rules::approval::mutate_approval(&webhook.lookup, change, context.user, context.now)
                .await
        } else {
            rules::approval::validate_approval(&webhook.lookup, change, context.user).await
        }
    }
}

impl Admit for APIKeyRequest {
    fn lane(_endpoint: Endpoint, _change: &Change<'_, Self>) -> Lane {
        Lane::Request
    }

    async fn admit<C: Lookup>(
        webhook: &Webhook<C>,
        _endpoint: Endpoint,
        change: Change<'_, Self>,
        context: Context<'_>,
    ) -> Verdict {
        rules::apikeyrequest::validate_request(
            &webhook.lookup,
            &webhook.limits,
            change,
            context.user,
        )
        .await
    }
}

fn respond<K: Resource>(
    endpoint: Endpoint,
    request: &AdmissionRequest<K>,
    operation: &'static str,
    verdict: Verdict,
) -> Reply {
    let mut response = AdmissionResponse::from(request);
    response.types = v1_types();
    let reason = verdict.reason;
    if !verdict.warnings.is_empty() {
        response.warnings = Some(verdict.warnings);
    }
    if verdict.reason.allows() {
        if !verdict.patch.is_empty() {
            response = match response.with_patch(json_patch::Patch(verdict.patch)) {
                Ok(response) => response,
                Err(err) => {
                    return malformed::bad(
                        endpoint,
                        Some(&request.uid),
                        operation,
                        &format!("devportal could not encode its patch: {err}"),
                    );
                }
            };
        }
    } else {
        let (code, status_reason) = reason.status();
        response.allowed = false;
        response.result = Status::failure(&verdict.message, status_reason).with_code(code);
    }
    Reply {
        http_status: 200,
        body: serde_json::to_vec(&response.into_review()).unwrap_or_default(),
        outcome: Outcome {
            endpoint,
            operation,
            reason,
        },
    }
}
