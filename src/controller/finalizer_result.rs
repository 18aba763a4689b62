//! What the APIKey finalizer's outcome means for the reconcile loop. One outcome is not a failure:
//! the API server answering 404 to the patch that adds or removes the finalizer. The key is gone
//! (deleted once its cleanup removed the finalizer, or by someone who forced it off), so there is
//! nothing left to guard; it is neither warned about nor counted in
//! `devportal_reconcile_errors_total`.

use kube::runtime::controller::Action;
use kube::runtime::finalizer::Error as FinalizerError;

use crate::{Error, Result};

/// The reconcile's result from the finalizer's: a NotFound on the finalizer patch is done.
pub(super) fn outcome(
    result: std::result::Result<Action, FinalizerError<Error>>,
) -> Result<Action> {
    match result {
        Ok(action) => Ok(action),
        Err(
            FinalizerError::AddFinalizer(kube::Error::Api(status))
            | FinalizerError::RemoveFinalizer(kube::Error::Api(status)),
        ) if status.code == 404 => {
            tracing::debug!("the key was gone before its finalizer patch: nothing to do");
            Ok(Action::await_change())
        }
        Err(error) => Err(Error::Finalizer(Box::new(error))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> kube::Error {
        kube::Error::Api(Box::new(Status::failure("x", "y").with_code(code)))
    }

    #[test]
    fn a_key_already_gone_when_its_finalizer_is_patched_is_done_not_failed() {
        for gone in [
            FinalizerError::RemoveFinalizer(api(404)),
            FinalizerError::AddFinalizer(api(404)),
        ] {
            assert_eq!(outcome(Err(gone)).unwrap(), Action::await_change());
        }
    }

    #[test]
    fn every_other_finalizer_failure_stays_an_error() {
        for failed in [
            FinalizerError::RemoveFinalizer(api(500)),
            FinalizerError::RemoveFinalizer(api(422)),
            FinalizerError::AddFinalizer(api(403)),
            FinalizerError::CleanupFailed(Error::Kube(api(404))),
            FinalizerError::ApplyFailed(Error::Kube(api(404))),
        ] {
            assert!(matches!(outcome(Err(failed)), Err(Error::Finalizer(_))));
        }
    }
}
