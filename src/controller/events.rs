//! Kubernetes Events about transitions, written directly (see [`Context::publish_event`]), within
//! the [`EventBudget`](super::event_budget::EventBudget).

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::{Api, Resource};

use super::context::Context;

impl Context {
    /// Records a Kubernetes Event about `object`, within the [`EventBudget`]. Events are best
    /// effort: a failure is logged.
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
        self.publish_event_about(object.object_ref(&()), warning, reason, note)
            .await;
    }

    /// [`Self::publish_event`] about the object `regarding` refers to (one of a kind devportal
    /// has no type for, such as a `Kuadrant` CR).
    pub(super) async fn publish_event_about(
        &self,
        regarding: ObjectReference,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        if !self.event_budget.allows(warning) {
            self.metrics.controller.event_suppressed(reason);
            return;
        }
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let event = Event {
            metadata: kube::api::ObjectMeta {
                name: Some(event_name(
                    regarding.name.as_deref().unwrap_or("object"),
                    now.as_nanosecond(),
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

/// An Event name as client-go builds them — the object's name, a dot, a unique hex suffix — that
/// always fits a DNS subdomain (253 characters, each dot-separated part starting and ending with
/// a letter or digit), however long the object's name is.
fn event_name(object: &str, nanos: i128) -> String {
    let suffix = format!("{:x}", nanos.max(0));
    let room = 253 - 1 - suffix.len();
    let mut prefix: String = object.chars().take(room).collect();
    while prefix.ends_with(|c: char| !c.is_ascii_alphanumeric()) {
        prefix.pop();
    }
    if prefix.is_empty() {
        prefix.push_str("object");
    }
    format!("{prefix}.{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_fit_for_any_object_name() {
        let nanos = 1_764_547_200_123_456_789;
        assert_eq!(event_name("mine", nanos), format!("mine.{nanos:x}"));
        let long = format!("{}-{}", "a".repeat(240), "b".repeat(12));
        let name = event_name(&long, nanos);
        assert!(name.len() <= 253, "{}", name.len());
        // Truncation never leaves a part ending in '-' or '.'.
        let cut = format!("{}-{}", "a".repeat(235), "b".repeat(20));
        let name = event_name(&cut, nanos);
        assert!(name.len() <= 253);
        assert!(!name.contains("-."), "{name}");
    }
}
