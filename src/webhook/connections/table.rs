//! The connections the webhook serves, and which one gives way when they reach the cap.
//!
//! Every accepted connection holds an entry until it ends. An entry is idle while no request is in
//! flight on it (during the TLS handshake, between HTTP/1.1 requests, with no open HTTP/2 stream)
//! and busy otherwise. When a new connection arrives at the cap, the connection idle the longest
//! is asked to close (gracefully) and the new one is served at once, so whoever holds idle
//! connections cannot make the API server's next call wait in the listen backlog. Busy
//! connections are never shed; while every connection is busy, or too many are still closing,
//! the newcomer waits for one to end.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The table of open connections, with its cap.
#[derive(Debug)]
pub struct Connections {
    cap: usize,
    state: Mutex<State>,
    /// Signalled whenever a connection ends.
    ended: Notify,
}

#[derive(Debug, Default)]
struct State {
    next_id: u64,
    entries: HashMap<u64, Entry>,
}

#[derive(Debug)]
struct Entry {
    in_flight: usize,
    /// When the last request ended (or the connection was accepted).
    idle_since: Instant,
    /// Cancelled when the connection is asked to close.
    close: CancellationToken,
}

impl Entry {
    fn closing(&self) -> bool {
        self.close.is_cancelled()
    }
}

/// What [`Connections::admit`] decided.
#[derive(Debug)]
pub enum Admission {
    /// Served; the handle holds its entry until dropped.
    Admitted(Conn),
    /// Served after asking the longest-idle connection to close.
    AdmittedByShedding(Conn),
    /// Every slot is busy or closing: wait for [`Connections::ended`] and try again.
    Full,
}

impl Connections {
    /// A table of at most `cap` open connections (at least one), plus at most `cap` more that
    /// are closing.
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Connections {
            cap: cap.max(1),
            state: Mutex::new(State::default()),
            ended: Notify::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Admits a connection accepted at `now`, shedding the longest-idle open connection when the
    /// open ones are at the cap.
    pub fn admit(self: &Arc<Self>, now: Instant) -> Admission {
        let mut state = self.state();
        let open = state.entries.values().filter(|e| !e.closing()).count();
        let mut shed = false;
        if open >= self.cap {
            if state.entries.len() >= 2 * self.cap {
                return Admission::Full;
            }
            let victim = state
                .entries
                .values()
                .filter(|e| !e.closing() && e.in_flight == 0)
                .min_by_key(|e| e.idle_since);
            match victim {
                Some(victim) => victim.close.cancel(),
                None => return Admission::Full,
            }
            shed = true;
        }
        let id = state.next_id;
        state.next_id += 1;
        let close = CancellationToken::new();
        state.entries.insert(
            id,
            Entry {
                in_flight: 0,
                idle_since: now,
                close: close.clone(),
            },
        );
        let conn = Conn {
            id,
            table: self.clone(),
            close,
        };
        if shed {
            Admission::AdmittedByShedding(conn)
        } else {
            Admission::Admitted(conn)
        }
    }

    /// Resolves after some connection ended since the last call (or right away if one did).
    pub async fn ended(&self) {
        self.ended.notified().await;
    }

    /// Connections open or closing.
    pub fn len(&self) -> usize {
        self.state().entries.len()
    }

    /// Whether no connection is left.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Asks every connection to close.
    pub fn close_all(&self) {
        for entry in self.state().entries.values() {
            entry.close.cancel();
        }
    }
}

/// One admitted connection; its entry goes when this is dropped.
#[derive(Debug)]
pub struct Conn {
    id: u64,
    table: Arc<Connections>,
    close: CancellationToken,
}

impl Conn {
    /// Counts a request in flight on this connection until the guard is dropped.
    pub fn request(&self) -> RequestGuard {
        if let Some(entry) = self.table.state().entries.get_mut(&self.id) {
            entry.in_flight += 1;
        }
        RequestGuard {
            id: self.id,
            table: self.table.clone(),
        }
    }

    /// Cancelled when the connection should close (shed, or the table closes everything).
    pub fn close_requested(&self) -> &CancellationToken {
        &self.close
    }

    /// When this connection has been idle for `timeout`, if it is idle now.
    pub fn idle_deadline(&self, timeout: Duration) -> Option<Instant> {
        let state = self.table.state();
        let entry = state.entries.get(&self.id)?;
        (entry.in_flight == 0).then(|| entry.idle_since + timeout)
    }

    /// Requests in flight on this connection.
    pub fn in_flight(&self) -> usize {
        let state = self.table.state();
        state.entries.get(&self.id).map_or(0, |e| e.in_flight)
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.table.state().entries.remove(&self.id);
        // One waiter at a time (the accept loop or the drain); a stored permit is not lost.
        self.table.ended.notify_one();
    }
}

/// A request in flight; see [`Conn::request`].
#[derive(Debug)]
pub struct RequestGuard {
    id: u64,
    table: Arc<Connections>,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        if let Some(entry) = self.table.state().entries.get_mut(&self.id) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            if entry.in_flight == 0 {
                entry.idle_since = Instant::now();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admitted(admission: Admission) -> Conn {
        match admission {
            Admission::Admitted(conn) => conn,
            other => panic!("expected a plain admission, got {other:?}"),
        }
    }

    fn shed(admission: Admission) -> Conn {
        match admission {
            Admission::AdmittedByShedding(conn) => conn,
            other => panic!("expected an admission by shedding, got {other:?}"),
        }
    }

    #[test]
    fn at_the_cap_the_longest_idle_connection_is_shed_first() {
        let table = Connections::new(3);
        let t0 = Instant::now();
        let a = admitted(table.admit(t0));
        let b = admitted(table.admit(t0 + Duration::from_secs(1)));
        let c = admitted(table.admit(t0 + Duration::from_secs(2)));
        // `a` is busy, so `b` is the longest idle.
        let _busy = a.request();
        let d = shed(table.admit(t0 + Duration::from_secs(3)));
        assert!(
            b.close_requested().is_cancelled(),
            "the oldest idle is shed"
        );
        assert!(!a.close_requested().is_cancelled(), "busy is never shed");
        assert!(!c.close_requested().is_cancelled());
        assert!(!d.close_requested().is_cancelled());
        assert_eq!(table.len(), 4, "the shed one counts until it has closed");

        // The next newcomer sheds `c`, not `b` again.
        let _e = shed(table.admit(t0 + Duration::from_secs(4)));
        assert!(c.close_requested().is_cancelled());
    }

    #[test]
    fn a_connection_idle_since_its_last_request_ranks_by_when_that_ended() {
        let table = Connections::new(2);
        let t0 = Instant::now() - Duration::from_secs(60);
        let old = admitted(table.admit(t0));
        let young = admitted(table.admit(t0 + Duration::from_secs(10)));
        // The old connection just finished a request: it is now the more recently idle one.
        drop(old.request());
        let _new = shed(table.admit(Instant::now()));
        assert!(young.close_requested().is_cancelled());
        assert!(!old.close_requested().is_cancelled());
    }

    #[test]
    fn when_every_connection_is_busy_newcomers_wait() {
        let table = Connections::new(2);
        let now = Instant::now();
        let a = admitted(table.admit(now));
        let b = admitted(table.admit(now));
        let (_ra, _rb) = (a.request(), b.request());
        assert!(matches!(table.admit(now), Admission::Full));
        assert_eq!(table.len(), 2);
        drop(_ra);
        let _c = shed(table.admit(now));
        assert!(a.close_requested().is_cancelled());
    }

    #[test]
    fn closing_connections_are_bounded_too() {
        let table = Connections::new(1);
        let now = Instant::now();
        let first = admitted(table.admit(now));
        let second = shed(table.admit(now));
        // One open and one closing: the table holds twice the cap and takes no more for now.
        assert!(first.close_requested().is_cancelled());
        assert!(matches!(table.admit(now), Admission::Full));
        drop(first);
        let _third = shed(table.admit(now));
        assert!(second.close_requested().is_cancelled());
    }

    #[test]
    fn idle_deadlines_follow_requests() {
        let table = Connections::new(4);
        let t0 = Instant::now();
        let conn = admitted(table.admit(t0));
        let timeout = Duration::from_secs(30);
        assert_eq!(conn.idle_deadline(timeout), Some(t0 + timeout));
        let guard = conn.request();
        assert_eq!(
            conn.idle_deadline(timeout),
            None,
            "busy connections never idle out"
        );
        assert_eq!(conn.in_flight(), 1);
        drop(guard);
        assert!(conn.idle_deadline(timeout).unwrap() > t0 + timeout);
        drop(conn);
        assert!(table.is_empty());
    }
}
