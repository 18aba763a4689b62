use kube::runtime::reflector::store::Writer;
use kube::runtime::watcher;

use super::*;
use crate::resources::{APIKey, APIKeyPhase, APIKeySpec, APIKeyStatus, Approval, RequestedBy};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

const CREATED: &str = "2026-06-01T12:00:00Z";

fn now() -> Timestamp {
    "2026-06-01T12:01:00Z".parse().unwrap()
}

fn limit() -> KeyLimitArgs {
    KeyLimitArgs {
        max_keys_per_user_per_product: 5,
        expired_key_grace: Duration::from_secs(3_600),
        max_key_lifetime: Duration::from_secs(365 * 86_400),
    }
}

fn key(name: &str, user: &str) -> APIKey {
    let mut spec = APIKeySpec::new("toys", "gold");
    spec.api_product_ref.namespace = Some("apps".into());
    spec.requested_by = Some(RequestedBy {
        user_id: user.into(),
        email: None,
    });
    let mut key = APIKey::new(name, spec);
    key.metadata.namespace = Some("team".into());
    key.metadata.uid = Some(format!("uid-{name}"));
    key.metadata.creation_timestamp = Some(Time(CREATED.parse().unwrap()));
    key
}

/// The store and holder index a controller would have after the watch showed `keys`.
fn seen(keys: Vec<APIKey>) -> (Store<CachedKey>, Holders) {
    let mut writer = Writer::<CachedKey>::default();
    let holders = Holders::default();
    for key in keys {
        let cached = CachedKey::from(key);
        holders.set(
            ObjectRef::from_obj(&cached),
            Holder::of(&cached).map(Arc::new),
        );
        writer.apply_watcher_event(&watcher::Event::Apply(cached));
    }
    (writer.as_reader(), holders)
}

fn line_of(key: APIKey, store: &Store<CachedKey>, holders: &Holders, now: Timestamp) -> Line {
    line(&key.into(), store, holders, &limit(), now)
}

#[test]
fn only_the_first_keys_in_creation_order_are_clear() {
    // Seven keys in the same second: the names decide.
    let keys: Vec<_> = (0..7).map(|i| key(&format!("k{i}"), "alice")).collect();
    let (store, holders) = seen(keys.clone());
    for k in &keys[..5] {
        assert_eq!(line_of(k.clone(), &store, &holders, now()), Line::Clear);
    }
    for (ahead, k) in [(5, &keys[5]), (6, &keys[6])] {
        let Line::Blocked(message) = line_of(k.clone(), &store, &holders, now()) else {
            panic!("past the limit");
        };
        let expected = format!(
            "{ahead} keys already exist for \"alice\" on APIProduct apps/toys; the limit is 5"
        );
        assert!(message.starts_with(&expected), "{message}");
    }
    // Another requester has a line of their own.
    assert_eq!(
        line_of(key("k9", "bob"), &store, &holders, now()),
        Line::Clear
    );
}

#[test]
fn failed_keys_hold_their_place_and_rejected_ones_give_it_up() {
    let mut keys: Vec<_> = (0..6).map(|i| key(&format!("k{i}"), "alice")).collect();
    keys[0].status = Some(APIKeyStatus {
        phase: Some(APIKeyPhase::Failed),
        ..APIKeyStatus::default()
    });
    let (store, holders) = seen(keys.clone());
    assert!(matches!(
        line_of(keys[5].clone(), &store, &holders, now()),
        Line::Blocked(_)
    ));
    keys[1].spec.approval = Some(Approval {
        approved: false,
        reason: None,
        reviewed_by: None,
        reviewed_at: None,
        product_uid: None,
        plan_tier: None,
    });
    let (store, holders) = seen(keys.clone());
    assert_eq!(
        line_of(keys[5].clone(), &store, &holders, now()),
        Line::Clear
    );
}

#[test]
fn an_expired_key_holds_its_place_for_the_grace() {
    let mut keys: Vec<_> = (0..6).map(|i| key(&format!("k{i}"), "alice")).collect();
    keys[0].spec.expires_at = Some(Time(CREATED.parse().unwrap()));
    let (store, holders) = seen(keys.clone());
    assert!(matches!(
        line_of(keys[5].clone(), &store, &holders, now()),
        Line::Blocked(_)
    ));
    let after_grace = now() + SignedDuration::from_hours(1);
    assert_eq!(
        line_of(keys[5].clone(), &store, &holders, after_grace),
        Line::Clear
    );
}

#[test]
fn a_new_key_waits_until_its_second_has_settled() {
    let (store, holders) = seen(vec![key("k0", "alice")]);
    let created: Timestamp = CREATED.parse().unwrap();
    assert_eq!(
        line_of(
            key("k0", "alice"),
            &store,
            &holders,
            created + SignedDuration::from_millis(500)
        ),
        Line::Wait(Duration::from_millis(1_500))
    );
    assert_eq!(
        line_of(
            key("k0", "alice"),
            &store,
            &holders,
            created + SignedDuration::from_secs(2)
        ),
        Line::Clear
    );
}

#[test]
fn a_key_leaving_a_full_line_wakes_the_others() {
    let keys: Vec<_> = (0..6).map(|i| key(&format!("k{i}"), "alice")).collect();
    let (_, holders) = seen(keys.clone());
    let woken = wake_after(&keys[0].clone().into(), &holders, &limit());
    assert_eq!(woken.len(), 5);
    assert!(!woken.contains(&ObjectRef::new("k0").within("team")));
    let (_, short) = seen(keys[..3].to_vec());
    assert!(wake_after(&keys[0].clone().into(), &short, &limit()).is_empty());
}
