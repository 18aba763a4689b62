use super::*;
use crate::keys::ApiKeyValue;
use crate::resources::{APIKey, APIKeySpec};
use crate::secrets::Enforcement;

fn key(name: &str) -> APIKey {
    let mut key = APIKey::new(name, APIKeySpec::new("toys", "gold"));
    key.metadata.namespace = Some("team".into());
    key.metadata.uid = Some(format!("uid-of-{name}"));
    key
}

const ENFORCEMENT: &str = "kuadrant-system";

fn enforcement(key: &APIKey, value: &str) -> Secret {
    let uid = key.metadata.uid.as_deref().unwrap();
    let target = Enforcement {
        namespace: ENFORCEMENT.into(),
        labels: secrets::enforcement_labels(
            uid,
            secrets::ProductId {
                namespace: "team",
                name: "toys",
            },
            &[],
        )
        .unwrap(),
        tier: "gold".into(),
        user_id: "consumer".into(),
        expires_at: None,
    };
    secrets::enforcement_secret(key, &target, &ApiKeyValue::from_secret(value.into()))
}

fn consumer(key: &APIKey, value: &str) -> Secret {
    secrets::consumer_secret(key, &ApiKeyValue::from_secret(value.into()))
}

#[test]
fn indexes_secrets_by_key_and_compares_by_digests() {
    let cache = SecretCache::default();
    let k = key("k");
    let enforced = enforcement(&k, "v");
    cache.apply(&watcher::Event::Apply(enforced.clone()));
    cache.apply(&watcher::Event::Apply(consumer(&k, "v")));
    cache.apply(&watcher::Event::Apply(consumer(&key("other"), "w")));
    let owned = cache.owned_by("team", "k");
    assert_eq!(owned.len(), 2);
    assert!(owned.iter().all(|s| s.cached.marked_for("uid-of-k")));
    assert!(!owned[0].cached.marked_for("uid-of-other"));
    let name = enforced.metadata.name.clone().unwrap();
    let cached = cache.get("kuadrant-system", &name).expect("cached");
    assert!(cached.matches(&enforced.metadata));
    let copy = cache
        .get("team", &secrets::consumer_secret_name(&k))
        .unwrap();
    assert!(cached.same_content(&copy), "both hold the same key");

    // Drift at the same name: a label added, then the value changed.
    let mut relabelled = enforced.clone();
    relabelled
        .metadata
        .labels
        .as_mut()
        .unwrap()
        .insert("x".into(), "y".into());
    cache.apply(&watcher::Event::Apply(relabelled));
    let drifted = cache.get("kuadrant-system", &name).unwrap();
    assert!(!drifted.matches(&enforced.metadata));
    assert_eq!(
        cache.owned_by("team", "k").len(),
        2,
        "an update is not a second Secret"
    );
    cache.apply(&watcher::Event::Apply(enforcement(&k, "tampered")));
    let tampered = cache.get("kuadrant-system", &name).unwrap();
    assert!(tampered.matches(&enforced.metadata));
    assert!(!tampered.same_content(&copy));

    cache.apply(&watcher::Event::Delete(enforced));
    assert_eq!(cache.owned_by("team", "k").len(), 1);
    assert!(cache.get("kuadrant-system", &name).is_none());
    cache.apply(&watcher::Event::Delete(consumer(&k, "v")));
    assert!(cache.owned_by("team", "k").is_empty());
    assert_eq!(cache.len(), 1);
}

#[test]
fn a_relist_replaces_the_view_only_when_complete() {
    let cache = SecretCache::default();
    let (a, b) = (key("a"), key("b"));
    cache.apply(&watcher::Event::Init);
    cache.apply(&watcher::Event::InitApply(consumer(&a, "v")));
    cache.apply(&watcher::Event::InitDone);
    assert_eq!(cache.len(), 1);
    // A re-list after a lost watch: `a`'s Secret went away meanwhile, `b`'s appeared.
    cache.apply(&watcher::Event::Init);
    cache.apply(&watcher::Event::InitApply(consumer(&b, "v")));
    assert_eq!(cache.owned_by("team", "a").len(), 1, "old view until done");
    cache.apply(&watcher::Event::InitDone);
    assert!(cache.owned_by("team", "a").is_empty());
    assert_eq!(cache.owned_by("team", "b").len(), 1);
}

#[test]
fn secrets_without_a_role_are_not_cached_and_unmarked_ones_are_told_apart() {
    let cache = SecretCache::default();
    let mut odd = consumer(&key("k"), "v");
    odd.metadata.labels = None;
    cache.apply(&watcher::Event::Apply(odd));
    assert_eq!(cache.len(), 0);
    assert!(cache.owned_by("team", "k").is_empty());
    let mut unowned = consumer(&key("k"), "v");
    unowned.metadata.owner_references = None;
    cache.apply(&watcher::Event::Apply(unowned));
    let entry = &cache.owned_by("team", "k")[0].cached;
    assert!(entry.unmarked() && !entry.marked_for("uid-of-k"));
}

#[test]
fn enforcement_secrets_are_found_by_what_they_hold_and_by_unknown_uids() {
    let cache = SecretCache::default();
    let (a, b) = (key("a"), key("b"));
    let enforced_a = enforcement(&a, "same-value");
    cache.apply(&watcher::Event::Apply(enforced_a.clone()));
    cache.apply(&watcher::Event::Apply(enforcement(&b, "same-value")));
    cache.apply(&watcher::Event::Apply(consumer(&a, "same-value")));
    let content = secrets::content_digest(&enforced_a);
    let holders = cache.enforced_with(ENFORCEMENT, content);
    assert_eq!(
        holders.len(),
        2,
        "consumer copies are not indexed by content"
    );
    assert!(holders.iter().any(|h| h.cached.owner() == Some("team/b")));

    // A changed value moves the Secret to its new content.
    cache.apply(&watcher::Event::Apply(enforcement(&b, "other-value")));
    assert_eq!(cache.enforced_with(ENFORCEMENT, content).len(), 1);
    // Applying the same Secret again does not link it twice.
    cache.apply(&watcher::Event::Apply(enforced_a.clone()));
    assert_eq!(cache.enforced_with(ENFORCEMENT, content).len(), 1);

    let live_a = crate::digest::digest("uid-of-a");
    let orphans = cache.enforcement_of_unknown_uids(ENFORCEMENT, |uid| uid == live_a);
    assert_eq!(orphans.len(), 1, "only b's enforcement Secret: {orphans:?}");
    cache.apply(&watcher::Event::Delete(enforced_a));
    assert!(cache.enforced_with(ENFORCEMENT, content).is_empty());
    assert_eq!(
        cache
            .enforcement_of_unknown_uids(ENFORCEMENT, |_| false)
            .len(),
        1
    );
}

#[test]
fn enforcement_marks_copied_into_another_namespace_count_for_nothing() {
    let cache = SecretCache::default();
    let victim = key("victim");
    // Planted in a tenant's namespace: the victim's enforcement marks, a value of the tenant's.
    let mut planted = enforcement(&victim, "chosen");
    planted.metadata.namespace = Some("tenant".into());
    cache.apply(&watcher::Event::Apply(planted.clone()));
    // Neither a holder of its value nor an orphan to delete, with or without a live key.
    assert!(
        cache
            .enforced_with(ENFORCEMENT, secrets::content_digest(&planted))
            .is_empty()
    );
    assert!(
        cache
            .enforcement_of_unknown_uids(ENFORCEMENT, |_| false)
            .is_empty()
    );
    assert_eq!(
        cache.enforcement_of_unknown_uids("tenant", |_| false).len(),
        1
    );
}

#[test]
fn the_cache_notes_whether_a_consumer_secret_carries_a_mac() {
    let cache = SecretCache::default();
    let k = key("k");
    let value = ApiKeyValue::from_secret("v".into());
    cache.apply(&watcher::Event::Apply(consumer(&k, "v")));
    let name = secrets::consumer_secret_name(&k);
    assert!(!cache.get("team", &name).unwrap().vouched());
    let vouched = secrets::vouched_consumer_secret(&k, &value, "ab".repeat(32));
    cache.apply(&watcher::Event::Apply(vouched.clone()));
    let entry = cache.get("team", &name).unwrap();
    assert!(entry.vouched());
    assert!(
        entry.matches(&consumer(&k, "v").metadata),
        "the MAC is not part of the metadata digest"
    );
}

#[test]
fn a_relist_replaces_the_view_at_its_end_and_names_the_keys_it_changed() {
    let cache = SecretCache::default();
    let (same, changed, gone, new) = (key("same"), key("changed"), key("gone"), key("new"));
    for secret in [
        consumer(&same, "a"),
        consumer(&changed, "b"),
        consumer(&gone, "c"),
    ] {
        cache.apply(&watcher::Event::Apply(secret));
    }
    assert!(cache.apply(&watcher::Event::Init).is_empty());
    for secret in [
        consumer(&same, "a"),
        consumer(&changed, "tampered"),
        consumer(&new, "d"),
    ] {
        assert!(cache.apply(&watcher::Event::InitApply(secret)).is_empty());
    }
    // Until the list is complete the live view is the old one.
    assert_eq!(cache.owned_by("team", "gone").len(), 1);
    assert!(cache.owned_by("team", "new").is_empty());
    let mut woken: Vec<String> = cache
        .apply(&watcher::Event::InitDone)
        .iter()
        .map(|r| r.name.clone())
        .collect();
    woken.sort();
    assert_eq!(woken, ["changed", "gone", "new"]);
    assert!(cache.owned_by("team", "gone").is_empty());
    assert_eq!(cache.owned_by("team", "new").len(), 1);
}
