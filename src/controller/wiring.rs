//! Watches → reconcilers: which events reach which objects, and the phase gauge (the write gate
//! itself is in `reconcile_loop.rs`).

use std::sync::{Arc, Mutex};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Namespace, Secret};
use kube::core::PartialObjectMeta;
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Client, ResourceExt};

use super::apikey::key_line::Holders;
use super::args::{ControllerArgs, Settings};
use super::context::Context;
use super::enforcement_namespace::{self, EnforcementNamespace};
use super::event_budget::EventBudget;
use super::inbox::{self, requests::RequestCache, state::Inbox};
use super::index::{KeysByProduct, RefIndex, WrittenStatus};
use super::mac_key::MacKey;
use super::mappers::{PolicyTargets, follow_holders, policy_mapper};
use super::orphans::{self, Sweeps};
use super::phase_counts;
use super::reconcile_loop::{gate, log_outcome, measured, on_activation, retry_later};
use super::secret_cache::{self, SecretCache};
use super::signals::Signals;
use super::{apikey, product, resync};
use crate::Result;
use crate::admin::Telemetry;
use crate::discovery::{Caches, Target};
use crate::key_limit::KeyLimitArgs;
use crate::resources::cached_key::CachedKey;
use crate::resources::cached_request::CachedRequest;
use crate::resources::gateway::HTTPRoute;
use crate::resources::kuadrant::{AuthPolicy, PlanPolicy};
use crate::resources::{APIKeyApproval, APIKeyPolicy, APIProduct};
use crate::watches::{Feed, SecretMetadataFeed, Watches};

/// The watches the controller reads, subscribed before the process starts them.
pub struct Feeds {
    products: Feed<APIProduct>,
    key_products: Feed<APIProduct>,
    overlap_products: Feed<APIProduct>,
    routes: Feed<HTTPRoute>,
    auth_policies: Feed<AuthPolicy>,
    plan_policies: Feed<PlanPolicy>,
    keys: Feed<CachedKey>,
    requests: Feed<CachedRequest>,
    approvals: Feed<APIKeyApproval>,
    secrets: Feed<Secret>,
    secret_metadata: SecretMetadataFeed,
    policies: Feed<APIKeyPolicy>,
    namespaces: Feed<PartialObjectMeta<Namespace>>,
}

impl Feeds {
    /// Subscribes to every kind the controller reads.
    pub fn subscribe(watches: &mut Watches) -> Self {
        Self {
            products: watches.products(),
            key_products: watches.products(),
            overlap_products: watches.products(),
            routes: watches.routes(),
            auth_policies: watches.auth_policies(),
            plan_policies: watches.plan_policies(),
            keys: watches.keys(),
            requests: watches.requests(),
            approvals: watches.approvals(),
            secrets: watches.secrets(),
            secret_metadata: watches.secret_metadata(),
            policies: watches.policies(),
            namespaces: watches.namespaces(),
        }
    }
}

/// Runs both reconcilers over `feeds` until shutdown.
pub(super) async fn run(
    (args, key_limit): (&ControllerArgs, KeyLimitArgs),
    client: Client,
    feeds: Feeds,
    signals: Signals,
    identity: String,
    telemetry: Telemetry,
    health_component: &'static str,
) -> Result<()> {
    let Feeds {
        products,
        key_products,
        overlap_products,
        routes,
        auth_policies,
        plan_policies,
        keys,
        requests,
        approvals,
        secrets: secret_feed,
        secret_metadata,
        policies,
        namespaces,
    } = feeds;
    let config = Settings::new(args, key_limit)?;
    let request_cache = Arc::new(RequestCache::default());
    let enforcement = EnforcementNamespace::resolve(
        args.enforcement_namespace.clone(),
        &client,
        &signals.shutdown,
    )
    .await?;
    let secret_cache = Arc::new(SecretCache::default());
    let active = gate(
        &signals,
        (secret_cache.clone(), request_cache.clone()),
        telemetry.clone(),
        health_component,
    );
    let metrics = telemetry.metrics.clone();
    let fetcher = args
        .fetch
        .fetcher(client.clone(), signals.shutdown.clone())?;
    let (nudge, nudged) = tokio::sync::mpsc::unbounded_channel();
    let ctx = Arc::new(Context {
        mac_key: MacKey::new(client.clone(), &args.lease.namespace),
        client,
        config,
        enforcement,
        caches: Caches {
            routes: routes.store.clone(),
            auth_policies: auth_policies.store.clone(),
            plan_policies: plan_policies.store.clone(),
        },
        products: products.store.clone(),
        keys: keys.store.clone(),
        nudge,
        secrets: secret_cache.clone(),
        targets: RefIndex::default(),
        overlaps: RefIndex::default(),
        key_products: KeysByProduct::default(),
        policies: super::policy::PolicyView {
            policies: policies.store.clone(),
            namespaces: namespaces.store.clone(),
        },
        inbox: Inbox::new(request_cache.clone(), approvals.store.clone()),
        key_holders: Holders::default(),
        written: WrittenStatus::default(),
        identity,
        fetcher,
        oidc: Mutex::default(),
        failures: Mutex::default(),
        uncovered_warned: Mutex::default(),
        event_budget: EventBudget::new(args.events_per_second, args.event_burst),
        metrics,
        phase_changed: tokio::sync::Notify::new(),
        active: active.clone(),
    });

    let ctx_for_report = ctx.clone();
    let ctx_for_audit = ctx.clone();
    let config = ControllerConfig::default().concurrency(args.concurrency);
    let policy_targets = PolicyTargets::default();
    let product_store = products.store.clone();
    let product_stream = products
        .events()
        .applied_objects()
        // Our own status writes do not change the generation and need no reconcile.
        .predicate_filter(predicates::generation, Default::default());
    let product_controller = Controller::for_stream(product_stream, product_store)
        .with_config(config.clone())
        .watches_stream(routes.events().touched_objects(), {
            let ctx = ctx.clone();
            move |route: HTTPRoute| {
                ctx.targets.lookup(&Target {
                    kind: "HTTPRoute".into(),
                    namespace: route.namespace().unwrap_or_default(),
                    name: route.name_any(),
                })
            }
        })
        // A product's change (its record, its deletion) → the products it overlaps with.
        .watches_stream(overlap_products.events().touched_objects(), {
            let ctx = ctx.clone();
            move |product: APIProduct| super::overlap::affected(&product, &ctx)
        })
        .watches_stream(auth_policies.events().touched_objects(), {
            let on_target = policy_mapper(ctx.clone(), policy_targets.clone(), |p: &AuthPolicy| {
                &p.spec.target_ref
            });
            let ctx = ctx.clone();
            move |policy: AuthPolicy| {
                let mut products = super::overlap::concerned_by(&policy, &ctx);
                products.extend(on_target(policy));
                products.sort_by_key(ToString::to_string);
                products.dedup();
                products
            }
        })
        .watches_stream(
            plan_policies.events().touched_objects(),
            policy_mapper(ctx.clone(), policy_targets, |p: &PlanPolicy| {
                &p.spec.target_ref
            }),
        )
        .reconcile_all_on(on_activation(active.clone()))
        .graceful_shutdown_on(signals.shutdown.clone().cancelled_owned())
        .run(
            |product, ctx| measured("apiproduct", product, ctx, product::reconcile),
            retry_later,
            ctx.clone(),
        )
        .for_each(log_outcome);

    let sweeps = Arc::new(Sweeps::default());
    // A Secret's event → its key; a completed (re-)list → the keys whose Secrets it changed, once
    // the cache holds the new list (not each listed Secret's key before it does).
    let secret_triggers = secret_feed
        .events()
        .map({
            let (sweeps, keys) = (sweeps.clone(), keys.store.clone());
            let enforcement = ctx.enforcement.clone();
            move |event| {
                let Ok(event) = event else {
                    return Vec::new();
                };
                let relisted = secret_cache.apply(&event);
                match &event {
                    watcher::Event::Apply(secret) => {
                        sweeps.check(secret, &keys, &enforcement.get());
                        secret_cache::key_of(secret).into_iter().collect()
                    }
                    watcher::Event::Delete(secret) => {
                        secret_cache::key_of(secret).into_iter().collect()
                    }
                    watcher::Event::InitDone => {
                        sweeps.request();
                        relisted
                    }
                    watcher::Event::Init | watcher::Event::InitApply(_) => Vec::new(),
                }
            }
        })
        .flat_map(futures::stream::iter);
    let key_store = keys.store.clone();
    // The consumers' own Secrets (spec.secretRef) → the keys that name them.
    let referenced = Arc::new(RefIndex::<(String, String), CachedKey>::default());
    let (wake, woken) = futures::channel::mpsc::unbounded();
    let key_events = keys
        .events()
        .inspect_ok({
            let (referenced, sweeps) = (referenced.clone(), sweeps.clone());
            move |event| match event {
                watcher::Event::Apply(key) | watcher::Event::InitApply(key) => {
                    let own = key
                        .spec()
                        .secret_ref
                        .as_ref()
                        .map(|r| (key.namespace().unwrap_or_default(), r.name.clone()));
                    referenced.set(ObjectRef::from_obj(key), own);
                }
                watcher::Event::Delete(key) => {
                    referenced.set(ObjectRef::from_obj(key), None);
                    sweeps.request();
                }
                // A re-list may have missed deletions.
                watcher::Event::InitDone => sweeps.request(),
                watcher::Event::Init => {}
            }
        })
        .inspect_ok({
            let ctx = ctx.clone();
            move |event| follow_holders(&ctx, event, &wake)
        });
    let own_secrets = secret_metadata.touched();
    let phase_counts = phase_counts::run(key_store.clone(), ctx.clone(), signals.shutdown.clone());
    let lane = inbox::lane::run(ctx.clone(), signals.shutdown.clone());
    let (request_sweeps, request_keys) = (sweeps.clone(), key_store.clone());
    let sweeper = orphans::run(
        ctx.clone(),
        key_store.clone(),
        sweeps,
        signals.shutdown.clone(),
    );
    let resync_store = key_store.clone();
    let key_controller = Controller::for_stream(key_events.applied_objects(), key_store)
        .with_config(config)
        .reconcile_on(woken)
        .watches_stream(key_products.events().touched_objects(), {
            let ctx = ctx.clone();
            move |product: APIProduct| ctx.key_products.lookup(&ObjectRef::from_obj(&product))
        })
        .reconcile_on(secret_triggers)
        .watches_stream(own_secrets, move |secret: PartialObjectMeta<Secret>| {
            referenced.lookup(&(secret.namespace().unwrap_or_default(), secret.name_any()))
        })
        // The owner's inbox: a request changed or deleted by someone else is put back, and an
        // approval is applied to the key its request mirrors.
        .reconcile_on(inbox::triggers::requests(
            requests,
            request_cache.clone(),
            request_keys,
            request_sweeps,
        ))
        .watches_stream(
            inbox::triggers::approvals(approvals, ctx.clone()),
            inbox::triggers::approval_to_key(request_cache),
        )
        // Keys that must give up a value another key keeps (see apikey::own_value).
        .reconcile_on(futures::stream::unfold(nudged, |mut nudged| async move {
            nudged.recv().await.map(|key| (key, nudged))
        }))
        // Every key once per --resync, spread over the period (see resync.rs).
        .reconcile_on(resync::sweep(resync_store, ctx.config.resync))
        .reconcile_all_on(on_activation(active))
        // The enforcement namespace deleted and created again: every key's Secret is gone.
        .reconcile_all_on(enforcement_namespace::returns(
            namespaces.events(),
            ctx.enforcement.clone(),
        ))
        .graceful_shutdown_on(signals.shutdown.clone().cancelled_owned())
        .run(
            |key, ctx| measured("apikey", key, ctx, apikey::reconcile),
            retry_later,
            ctx,
        )
        .for_each(log_outcome);

    let policy_audit = super::policy::audit::run(ctx_for_audit, policies, signals.shutdown.clone());
    let kuadrant_report = super::kuadrant_report::report(
        ctx_for_report,
        args.kuadrant_poll_interval,
        signals.shutdown.clone(),
    );
    futures::future::join(
        futures::future::join5(
            product_controller,
            key_controller,
            phase_counts,
            sweeper,
            lane,
        ),
        futures::future::join(kuadrant_report, policy_audit),
    )
    .await;
    tracing::info!("controllers stopped");
    Ok(())
}
