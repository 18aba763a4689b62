//! Kubernetes Events about transitions, written directly (see [`Context::publish_event`]).

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Resource};

use super::context::Context;

impl Context {
    /// Records a Kubernetes Event about `object`. Events are best effort: a failure is logged.
    /// Events are created directly rather than through kube's `Recorder`, which keeps every
    /// recent event in memory to aggregate repeats: the controller emits one per transition, so
    /// there is nothing to aggregate, and at thousands of keys that cache was most of its memory.
    pub(super) async fn publish_event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        let regarding = object.object_ref(&());
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let event = Event {
            metadata: kube::api::ObjectMeta {
                // As kubectl and client-go name events: the object's name and a unique suffix.
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or("object"),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..kube::api::ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.into()),
            note: Some(note.chars().take(1000).collect()),
            action: Some("Reconcile".into()),
            reporting_controller: Some("devportal.kuadrant.io/controller".into()),
            reporting_instance: Some(self.identity.chars().take(128).collect()),
            regarding: Some(regarding),
            ..Event::default()
        };
        if let Err(error) = Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&kube::api::PostParams::default(), &event)
            .await
        {
            tracing::warn!(%error, "could not record an event");
        }
    }
}
