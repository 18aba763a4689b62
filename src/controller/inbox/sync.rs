//! Keeping one APIKeyRequest in step with its APIKey: [`plan`] says what to write, [`Write`]
//! writes it.
//!
//! The controller owns the whole request. A new one is created with `POST` and gets its first
//! status with a `PUT` exact on the version the create returned; a status that changes later is
//! `PUT` on the cached version (a conflict means the cache is behind: the next reconcile goes on
//! from the newer version). Only a changed spec is server-side-applied, so labels, annotations
//! and finalizers others put on the request stay. Whatever someone else writes into the status is
//! replaced.

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};

use super::desired::{self, request_phase};
use crate::Result;
use crate::controller::apikey::phase::Evaluation;
use crate::controller::context::Context;
use crate::names::key_reason::AUTO_APPROVED;
use crate::names::{
    APIKEY_ANNOTATION, APIKEY_UID_LABEL, CONTROLLER_MANAGER, EMAIL_VERIFIED_ANNOTATION,
};
use crate::resources::cached_request::status_digest;
use crate::resources::{
    APIKey, APIKeyPhase, APIKeyRequest, APIKeyRequestSpec, APIKeyRequestStatus, APIProduct,
};

/// What keeping a key's request in step takes.
pub(super) enum Plan {
    /// The request says what it should.
    Nothing,
    /// The key has no request (its product is gone): remove any it has.
    Remove,
    /// Create or update it.
    Write(Box<Write>),
}

/// The writes one request needs.
pub(super) struct Write {
    namespace: String,
    name: String,
    /// The key's uid.
    uid: String,
    spec: APIKeyRequestSpec,
    /// Not in the cache: create it.
    create: bool,
    /// In the cache with another spec: apply the spec.
    spec_changed: bool,
    /// The cached resourceVersion.
    cached_version: Option<String>,
    /// The status to write, when the request does not carry it yet.
    status: Option<APIKeyRequestStatus>,
    /// The phase the stored status reports.
    stored_phase: Option<APIKeyPhase>,
}

/// What keeping `key`'s request in step with the key and `evaluation` takes, from the cache.
pub(super) fn plan(
    key: &APIKey,
    product: Option<&APIProduct>,
    evaluation: &Evaluation,
    ctx: &Context,
) -> Plan {
    let Some(namespace) = super::request_namespace(key, product) else {
        return Plan::Remove;
    };
    let uid = key.metadata.uid.clone().unwrap_or_default();
    let name = desired::request_name(key);
    let cached = ctx.inbox.requests.get(namespace, &name);
    if let Some(other) = cached.as_ref().filter(|r| r.key_uid() != Some(&uid)) {
        tracing::warn!(request = %format!("{namespace}/{name}"), other_uid = ?other.key_uid(), "an APIKeyRequest of this name belongs to another APIKey; not overwriting it");
        return Plan::Nothing;
    }
    let spec = desired::request_spec(key);
    let spec_changed = cached.as_ref().is_some_and(|r| !r.spec_is(&spec));
    let approvals = ctx.inbox.approvals_of(namespace, &name);
    let applied = approvals
        .iter()
        .find(|a| desired::carries(key, a))
        .map(|a| a.name_any());
    let previous = cached.as_ref().map(|r| r.conditions()).unwrap_or_default();
    let status = desired::request_status(
        key,
        evaluation.phase,
        &evaluation.message,
        applied,
        &previous,
        Timestamp::now(),
    );
    let cached_version = cached.as_ref().and_then(|r| r.resource_version());
    // Written already from this very version of the request: the cache has not caught up yet.
    // A memo of another version is spent (the cache moved on): it goes.
    let already = {
        let mut memo = ctx.inbox.status_written.lock().expect("written");
        match memo.get(&uid) {
            Some((version, digest)) if *version == cached_version => {
                *digest == status_digest(&status)
            }
            Some(_) => {
                memo.remove(&uid);
                false
            }
            None => false,
        }
    };
    let status =
        (!cached.as_ref().is_some_and(|r| r.status_is(&status)) && !already).then_some(status);
    if cached.is_some() && !spec_changed && status.is_none() {
        return Plan::Nothing;
    }
    Plan::Write(Box::new(Write {
        namespace: namespace.to_string(),
        name,
        uid,
        spec,
        create: cached.is_none(),
        spec_changed,
        cached_version,
        status,
        stored_phase: cached.as_ref().and_then(|r| r.phase()),
    }))
}

impl Write {
    /// Writes the request: create or spec, then status; an Event when its phase changes.
    pub(super) async fn run(
        self,
        key: &APIKey,
        evaluation: &Evaluation,
        ctx: &Context,
    ) -> Result<()> {
        let api = Api::<APIKeyRequest>::namespaced(ctx.client.clone(), &self.namespace);
        let params = PostParams {
            field_manager: Some(CONTROLLER_MANAGER.into()),
            ..PostParams::default()
        };
        let mut based_on = self.cached_version.clone();
        if self.create {
            match api.create(&params, &self.object(key)).await {
                Ok(created) => based_on = created.metadata.resource_version,
                // Created meanwhile (the cache is behind, or another APIKey's request holds the
                // name): its watch event brings the key's next reconcile, which goes on from it.
                Err(kube::Error::Api(status)) if status.code == 409 => return Ok(()),
                Err(error) => return Err(error.into()),
            }
        } else if self.spec_changed {
            let applied = api
                .patch(
                    &self.name,
                    &PatchParams::apply(CONTROLLER_MANAGER).force(),
                    &Patch::Apply(&self.object(key)),
                )
                .await?;
            based_on = applied.metadata.resource_version;
        }
        let mut request = self.object(key);
        let Some(status) = self.status else {
            return Ok(());
        };
        request.metadata.resource_version = based_on.clone();
        request.status = Some(status);
        // A conflict (the request changed since the cache saw it) is retried soon.
        api.replace_status(&self.name, &params, &request).await?;
        let status = request.status.as_ref().expect("set above");
        ctx.inbox
            .status_written
            .lock()
            .expect("written")
            .insert(self.uid.clone(), (based_on, status_digest(status)));
        // An automatic approval needs no owner: the key's own Event tells its requester.
        if evaluation.reason == AUTO_APPROVED {
            return Ok(());
        }
        let phase = request_phase(evaluation.phase);
        let before = ctx
            .inbox
            .announced
            .lock()
            .expect("announced")
            .insert(self.uid, phase);
        if before != Some(phase) && self.stored_phase.map(APIKeyPhase::as_str) != Some(phase) {
            ctx.publish_event(
                &request,
                evaluation.phase == APIKeyPhase::Failed,
                phase,
                &evaluation.message,
            )
            .await;
        }
        Ok(())
    }

    /// The request with its metadata and spec.
    fn object(&self, key: &APIKey) -> APIKeyRequest {
        let mut request = APIKeyRequest::new(&self.name, self.spec.clone());
        request.metadata.namespace = Some(self.namespace.clone());
        request.metadata.labels = Some([(APIKEY_UID_LABEL.to_string(), self.uid.clone())].into());
        let mut annotations = std::collections::BTreeMap::from([(
            APIKEY_ANNOTATION.to_string(),
            format!("{}/{}", key.namespace().unwrap_or_default(), key.name_any()),
        )]);
        // Whether the requester's e-mail came from their identity, as the webhook marked the key.
        if let Some(verified) = key.annotations().get(EMAIL_VERIFIED_ANNOTATION) {
            annotations.insert(EMAIL_VERIFIED_ANNOTATION.to_string(), verified.clone());
        }
        request.metadata.annotations = Some(annotations);
        request
    }
}
