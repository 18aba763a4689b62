//! A process-wide budget for admission request bodies held in memory.
//!
//! The per-request cap bounds one body; this bounds all of them together. Without it, a client
//! that opens a hundred connections and sends each a body just under the cap, slowly, holds
//! hundreds of megabytes of the webhook's memory — past its container limit, and with
//! `failurePolicy: Fail` every APIKey and APIProduct write in the cluster fails while it restarts.
//! Bodies reserve their bytes as they arrive; a body that does not fit is refused with 503, which
//! the API server retries or reports, and the memory stays bounded.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes are reserved in units of this size.
const UNIT: usize = 1024;

/// The shared budget.
#[derive(Clone, Debug)]
pub struct BodyBudget {
    units: Arc<Semaphore>,
}

/// Bytes a request holds against the budget; returned when dropped.
#[derive(Debug, Default)]
pub struct Reservation {
    permit: Option<OwnedSemaphorePermit>,
    bytes: usize,
}

impl BodyBudget {
    /// A budget of `total_bytes` (at least one unit).
    pub fn new(total_bytes: usize) -> Self {
        Self {
            units: Arc::new(Semaphore::new(total_bytes.div_ceil(UNIT).max(1))),
        }
    }

    /// Grows `reservation` so it covers `bytes` in all; false (and unchanged) when the budget
    /// cannot cover it right now.
    pub fn grow(&self, reservation: &mut Reservation, bytes: usize) -> bool {
        let held = reservation.bytes.div_ceil(UNIT);
        let needed = bytes.div_ceil(UNIT);
        if needed <= held {
            reservation.bytes = reservation.bytes.max(bytes);
            return true;
        }
        let Ok(more) = u32::try_from(needed - held) else {
            return false;
        };
        let Ok(permit) = self.units.clone().try_acquire_many_owned(more) else {
            return false;
        };
        match reservation.permit.as_mut() {
            Some(held) => held.merge(permit),
            None => reservation.permit = Some(permit),
        }
        reservation.bytes = bytes;
        true
    }

    /// Bytes still free.
    pub fn available(&self) -> usize {
        self.units.available_permits() * UNIT
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_share_the_budget_and_give_it_back() {
        let budget = BodyBudget::new(10 * UNIT);
        let mut first = Reservation::default();
        assert!(budget.grow(&mut first, 3 * UNIT));
        assert!(budget.grow(&mut first, 6 * UNIT + 1));
        assert_eq!(budget.available(), 3 * UNIT);
        let mut second = Reservation::default();
        assert!(!budget.grow(&mut second, 4 * UNIT), "over budget");
        assert!(budget.grow(&mut second, 3 * UNIT));
        assert_eq!(budget.available(), 0);
        drop(first);
        assert_eq!(budget.available(), 7 * UNIT);
        drop(second);
        assert_eq!(budget.available(), 10 * UNIT);
    }
}
