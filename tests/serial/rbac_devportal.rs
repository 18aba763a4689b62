//! devportal's own RBAC on the real control plane: its identity may do what its code does (Secrets,
//! APIKey status and finalizers, Events, SubjectAccessReviews, its Lease, its own webhook
//! configurations) and no more, asked with `kubectl auth can-i` and tried with real requests.
//!
//! The control plane is the bare one: no webhook is registered, so every refusal here is RBAC's.

use crate::support;

use devportal::names::{API_KEY_DATA, API_VERSION, CONTROLLER_MANAGER, FINALIZER, GROUP};
use devportal::resources::gateway::HTTPRoute;
use devportal::resources::kuadrant::{AuthPolicy, PlanPolicy};
use devportal::resources::{APIKey, APIKeyApproval, APIKeyPolicy, APIKeyRequest, APIProduct};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::api::core::v1::{ObjectReference, Secret};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::Api;
use kube::api::{DeleteParams, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use support::access::{assert_forbidden, expect_can_i, qualified};
use support::serial::exclusive_cluster;
use support::{
    Persona, SYSTEM_NAMESPACE, TestNamespace, client, control_plane, fixtures, stdout_of,
};

#[tokio::test]
async fn devportal_may_do_what_its_code_does_and_no_more() {
    let _serial = exclusive_cluster().await;
    let apiproducts = &qualified::<APIProduct>();
    let apikeys = &qualified::<APIKey>();
    let apikeyrequests = &qualified::<APIKeyRequest>();
    let apikeyapprovals = &qualified::<APIKeyApproval>();
    let ns = TestNamespace::new("rbac-devportal").await;
    let name = ns.name.as_str();
    let lease = format!("rbac-test-{}", std::process::id());

    expect_can_i(
        Persona::Controller,
        &[
            (true, &["create", "secrets", "-n", name]),
            (true, &["update", "secrets", "-n", name]),
            (false, &["patch", "secrets", "-n", name]),
            (true, &["delete", "secrets", "-n", name]),
            (true, &["watch", "secrets", "--all-namespaces"]),
            (
                true,
                &["patch", apikeys, "--subresource=status", "-n", name],
            ),
            (
                true,
                &["patch", apiproducts, "--subresource=status", "-n", name],
            ),
            // A status others made impossible to apply over is cleared with a PUT.
            (
                true,
                &["update", apikeys, "--subresource=status", "-n", name],
            ),
            (
                true,
                &["update", apiproducts, "--subresource=status", "-n", name],
            ),
            (true, &["patch", apikeys, "-n", name]),
            (
                true,
                &["update", apikeys, "--subresource=finalizers", "-n", name],
            ),
            // The owner's inbox: requests applied, their status, deleted with their key; the
            // approvals read (never written but for their status).
            (true, &["create", apikeyrequests, "-n", name]),
            (true, &["patch", apikeyrequests, "-n", name]),
            (
                true,
                &["patch", apikeyrequests, "--subresource=status", "-n", name],
            ),
            (true, &["delete", apikeyrequests, "-n", name]),
            (true, &["watch", apikeyrequests, "--all-namespaces"]),
            (true, &["watch", apikeyapprovals, "--all-namespaces"]),
            (
                true,
                &["patch", apikeyapprovals, "--subresource=status", "-n", name],
            ),
            (false, &["create", apikeyapprovals, "-n", name]),
            (false, &["delete", apikeyapprovals, "-n", name]),
            (
                true,
                &["watch", &qualified::<HTTPRoute>(), "--all-namespaces"],
            ),
            (
                true,
                &["watch", &qualified::<AuthPolicy>(), "--all-namespaces"],
            ),
            (
                true,
                &["watch", &qualified::<PlanPolicy>(), "--all-namespaces"],
            ),
            // APIKeyPolicies: watched, their audit written into their status, never written.
            (true, &["watch", &qualified::<APIKeyPolicy>()]),
            (
                true,
                &[
                    "patch",
                    &qualified::<APIKeyPolicy>(),
                    "--subresource=status",
                ],
            ),
            (false, &["create", &qualified::<APIKeyPolicy>()]),
            (false, &["delete", &qualified::<APIKeyPolicy>()]),
            // Namespaces: their labels watched, for the policies' selectors.
            (true, &["watch", "namespaces"]),
            (false, &["patch", &format!("namespaces/{name}")]),
            (true, &["create", "events.events.k8s.io", "-n", name]),
            (
                true,
                &["create", "subjectaccessreviews.authorization.k8s.io"],
            ),
            (
                true,
                &[
                    "update",
                    "leases.coordination.k8s.io",
                    "-n",
                    SYSTEM_NAMESPACE,
                ],
            ),
            (
                true,
                &[
                    "create",
                    "leases.coordination.k8s.io",
                    "-n",
                    SYSTEM_NAMESPACE,
                ],
            ),
            (true, &["get", "mutatingwebhookconfigurations/devportal"]),
            (
                true,
                &["patch", "validatingwebhookconfigurations/devportal"],
            ),
            // and no more:
            (false, &["update", "leases.coordination.k8s.io", "-n", name]),
            (
                false,
                &["create", "leases.coordination.k8s.io", "-n", "kube-system"],
            ),
            (
                false,
                &[
                    "delete",
                    "leases.coordination.k8s.io",
                    "-n",
                    SYSTEM_NAMESPACE,
                ],
            ),
            (
                false,
                &["patch", "mutatingwebhookconfigurations/someone-else"],
            ),
            (false, &["create", "validatingwebhookconfigurations"]),
            (false, &["create", apikeys, "-n", name]),
            (false, &["delete", apikeys, "-n", name]),
            (false, &["update", apiproducts, "-n", name]),
            (
                false,
                &["approve", &format!("{apiproducts}/toys"), "-n", name],
            ),
            (false, &["create", &qualified::<HTTPRoute>(), "-n", name]),
            (false, &["create", "pods", "-n", name]),
            (
                false,
                &[
                    "create",
                    "rolebindings.rbac.authorization.k8s.io",
                    "-n",
                    name,
                ],
            ),
        ],
    );

    let controller = client(Persona::Controller).await;
    let admin = client(Persona::Admin).await;

    // API-key Secrets: created (never applied over an existing one), deleted on revocation.
    let secrets = Api::<Secret>::namespaced(controller.clone(), name);
    let secret: Secret = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "apikey-test", "labels": {"app": "toystore"}},
        "stringData": {API_KEY_DATA: "not-a-real-key"},
    }))
    .unwrap();
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("devportal creates a Secret");
    secrets
        .delete("apikey-test", &DeleteParams::default())
        .await
        .expect("devportal deletes a Secret");

    // An APIKey's finalizer and status.
    Api::<APIProduct>::namespaced(admin.clone(), name)
        .create(
            &PostParams::default(),
            &fixtures::product("toys", "toystore"),
        )
        .await
        .expect("product");
    Api::<APIKey>::namespaced(client(Persona::Consumer).await, name)
        .create(
            &PostParams::default(),
            &fixtures::key("mine", "toys", "gold"),
        )
        .await
        .expect("key");
    let keys = Api::<APIKey>::namespaced(controller.clone(), name);
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": [FINALIZER]}})),
    )
    .await
    .expect("devportal adds its finalizer");
    keys.patch_status(
        "mine",
        &PatchParams::apply(CONTROLLER_MANAGER).force(),
        &Patch::Apply(json!({
            "apiVersion": API_VERSION, "kind": "APIKey",
            "status": {"phase": "Pending"},
        })),
    )
    .await
    .expect("devportal writes APIKey status");
    keys.patch(
        "mine",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .expect("devportal removes its finalizer");
    assert_forbidden(
        "devportal deleting an APIKey",
        keys.delete("mine", &DeleteParams::default()).await,
    );
    assert_forbidden(
        "devportal editing a product's spec",
        Api::<APIProduct>::namespaced(controller.clone(), name)
            .patch(
                "toys",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"description": "changed"}})),
            )
            .await,
    );

    // An Event, as kube-runtime's Recorder writes it.
    let event = Event {
        metadata: ObjectMeta {
            name: Some("rbac-test".into()),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(Timestamp::now())),
        action: Some("Reconcile".into()),
        reason: Some("Test".into()),
        note: Some("RBAC test".into()),
        type_: Some("Normal".into()),
        reporting_controller: Some("devportal".into()),
        reporting_instance: Some("rbac-test".into()),
        regarding: Some(ObjectReference {
            api_version: Some(API_VERSION.into()),
            kind: Some("APIKey".into()),
            name: Some("mine".into()),
            namespace: Some(name.into()),
            ..ObjectReference::default()
        }),
        ..Event::default()
    };
    Api::<Event>::namespaced(controller.clone(), name)
        .create(&PostParams::default(), &event)
        .await
        .expect("devportal records an Event");

    // The leader-election Lease: in devportal-system only.
    let new_lease = |holder: &str| Lease {
        metadata: ObjectMeta {
            name: Some(lease.clone()),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec {
            holder_identity: Some(holder.into()),
            lease_duration_seconds: Some(15),
            ..LeaseSpec::default()
        }),
    };
    let own_leases = Api::<Lease>::namespaced(controller.clone(), SYSTEM_NAMESPACE);
    let mut held = own_leases
        .create(&PostParams::default(), &new_lease("replica-a"))
        .await
        .expect("devportal creates its Lease");
    held.spec.as_mut().unwrap().holder_identity = Some("replica-b".into());
    let replaced = own_leases
        .replace(&lease, &PostParams::default(), &held)
        .await;
    Api::<Lease>::namespaced(admin.clone(), SYSTEM_NAMESPACE)
        .delete(&lease, &DeleteParams::default())
        .await
        .expect("the admin cleans up");
    replaced.expect("devportal takes its Lease over");
    let foreign = Api::<Lease>::namespaced(admin.clone(), name)
        .create(&PostParams::default(), &new_lease("someone"))
        .await
        .expect("the admin creates a Lease elsewhere");
    let foreign_leases = Api::<Lease>::namespaced(controller.clone(), name);
    assert_forbidden(
        "devportal updating a Lease outside its namespace",
        foreign_leases
            .replace(&lease, &PostParams::default(), &foreign)
            .await,
    );
    assert_forbidden(
        "devportal creating a Lease outside its namespace",
        foreign_leases
            .create(&PostParams::default(), &new_lease("devportal"))
            .await,
    );

    // The webhook configurations named `devportal` (self-managed caBundle), and no other. Created
    // empty here when absent, so they change nothing; patched by server-side dry run, so an
    // installed devportal's (on an external cluster) are left as they are.
    let mut created_here = Vec::new();
    for kind in [
        "mutatingwebhookconfigurations",
        "validatingwebhookconfigurations",
    ] {
        let exists = control_plane()
            .kubectl(Persona::Admin, &["get", kind, "devportal"], None)
            .status
            .success();
        if !exists {
            let kind_name = if kind.starts_with("mutating") {
                "MutatingWebhookConfiguration"
            } else {
                "ValidatingWebhookConfiguration"
            };
            let empty = json!({
                "apiVersion": "admissionregistration.k8s.io/v1", "kind": kind_name,
                "metadata": {"name": "devportal"},
            });
            stdout_of(&control_plane().kubectl(
                Persona::Admin,
                &["create", "-f", "-"],
                Some(&empty.to_string()),
            ));
            created_here.push(kind);
        }
        let patch = json!({"metadata": {"annotations": {format!("{GROUP}/rbac-test"): "yes"}}});
        let ours = control_plane().kubectl(
            Persona::Controller,
            &[
                "patch",
                kind,
                "devportal",
                "--type=merge",
                "-p",
                &patch.to_string(),
                "--dry-run=server",
            ],
            None,
        );
        let theirs =
            control_plane().kubectl(Persona::Controller, &["get", kind, "-o", "name"], None);
        stdout_of(&ours);
        assert!(
            String::from_utf8_lossy(&theirs.stderr).contains("forbidden"),
            "devportal may not list every {kind}"
        );
    }
    for kind in created_here {
        stdout_of(&control_plane().kubectl(Persona::Admin, &["delete", kind, "devportal"], None));
    }
}
