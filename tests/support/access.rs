//! What a persona may do, asked the way the API server answers it: `kubectl auth can-i`, a
//! SubjectAccessReview as the webhook makes it, and the 403 a real request gets.

use std::time::Duration;

use devportal::resources::APIProduct;
use k8s_openapi::api::authorization::v1::{
    ResourceAttributes, SubjectAccessReview, SubjectAccessReviewSpec,
};
use kube::api::PostParams;
use kube::{Api, Resource};

use super::control_plane::control_plane;
use super::personas::Persona;
use super::waits::eventually;

/// A resource as kubectl and RBAC name it, with its group: `apikeys.devportal.kuadrant.io`.
pub fn qualified<K: Resource<DynamicType = ()>>() -> String {
    format!("{}.{}", K::plural(&()), K::group(&()))
}

/// `kubectl auth can-i <args>` as `persona`: the API server's own answer.
pub fn can_i(persona: Persona, args: &[&str]) -> bool {
    let mut full = vec!["auth", "can-i"];
    full.extend_from_slice(args);
    let out = control_plane().kubectl(persona, &full, None);
    let answer = String::from_utf8_lossy(&out.stdout).trim().to_string();
    match answer.split_whitespace().next() {
        Some("yes") => true,
        Some("no") => false,
        _ => panic!(
            "kubectl auth can-i {args:?} as {} gave no answer: {answer:?} {}",
            persona.name(),
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

/// Asserts what `kubectl auth can-i` answers for each `(expected, args)`.
pub fn expect_can_i(persona: Persona, cases: &[(bool, &[&str])]) {
    for (expected, args) in cases {
        assert_eq!(
            can_i(persona, args),
            *expected,
            "{} {} `kubectl auth can-i {}`",
            persona.name(),
            if *expected {
                "should pass"
            } else {
                "should fail"
            },
            args.join(" ")
        );
    }
}

/// Asks what the webhook asks (as devportal's identity, exactly as it does): may this user
/// `approve` the product?
pub async fn may_approve(user: &str, groups: &[&str], namespace: &str, product: &str) -> bool {
    let review = SubjectAccessReview {
        spec: SubjectAccessReviewSpec {
            user: Some(user.into()),
            groups: Some(groups.iter().map(|g| g.to_string()).collect()),
            resource_attributes: Some(ResourceAttributes {
                group: Some(APIProduct::group(&()).into()),
                resource: Some(APIProduct::plural(&()).into()),
                verb: Some("approve".into()),
                namespace: Some(namespace.into()),
                name: Some(product.into()),
                ..ResourceAttributes::default()
            }),
            ..SubjectAccessReviewSpec::default()
        },
        ..SubjectAccessReview::default()
    };
    let controller = control_plane().client(Persona::Controller).await;
    Api::<SubjectAccessReview>::all(controller)
        .create(&PostParams::default(), &review)
        .await
        .expect("devportal's identity creates SubjectAccessReviews")
        .status
        .expect("a SubjectAccessReview has a status")
        .allowed
}

/// Asserts that `result` is the API server's 403.
pub fn assert_forbidden<T: std::fmt::Debug>(what: &str, result: Result<T, kube::Error>) {
    match result {
        Err(kube::Error::Api(status)) if status.code == 403 => {}
        other => panic!("{what}: expected 403 Forbidden, got {other:?}"),
    }
}

/// Waits (bounded) until the API server's RBAC authorizer, which reads bindings from a watch
/// cache, has seen a binding just made: until `kubectl auth can-i <args>` says yes.
pub async fn binding_in_effect(persona: Persona, args: &[&str]) {
    eventually(
        &format!("`kubectl auth can-i {}` to pass", args.join(" ")),
        Duration::from_secs(10),
        || async { can_i(persona, args).then_some(()) },
    )
    .await;
}
