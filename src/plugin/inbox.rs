//! `kubectl devportal requests`, `approve` and `deny`: the owner's inbox. devportal keeps one
//! APIKeyRequest per key request in the product's namespace; the owner reviews one by creating an
//! APIKeyApproval next to it. The admission webhook stamps the reviewer and the time and admits
//! the review only from someone who may `approve` the product, so neither is sent from here.

use clap::Args;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::{Api, ResourceExt};

use super::listing::ListArgs;
use super::output::{self, Table};
use super::session::Session;
use crate::Result;
use crate::names::EMAIL_VERIFIED_ANNOTATION;
use crate::resources::{APIKeyApproval, APIKeyApprovalSpec, APIKeyRequest, RequestNameRef};

/// Arguments of `requests`.
#[derive(Debug, Args)]
pub struct RequestsArgs {
    /// Namespace selection (the products' namespaces) and output format.
    #[command(flatten)]
    pub list: ListArgs,

    /// Include requests that await no decision: approved, denied, expired or failed (default:
    /// only the pending ones).
    #[arg(long)]
    pub all: bool,

    /// After listing, print a row for every change (until interrupted).
    #[arg(short = 'w', long)]
    pub watch: bool,
}

/// Arguments of `approve`.
#[derive(Debug, Args)]
pub struct ApproveArgs {
    /// The APIKeyRequest to approve (a NAME of `kubectl devportal requests`).
    pub request: String,

    /// Why, for the consumer.
    #[arg(long, value_name = "TEXT")]
    pub reason: Option<String>,
}

/// Arguments of `deny`.
#[derive(Debug, Args)]
pub struct DenyArgs {
    /// The APIKeyRequest to deny (a NAME of `kubectl devportal requests`).
    pub request: String,

    /// Why, for the consumer (required: a denial should say what to do instead).
    #[arg(long, value_name = "TEXT")]
    pub reason: String,
}

/// A decision on one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The APIKeyRequest.
    pub request: String,
    /// Approve (`true`) or deny.
    pub approved: bool,
    /// Why.
    pub reason: Option<String>,
}

impl Review {
    /// The decision of `approve`.
    pub fn approve(args: ApproveArgs) -> Self {
        Self {
            request: args.request,
            approved: true,
            reason: args.reason,
        }
    }

    /// The decision of `deny`.
    pub fn deny(args: DenyArgs) -> Self {
        Self {
            request: args.request,
            approved: false,
            reason: Some(args.reason),
        }
    }

    /// The APIKeyApproval that records the decision: named by the server after the request,
    /// with no reviewer or time (the admission webhook stamps both).
    pub fn approval(&self) -> APIKeyApproval {
        let mut approval = APIKeyApproval::new(
            "",
            APIKeyApprovalSpec {
                api_key_request_ref: RequestNameRef {
                    name: self.request.clone(),
                },
                approved: self.approved,
                reviewed_by: None,
                reviewed_at: None,
                reason: self.reason.clone(),
                message: None,
            },
        );
        approval.metadata.name = None;
        // Within the 253 characters of a name, with the server's 5-character suffix.
        let base: String = self.request.chars().take(200).collect();
        approval.metadata.generate_name = Some(format!("{base}-"));
        approval
    }
}

/// The phase of a request, derived from its conditions as the Kuadrant Backstage plugin derives
/// it: `Approved` if that condition holds, else `Denied` if that one does, else `Pending`.
pub fn phase(conditions: &[Condition]) -> &'static str {
    let holds = |type_: &str| {
        conditions
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    };
    if holds("Approved") {
        "Approved"
    } else if holds("Denied") {
        "Denied"
    } else {
        "Pending"
    }
}

/// The phase of a request: its key's, as the controller copies it into `status.phase`
/// (`Pending`, `Approved`, `Denied`, `Expired`, `Failed`); for a status without one, derived from
/// the conditions by [`phase`].
pub fn phase_of(request: &APIKeyRequest) -> &str {
    let status = request.status.as_ref();
    match status.and_then(|s| s.phase.as_deref()) {
        Some(phase) if !phase.is_empty() => phase,
        _ => phase(status.map_or(&[], |s| &s.conditions)),
    }
}

/// What `review` would change on `request`, if nothing: the decision it already carries (an
/// approval of an Approved request, a denial of a Denied one, either on a Failed one whose review
/// that counts is the same), as the line that says so.
pub fn unchanged(request: &APIKeyRequest, approved: bool) -> Option<String> {
    let status = request.status.as_ref()?;
    let same = status.approved == Some(approved);
    let phase = phase_of(request);
    let settled = match phase {
        "Approved" => approved,
        "Denied" => !approved,
        "Failed" => same,
        _ => false,
    };
    if !settled || !same {
        return None;
    }
    let decision = if approved { "approved" } else { "denied" };
    let by = status
        .reviewed_by
        .as_deref()
        .map(|r| format!(" by {}", output::inert(r)))
        .unwrap_or_default();
    let at = status
        .reviewed_at
        .as_ref()
        .map(|t| format!(" at {}", t.0))
        .unwrap_or_default();
    let via = status
        .approval_name
        .as_deref()
        .map(|n| format!(" (apikeyapproval/{n})"))
        .unwrap_or_default();
    Some(format!(
        "apikeyrequest/{} is already {decision}{by}{at}{via} and its key is {phase}: nothing to \
         do, no APIKeyApproval created\n",
        request.name_any()
    ))
}

/// Lists the requests: the pending ones, or with `--all` every one.
pub async fn list(session: &Session, args: &RequestsArgs) -> Result<()> {
    let api: Api<APIKeyRequest> = if args.list.all_namespaces {
        Api::all(session.client.clone())
    } else {
        Api::namespaced(session.client.clone(), &session.namespace)
    };
    let mut requests: Vec<APIKeyRequest> = api
        .list(&args.list.params())
        .await?
        .items
        .into_iter()
        .filter(|r| args.all || phase_of(r) == "Pending")
        .collect();
    requests.sort_by_key(|r| (r.namespace(), r.metadata.creation_timestamp.clone()));
    let empty = if args.all {
        "No key requests."
    } else {
        "No pending key requests (--all lists the decided ones too)."
    };
    let all = args.list.all_namespaces;
    output::print_list(
        &args.list,
        "apikeyrequest",
        &requests,
        |_| table(&requests, all, Timestamp::now()),
        empty,
    )?;
    if !args.watch {
        return Ok(());
    }
    super::watch::follow(api, &args.list, |request| {
        table(std::slice::from_ref(request), all, Timestamp::now())
    })
    .await
}

/// The requests as a table.
pub fn table(requests: &[APIKeyRequest], all_namespaces: bool, now: Timestamp) -> Table {
    let mut table = Table::of_objects(
        all_namespaces,
        &[
            "NAME",
            "PHASE",
            "PRODUCT",
            "PLAN",
            "REQUESTER",
            "EMAIL",
            "KEY",
            "USE CASE",
            "AGE",
        ],
    );
    for request in requests {
        let spec = &request.spec;
        let use_case = spec
            .use_case
            .as_deref()
            .and_then(|text| text.lines().next())
            .unwrap_or_default();
        table.object_row(
            request.metadata.namespace.as_deref(),
            vec![
                request.name_any(),
                phase_of(request).into(),
                spec.api_product_ref.name.clone(),
                spec.plan_tier.clone(),
                spec.requested_by
                    .as_ref()
                    .map(|r| r.user_id.clone())
                    .unwrap_or_default(),
                email(request),
                format!("{}/{}", spec.api_key_ref.namespace, spec.api_key_ref.name),
                truncated(use_case, 40),
                output::age(request.metadata.creation_timestamp.as_ref(), now),
            ],
        );
    }
    table
}

/// The requester's e-mail as the inbox shows it: marked `(unverified)` unless devportal marked it
/// as coming from the requester's identity ([`EMAIL_VERIFIED_ANNOTATION`]).
fn email(request: &APIKeyRequest) -> String {
    let Some(email) = request
        .spec
        .requested_by
        .as_ref()
        .and_then(|r| r.email.as_deref())
    else {
        return String::new();
    };
    let verified = request
        .annotations()
        .get(EMAIL_VERIFIED_ANNOTATION)
        .is_some_and(|v| v == "true");
    if verified {
        email.to_string()
    } else {
        format!("{email} (unverified)")
    }
}

fn truncated(text: &str, at: usize) -> String {
    if text.chars().count() <= at {
        text.to_string()
    } else {
        text.chars().take(at - 1).chain(['…']).collect()
    }
}

/// Records the decision as an APIKeyApproval in the request's namespace, unless the request
/// already carries it (then says so and writes nothing). A request that cannot be reviewed (its
/// key expired) is refused by devportal's webhook, whose message is printed.
pub async fn review(session: &Session, review: Review) -> Result<()> {
    let requests = Api::<APIKeyRequest>::namespaced(session.client.clone(), &session.namespace);
    // Without `get` on the request (or none of that name), the webhook's answer is the one.
    if let Ok(Some(request)) = requests.get_opt(&review.request).await
        && let Some(line) = unchanged(&request, review.approved)
    {
        return output::emit(&line);
    }
    let created = Api::<APIKeyApproval>::namespaced(session.client.clone(), &session.namespace)
        .create(
            &PostParams {
                field_manager: Some(crate::names::PLUGIN_MANAGER.into()),
                ..PostParams::default()
            },
            &review.approval(),
        )
        .await?;
    let decision = if review.approved {
        "approved"
    } else {
        "denied"
    };
    let reviewer = output::inert(created.spec.reviewed_by.as_deref().unwrap_or("you"));
    output::emit(&format!(
        "apikeyrequest/{} {decision} by {reviewer} (apikeyapproval/{} in namespace {})\n",
        review.request,
        created.name_any(),
        session.namespace
    ))
}

#[cfg(test)]
#[path = "inbox_tests.rs"]
mod tests;
