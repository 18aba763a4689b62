//! Kubernetes-style status conditions that keep their transition time while unchanged.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use k8s_openapi::jiff::Timestamp;

/// One condition as a reconcile wants it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Desired {
    /// Condition type.
    pub type_: &'static str,
    /// Whether it holds.
    pub status: bool,
    /// PascalCase reason.
    pub reason: &'static str,
    /// Human-readable message.
    pub message: String,
}

impl Desired {
    /// A condition of `type_` that holds (`status: True`).
    pub fn holds(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            type_,
            status: true,
            reason,
            message: message.into(),
        }
    }

    /// A condition of `type_` that does not hold (`status: False`).
    pub fn fails(type_: &'static str, reason: &'static str, message: impl Into<String>) -> Self {
        Self {
            status: false,
            ..Self::holds(type_, reason, message)
        }
    }
}

/// Builds the full condition list from `desired`, keeping `lastTransitionTime` from `previous`
/// for every condition whose status did not change.
pub fn merge(
    previous: &[Condition],
    desired: Vec<Desired>,
    generation: Option<i64>,
    now: Timestamp,
) -> Vec<Condition> {
    desired
        .into_iter()
        .map(|d| {
            let status = if d.status { "True" } else { "False" };
            let since = previous
                .iter()
                .find(|c| c.type_ == d.type_ && c.status == status)
                .map(|c| c.last_transition_time.clone())
                .unwrap_or(Time(now));
            Condition {
                type_: d.type_.to_string(),
                status: status.to_string(),
                reason: d.reason.to_string(),
                message: d.message,
                observed_generation: generation,
                last_transition_time: since,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_time_survives_while_the_status_holds() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let t1: Timestamp = "2026-01-01T00:05:00Z".parse().unwrap();
        let first = merge(
            &[],
            vec![Desired::holds("Ready", "Ok", "fine")],
            Some(1),
            t0,
        );
        let again = merge(
            &first,
            vec![Desired::holds("Ready", "Ok", "still fine")],
            Some(2),
            t1,
        );
        assert_eq!(again[0].last_transition_time, Time(t0));
        assert_eq!(again[0].message, "still fine");
        assert_eq!(again[0].observed_generation, Some(2));
        let flipped = merge(
            &again,
            vec![Desired::fails("Ready", "Broken", "no")],
            Some(2),
            t1,
        );
        assert_eq!(flipped[0].last_transition_time, Time(t1));
        assert_eq!(flipped[0].status, "False");
    }
}
