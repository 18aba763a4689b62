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

    /// Include requests already approved or denied (default: only the pending ones).
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

fn phase_of(request: &APIKeyRequest) -> &'static str {
    phase(request.status.as_ref().map_or(&[], |s| &s.conditions))
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

/// Records the decision as an APIKeyApproval in the request's namespace.
pub async fn review(session: &Session, review: Review) -> Result<()> {
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
mod tests {
    use super::*;
    use serde_json::json;

    fn conditions(value: serde_json::Value) -> Vec<Condition> {
        serde_json::from_value(value).unwrap()
    }

    fn condition(type_: &str, status: &str) -> serde_json::Value {
        json!({"type": type_, "status": status, "reason": type_, "message": "",
               "lastTransitionTime": "2026-01-01T00:00:00Z"})
    }

    #[test]
    fn the_phase_is_derived_like_the_backstage_plugin_does() {
        assert_eq!(phase(&[]), "Pending");
        let approved = conditions(json!([
            condition("Approved", "True"),
            condition("Denied", "False")
        ]));
        assert_eq!(phase(&approved), "Approved");
        let denied = conditions(json!([
            condition("Approved", "False"),
            condition("Denied", "True")
        ]));
        assert_eq!(phase(&denied), "Denied");
        let expired = conditions(json!([
            condition("Expired", "True"),
            condition("Approved", "False")
        ]));
        assert_eq!(phase(&expired), "Pending", "neither approved nor denied");
    }

    #[test]
    fn a_review_names_the_request_and_leaves_the_stamps_to_the_webhook() {
        let deny = Review::deny(DenyArgs {
            request: "toys-x1".into(),
            reason: "use the sandbox".into(),
        });
        let approval = deny.approval();
        assert_eq!(approval.metadata.name, None);
        assert_eq!(approval.metadata.generate_name.as_deref(), Some("toys-x1-"));
        assert_eq!(approval.spec.api_key_request_ref.name, "toys-x1");
        assert!(!approval.spec.approved);
        assert_eq!(approval.spec.reason.as_deref(), Some("use the sandbox"));
        assert_eq!(approval.spec.reviewed_by, None);
        assert_eq!(approval.spec.reviewed_at, None);
        let long = Review::approve(ApproveArgs {
            request: "r".repeat(253),
            reason: None,
        });
        assert_eq!(long.approval().metadata.generate_name.unwrap().len(), 201);
    }

    #[test]
    fn long_use_cases_are_cut_in_the_table() {
        assert_eq!(truncated("short", 40), "short");
        assert_eq!(
            truncated(&"x".repeat(50), 10),
            format!("{}…", "x".repeat(9))
        );
    }

    #[test]
    fn an_email_is_shown_unverified_unless_devportal_marked_it_verified() {
        let request = |email: Option<&str>, verified: Option<&str>| {
            let mut r: APIKeyRequest = serde_json::from_value(serde_json::json!({
                "apiVersion": "devportal.kuadrant.io/v1alpha1", "kind": "APIKeyRequest",
                "metadata": {"name": "toys-x1", "namespace": "apps", "creationTimestamp": "2026-06-01T00:00:00Z"},
                "spec": {"apiProductRef": {"name": "toys"}, "planTier": "gold",
                         "requestedBy": {"userId": "consumer", "email": email},
                         "apiKeyRef": {"name": "k", "namespace": "team"}}
            }))
            .unwrap();
            if let Some(v) = verified {
                r.annotations_mut()
                    .insert(EMAIL_VERIFIED_ANNOTATION.into(), v.into());
            }
            r
        };
        let forged = request(Some("owners@shop.example"), Some("false"));
        assert_eq!(email(&forged), "owners@shop.example (unverified)");
        let old = request(Some("owners@shop.example"), None);
        assert_eq!(
            email(&old),
            "owners@shop.example (unverified)",
            "unmarked: unverified"
        );
        let real = request(Some("alice@example.org"), Some("true"));
        assert_eq!(email(&real), "alice@example.org");
        assert_eq!(email(&request(None, None)), "");
        let now: Timestamp = "2026-06-01T00:05:00Z".parse().unwrap();
        let table = table(&[forged], false, now).render("");
        let header = table.lines().next().unwrap();
        assert!(header.contains("REQUESTER   EMAIL"), "{table}");
        assert!(
            table.contains("owners@shop.example (unverified)"),
            "{table}"
        );
    }
}
