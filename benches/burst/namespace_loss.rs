//! The namespace-loss mode (`--namespace-loss`): once the burst has settled, the enforcement
//! namespace is deleted with every enforcement Secret in it and re-created as soon as it is gone
//! (or `--gone-for` seconds later), as an operator who removed it by mistake would. Reports how long the deletion took, how many
//! Secrets were back 10, 30 and 60 s after the namespace returned and when the last one was, how
//! many keys said their Secret was refused on the way, when every key was Approved again, and
//! what the controller wrote meanwhile.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devportal::names::DEFAULT_KUADRANT_NAMESPACE;
use devportal::resources::{APIKey, APIKeyPhase};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{DeleteParams, ObjectMeta, PostParams};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Client, ResourceExt};

use super::apimetrics;
use super::audit::{AuditLog, Split};
use super::restart::wait_quiet;
use super::watch::enforcement_secret_names;

/// The moments after the namespace's return at which the Secrets back are counted (read from
/// the arrival times once every Secret is back).
const CHECKPOINTS: [u64; 3] = [10, 30, 60];

/// The keys' phases as a watch sees them: how many are not Approved now, the most that were at
/// once, and when the last one turned Approved.
#[derive(Default)]
struct Phases {
    by_key: HashMap<String, Option<APIKeyPhase>>,
    not_approved: usize,
    most_not_approved: usize,
    last_approved: Option<Instant>,
}

impl Phases {
    fn set(&mut self, name: String, phase: Option<APIKeyPhase>) {
        let approved = |p: &Option<APIKeyPhase>| *p == Some(APIKeyPhase::Approved);
        let was = self.by_key.insert(name, phase);
        match (was.as_ref().map(approved), approved(&phase)) {
            (Some(true) | None, false) => self.not_approved += 1,
            (Some(false), true) => {
                self.not_approved -= 1;
                self.last_approved = Some(Instant::now());
            }
            _ => {}
        }
        self.most_not_approved = self.most_not_approved.max(self.not_approved);
    }
}

/// Follows the phases of the keys in `namespace` until the run ends.
fn follow_phases(client: &Client, namespace: &str) -> Arc<Mutex<Phases>> {
    let phases = Arc::new(Mutex::new(Phases::default()));
    let keys = Api::<APIKey>::namespaced(client.clone(), namespace);
    let shared = phases.clone();
    tokio::spawn(async move {
        let stream = watcher(keys, watcher::Config::default())
            .default_backoff()
            .applied_objects();
        let mut stream = std::pin::pin!(stream);
        while let Some(key) = stream.next().await {
            if let Ok(key) = key {
                let phase = key.status.as_ref().and_then(|s| s.phase);
                shared.lock().unwrap().set(key.name_any(), phase);
            }
        }
    });
    phases
}

/// Records when each distinct enforcement Secret appears in the (re-created) namespace.
fn follow_secrets(client: &Client) -> Arc<Mutex<Vec<Instant>>> {
    let arrivals = Arc::new(Mutex::new(Vec::new()));
    let names = enforcement_secret_names(client);
    let shared = arrivals.clone();
    tokio::spawn(async move {
        let mut names = std::pin::pin!(names);
        let mut seen = HashSet::new();
        while let Some(name) = names.next().await {
            if let Ok(name) = name
                && seen.insert(name)
            {
                shared.lock().unwrap().push(Instant::now());
            }
        }
    });
    arrivals
}

/// Deletes the enforcement namespace, waits until it is gone and then `gone_for`, re-creates it
/// and measures the recovery of the `n` settled keys in `key_namespace`; bounded by `limit`.
pub async fn measure(
    admin: &Client,
    audit: &mut AuditLog,
    (key_namespace, n): (&str, usize),
    gone_for: Duration,
    limit: Duration,
) {
    wait_quiet(audit, limit).await;
    let phases = follow_phases(admin, key_namespace);
    let listing = Instant::now();
    while phases.lock().unwrap().by_key.len() < n {
        assert!(
            listing.elapsed() < limit,
            "the key watch did not list {n} keys"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let namespaces = Api::<Namespace>::all(admin.clone());
    let before = audit.refresh().clone();
    let requests_before = apimetrics::scrape(admin).await;

    let deleting = Instant::now();
    namespaces
        .delete(DEFAULT_KUADRANT_NAMESPACE, &DeleteParams::default())
        .await
        .expect("delete the enforcement namespace");
    while namespaces
        .get_opt(DEFAULT_KUADRANT_NAMESPACE)
        .await
        .expect("read the namespace")
        .is_some()
    {
        assert!(
            deleting.elapsed() < limit,
            "the namespace was not gone within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let deleted = deleting.elapsed();
    tokio::time::sleep(gone_for).await;
    let namespace = Namespace {
        metadata: ObjectMeta {
            name: Some(DEFAULT_KUADRANT_NAMESPACE.into()),
            ..ObjectMeta::default()
        },
        ..Namespace::default()
    };
    namespaces
        .create(&PostParams::default(), &namespace)
        .await
        .expect("re-create the enforcement namespace");
    let returned = Instant::now();
    let arrivals = follow_secrets(admin);

    let back_by = |arrivals: &[Instant], after: Duration| {
        arrivals.iter().filter(|t| **t - returned <= after).count()
    };
    loop {
        let count = arrivals.lock().unwrap().len();
        let not_approved = phases.lock().unwrap().not_approved;
        if count >= n && not_approved == 0 {
            break;
        }
        assert!(
            returned.elapsed() < limit,
            "{count} of {n} Secrets back and {not_approved} keys not Approved after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let all_back = {
        let arrivals = arrivals.lock().unwrap();
        arrivals[n - 1] - returned
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let split = Split::between(&before, audit.refresh());
    let requests_after = apimetrics::scrape(admin).await;
    let arrivals = arrivals.lock().unwrap().clone();
    let phases = phases.lock().unwrap();

    println!("enforcement namespace deleted and re-created under {n} settled keys:");
    println!(
        "  namespace gone            {deleted:.2?} after the delete (its {n} Secrets with it)"
    );
    for seconds in CHECKPOINTS {
        let after = Duration::from_secs(seconds);
        let back = back_by(&arrivals, after);
        println!(
            "  Secrets back at +{seconds:>2} s     {back} of {n} ({:.1} % missing)",
            100.0 * (n - back) as f64 / n as f64
        );
    }
    println!("  all Secrets back          {all_back:.2?} after the namespace returned");
    let approved_again = phases
        .last_approved
        .map_or("none had left Approved".to_string(), |t| {
            format!("{:.2?} after the namespace returned", t - returned)
        });
    println!(
        "  keys not Approved         at most {} at once; every key Approved again: {approved_again}",
        phases.most_not_approved
    );
    split.print(
        "controller-identity writes from the delete to the end (audit log)",
        n,
    );
    println!("  cross-check from apiserver_request_total (all clients, over the same span):");
    apimetrics::print_delta(&requests_before, &requests_after, n);
}
