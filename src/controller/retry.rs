//! How soon a failed reconcile is retried: by what the error says about when it will clear.
//! Doubling from one second per consecutive failure of the same object, capped by class:
//! the API server briefly unavailable (a restart, an election, overload, a conflict): 5 s, so
//! every key converges within seconds of it answering again; a ResourceQuota that refuses (it is
//! lifted or frees up by itself): 15 s; a namespace being terminated or missing, and anything
//! else (RBAC, an invalid object, a bug): 5 minutes. Keys whose enforcement namespace was deleted
//! need no quick retries: its return reconciles every key at once
//! (`enforcement_namespace::returns`), and retrying thousands of keys every few seconds meanwhile
//! only loads the API server that is deleting their Secrets.

use std::time::Duration;

use crate::Error;

/// What a failure says about when a retry may succeed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum RetryClass {
    /// The API server was unreachable, overloaded or briefly unavailable, or another writer won
    /// a race (409): retry within seconds.
    Unavailable,
    /// A refusal that clears without anyone fixing devportal: a ResourceQuota is exhausted
    /// (objects go, or it is raised).
    ClearsSoon,
    /// The namespace is being terminated or is missing: its return is a trigger of its own.
    NamespaceGone,
    /// Anything else: someone has to change something.
    Other,
}

impl RetryClass {
    /// The longest wait between two retries of this class.
    fn longest(self) -> Duration {
        match self {
            Self::Unavailable => Duration::from_secs(5),
            Self::ClearsSoon => Duration::from_secs(15),
            Self::NamespaceGone | Self::Other => Duration::from_secs(300),
        }
    }
}

/// Classifies `error`, looking through the finalizer's wrapping to the API server's answer.
pub(super) fn classify(error: &Error) -> RetryClass {
    if error.is_transient() {
        return RetryClass::Unavailable;
    }
    match api_status(error) {
        Some(status) if namespace_gone(status) => RetryClass::NamespaceGone,
        Some(status) if quota_exceeded(status) => RetryClass::ClearsSoon,
        _ => RetryClass::Other,
    }
}

/// The wait before retry number `failures` (1 for the first) of an error of `class`.
pub(super) fn delay(failures: u32, class: RetryClass) -> Duration {
    let doubled = Duration::from_millis(500u64 << failures.clamp(1, 10));
    doubled.min(class.longest())
}

/// The API server's Status behind `error`, through the finalizer's wrapping.
fn api_status(error: &Error) -> Option<&kube::core::Status> {
    use kube::runtime::finalizer::Error as Finalizer;
    match error {
        Error::Kube(kube::Error::Api(status)) => Some(status),
        Error::Finalizer(boxed) => match boxed.as_ref() {
            Finalizer::ApplyFailed(inner) | Finalizer::CleanupFailed(inner) => api_status(inner),
            Finalizer::AddFinalizer(kube::Error::Api(status))
            | Finalizer::RemoveFinalizer(kube::Error::Api(status)) => Some(status),
            _ => None,
        },
        _ => None,
    }
}

/// The namespace written to is being terminated (403 `NamespaceTerminating`) or does not exist
/// (404 on the namespace itself, not on the object).
fn namespace_gone(status: &kube::core::Status) -> bool {
    let details = status.details.as_ref();
    let terminating = details
        .is_some_and(|d| d.causes.iter().any(|c| c.reason == "NamespaceTerminating"))
        || status.message.contains("because it is being terminated");
    let missing = details.is_some_and(|d| d.kind == "namespaces");
    (status.code == 403 && terminating) || (status.code == 404 && missing)
}

/// A 403 that is not RBAC's: a ResourceQuota is exceeded.
fn quota_exceeded(status: &kube::core::Status) -> bool {
    status.code == 403 && status.message.contains("exceeded quota")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;
    use kube::core::response::{StatusCause, StatusDetails};

    fn api(code: u16, reason: &str, message: &str) -> Status {
        Status::failure(message, reason).with_code(code)
    }

    fn kube_error(status: Status) -> Error {
        Error::Kube(kube::Error::Api(Box::new(status)))
    }

    fn terminating() -> Status {
        let mut status = api(
            403,
            "Forbidden",
            "secrets \"k\" is forbidden: unable to create new content in namespace \
             kuadrant-system because it is being terminated",
        );
        status.details = Some(StatusDetails {
            causes: vec![StatusCause {
                reason: "NamespaceTerminating".into(),
                message: "namespace kuadrant-system is being terminated".into(),
                field: "metadata.namespace".into(),
            }],
            name: "k".into(),
            group: String::new(),
            kind: "secrets".into(),
            uid: String::new(),
            retry_after_seconds: 0,
        });
        status
    }

    fn missing_namespace() -> Status {
        let mut status = api(404, "NotFound", "namespaces \"kuadrant-system\" not found");
        status.details = Some(StatusDetails {
            name: "kuadrant-system".into(),
            kind: "namespaces".into(),
            group: String::new(),
            uid: String::new(),
            causes: Vec::new(),
            retry_after_seconds: 0,
        });
        status
    }

    #[test]
    fn an_exhausted_quota_clears_soon_even_inside_the_finalizer() {
        let quota = api(
            403,
            "Forbidden",
            "secrets \"k\" is forbidden: exceeded quota: secrets, requested: count/secrets=1, \
             used: count/secrets=10, limited: count/secrets=10",
        );
        assert_eq!(classify(&kube_error(quota.clone())), RetryClass::ClearsSoon);
        let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(
            kube_error(quota),
        )));
        assert_eq!(classify(&wrapped), RetryClass::ClearsSoon);
    }

    #[test]
    fn a_terminating_or_missing_namespace_waits_for_its_return_not_for_quick_retries() {
        for status in [terminating(), missing_namespace()] {
            assert_eq!(
                classify(&kube_error(status.clone())),
                RetryClass::NamespaceGone
            );
            let wrapped = Error::Finalizer(Box::new(kube::runtime::finalizer::Error::ApplyFailed(
                kube_error(status),
            )));
            assert_eq!(classify(&wrapped), RetryClass::NamespaceGone);
        }
        // A missing object (not its namespace) is something else.
        let mut gone_secret = api(404, "NotFound", "secrets \"k\" not found");
        gone_secret.details = Some(StatusDetails {
            name: "k".into(),
            kind: "secrets".into(),
            group: String::new(),
            uid: String::new(),
            causes: Vec::new(),
            retry_after_seconds: 0,
        });
        assert_eq!(classify(&kube_error(gone_secret)), RetryClass::Other);
    }

    #[test]
    fn rbac_and_invalid_objects_wait_long_and_an_unavailable_api_server_briefly() {
        let rbac = api(
            403,
            "Forbidden",
            "secrets is forbidden: User \"system:serviceaccount:devportal-system:devportal\" \
             cannot create resource \"secrets\"",
        );
        assert_eq!(classify(&kube_error(rbac)), RetryClass::Other);
        assert_eq!(
            classify(&kube_error(api(422, "Invalid", "spec: Invalid value"))),
            RetryClass::Other
        );
        assert_eq!(
            classify(&Error::Invalid("no plan".into())),
            RetryClass::Other
        );
        for code in [409, 429, 500, 503] {
            assert_eq!(
                classify(&kube_error(api(code, "x", "y"))),
                RetryClass::Unavailable,
                "{code}"
            );
        }
    }

    #[test]
    fn retries_double_from_one_second_up_to_each_class_cap() {
        let waits = |class| {
            (1..=12)
                .map(|n| delay(n, class).as_secs())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            waits(RetryClass::Unavailable),
            [1, 2, 4, 5, 5, 5, 5, 5, 5, 5, 5, 5]
        );
        assert_eq!(
            waits(RetryClass::ClearsSoon),
            [1, 2, 4, 8, 15, 15, 15, 15, 15, 15, 15, 15]
        );
        assert_eq!(
            waits(RetryClass::Other),
            [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300]
        );
        assert_eq!(waits(RetryClass::NamespaceGone), waits(RetryClass::Other));
        // Within a minute of a quota being lifted, every key has been retried at least three
        // times.
        let first_minute: u64 = (1..=6)
            .map(|n| delay(n, RetryClass::ClearsSoon).as_secs())
            .sum();
        assert!(first_minute <= 60, "{first_minute}");
    }
}
