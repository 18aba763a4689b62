//! The report of `Kuadrant` CRs outside the enforcement namespace: devportal never follows one
//! (a tenant may be able to create it, see [`super::enforcement_namespace`]), so it says so — the
//! gauge `devportal_kuadrant_namespace_mismatch`, a warning log line and a warning Event on each
//! CR — and leaves the decision to the operator.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use kube::api::ObjectMeta;
use tokio_util::sync::CancellationToken;

use super::context::Context;
use super::enforcement_namespace::list;
use crate::names::{KUADRANT_ELSEWHERE_REASON, KUADRANT_GROUP, KUADRANT_VERSION};

/// Every `poll` while this replica is active, until `shutdown`: lists the Kuadrant CRs and
/// reports those outside the enforcement namespace — the gauge
/// `devportal_kuadrant_namespace_mismatch` (how many), and for each one newly seen a warning log
/// line and a warning Event on the CR. Never moves anything.
pub(super) async fn report(ctx: Arc<Context>, poll: Duration, shutdown: CancellationToken) {
    let namespace = ctx.enforcement.get();
    let mut reported: HashSet<String> = HashSet::new();
    let mut forbidden_logged = false;
    loop {
        if ctx.active() {
            match list(&ctx.client).await {
                Ok(crs) => {
                    let elsewhere: Vec<&ObjectMeta> = crs
                        .iter()
                        .filter(|m| m.deletion_timestamp.is_none())
                        .filter(|m| m.namespace.as_deref() != Some(namespace.as_str()))
                        .collect();
                    ctx.metrics
                        .controller
                        .set_kuadrant_elsewhere(elsewhere.len());
                    let now: HashSet<String> =
                        elsewhere.iter().filter_map(|m| m.uid.clone()).collect();
                    for cr in elsewhere {
                        if cr.uid.as_ref().is_some_and(|uid| !reported.contains(uid)) {
                            warn_about(&ctx, cr, &namespace).await;
                        }
                    }
                    reported = now;
                }
                Err(kube::Error::Api(status)) if status.code == 403 => {
                    if !forbidden_logged {
                        tracing::warn!(message = %status.message, "cannot list kuadrants.kuadrant.io: a Kuadrant CR outside the enforcement namespace goes unreported; grant `list` on them");
                        forbidden_logged = true;
                    }
                }
                Err(error) => tracing::warn!(%error, "looking up Kuadrant CRs failed"),
            }
        } else {
            ctx.metrics.controller.set_kuadrant_elsewhere(0);
            reported.clear();
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// The report of one Kuadrant CR outside `enforcement`: a log line and an Event on the CR.
async fn warn_about(ctx: &Context, cr: &ObjectMeta, enforcement: &str) {
    let cr_namespace = cr.namespace.clone().unwrap_or_default();
    let name = cr.name.clone().unwrap_or_default();
    let note = mismatch_note(&cr_namespace, &name, enforcement);
    tracing::warn!(kuadrant = %format!("{cr_namespace}/{name}"), enforcement_namespace = %enforcement, "{note}");
    let regarding = ObjectReference {
        api_version: Some(format!("{KUADRANT_GROUP}/{KUADRANT_VERSION}")),
        kind: Some("Kuadrant".into()),
        namespace: Some(cr_namespace),
        name: Some(name),
        uid: cr.uid.clone(),
        resource_version: cr.resource_version.clone(),
        field_path: None,
    };
    ctx.publish_event_about(regarding, true, KUADRANT_ELSEWHERE_REASON, &note)
        .await;
}

/// What a Kuadrant CR outside the enforcement namespace means, and what to do about it.
fn mismatch_note(namespace: &str, name: &str, enforcement: &str) -> String {
    format!(
        "Kuadrant {namespace}/{name} is outside devportal's enforcement namespace {enforcement:?}: \
         devportal writes API-key Secrets only to {enforcement:?} and does not follow a Kuadrant CR. \
         If kuadrant-operator serves this CR (its AuthConfigs are in {namespace:?}), keys do not \
         work at the gateway until devportal runs with --enforcement-namespace={namespace}; \
         otherwise check who created it and remove it"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_names_the_flag_to_set() {
        let note = mismatch_note("tenant", "kuadrant", "kuadrant-system");
        assert!(
            note.starts_with("Kuadrant tenant/kuadrant is outside")
                && note.contains("--enforcement-namespace=tenant")
                && note.contains("does not follow"),
            "{note}"
        );
    }
}
