//! The controller: APIProduct discovery and the APIKey state machine with its Secrets.
//!
//! Every replica runs the leader election; only the leader runs the reconcilers, so two replicas
//! never both write. Watches on routes, policies, products and devportal's own Secrets (selected by
//! label) reach the affected objects through in-memory indexes.

mod apikey;
mod cached_key;
mod index;
pub mod lease;
mod product;
mod secret_cache;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt, future};
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;
use kube::api::{PartialObjectMeta, Patch, PatchParams};
use kube::runtime::controller::{Action, Config as ControllerConfig, Controller};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, predicates, watcher};
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use apikey::{Decision, FINALIZER, decide};
use cached_key::CachedKey;
use index::{KeysByProduct, RefIndex, WrittenStatus};
use lease::LeaseConfig;
use secret_cache::{OwnedSecret, SecretCache};

use crate::admin::Telemetry;
use crate::discovery::{Caches, FetchArgs, FetchError, Fetcher, Target};
use crate::keys;
use crate::metrics::Metrics;
use crate::resources::gateway::HTTPRoute;
use crate::resources::kuadrant::{AuthPolicy, PlanPolicy};
use crate::resources::{APIKey, APIKeyPhase, APIProduct};
use crate::secrets::{self, Role};
use crate::{Error, Result};

/// The controller's name in readiness reports.
const HEALTH_COMPONENT: &str = "controller";

/// Field manager of every write the controller makes.
pub const FIELD_MANAGER: &str = "devportal-controller";

/// Command-line arguments of the controller.
#[derive(Clone, Debug, clap::Args)]
pub struct ControllerArgs {
    /// Namespace for enforcement Secrets of AuthPolicies whose apiKey rule has `allNamespaces: true`.
    #[arg(
        long,
        env = "DEVPORTAL_ENFORCEMENT_NAMESPACE",
        default_value = "kuadrant-system"
    )]
    pub enforcement_namespace: String,

    /// Prefix of generated keys (`<prefix>_...`), so secret scanners can find leaked keys.
    #[arg(long, env = "DEVPORTAL_KEY_PREFIX", default_value = keys::DEFAULT_PREFIX)]
    pub key_prefix: String,

    /// Discovery fetches: size cap, attempts, allowed and refused destinations.
    #[command(flatten)]
    pub fetch: FetchArgs,

    /// How often a fetched OpenAPI document is refreshed (Go duration, e.g. `1h`).
    #[arg(long, env = "DEVPORTAL_OPENAPI_REFRESH", default_value = "1h", value_parser = crate::cli::parse_duration)]
    pub openapi_refresh: Duration,

    /// How often every object is reconciled even without a change.
    #[arg(long, env = "DEVPORTAL_RESYNC", default_value = "30m", value_parser = crate::cli::parse_duration)]
    pub resync: Duration,

    /// Reconciles run at once per controller.
    #[arg(long, env = "DEVPORTAL_CONCURRENCY", default_value_t = 32)]
    pub concurrency: u16,

    /// Leader election.
    #[command(flatten)]
    pub lease: LeaseArgs,
}

/// Command-line arguments of the leader election.
#[derive(Clone, Debug, clap::Args)]
pub struct LeaseArgs {
    /// Name of the coordination.k8s.io Lease.
    #[arg(
        long = "lease-name",
        env = "DEVPORTAL_LEASE_NAME",
        default_value = "devportal-controller"
    )]
    pub name: String,

    /// Namespace of the Lease (the pod's own namespace).
    #[arg(
        long = "lease-namespace",
        env = "POD_NAMESPACE",
        default_value = "devportal-system"
    )]
    pub namespace: String,

    /// This replica's identity (the pod name); a random one when unset.
    #[arg(long = "lease-identity", env = "POD_NAME")]
    pub identity: Option<String>,

    /// How long the lease is valid without renewal.
    #[arg(long = "lease-duration", env = "DEVPORTAL_LEASE_DURATION", default_value = "15s", value_parser = crate::cli::parse_duration)]
    pub duration: Duration,

    /// The leader steps down after failing to renew for this long.
    #[arg(long = "lease-renew-deadline", env = "DEVPORTAL_LEASE_RENEW_DEADLINE", default_value = "10s", value_parser = crate::cli::parse_duration)]
    pub renew_deadline: Duration,

    /// How often to try to acquire or renew the lease.
    #[arg(long = "lease-retry-period", env = "DEVPORTAL_LEASE_RETRY_PERIOD", default_value = "2s", value_parser = crate::cli::parse_duration)]
    pub retry_period: Duration,
}

impl LeaseArgs {
    fn config(&self) -> Result<LeaseConfig> {
        if self.renew_deadline >= self.duration || self.retry_period >= self.renew_deadline {
            return Err(Error::Config(
                "need lease-retry-period < lease-renew-deadline < lease-duration".into(),
            ));
        }
        let identity = self.identity.clone().unwrap_or_else(|| {
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "devportal".into());
            let mut suffix = [0u8; 4];
            // A failing random source only makes the identity less unique.
            let _ = getrandom::fill(&mut suffix);
            format!("{host}-{}", u32::from_be_bytes(suffix))
        });
        Ok(LeaseConfig {
            name: self.name.clone(),
            namespace: self.namespace.clone(),
            identity,
            duration: self.duration,
            renew_deadline: self.renew_deadline,
            retry_period: self.retry_period,
        })
    }
}

/// Settings the reconcilers read.
#[derive(Clone, Debug)]
pub struct Settings {
    /// See [`ControllerArgs::enforcement_namespace`].
    pub enforcement_namespace: String,
    /// See [`ControllerArgs::key_prefix`].
    pub key_prefix: String,
    /// See [`ControllerArgs::openapi_refresh`].
    pub openapi_refresh: Duration,
    /// See [`ControllerArgs::resync`].
    pub resync: Duration,
}

/// Runs the controller until `shutdown` is cancelled: leader election always, reconcilers while
/// leading. On shutdown in-flight reconciles finish, then the Lease is released.
pub async fn run(
    args: ControllerArgs,
    client: Client,
    telemetry: Telemetry,
    shutdown: CancellationToken,
) -> Result<()> {
    if !keys::valid_prefix(&args.key_prefix) {
        return Err(Error::Config(format!(
            "--key-prefix {:?} must be 1-16 lowercase letters or digits",
            args.key_prefix
        )));
    }
    let lease = args.lease.config()?;
    let identity = lease.identity.clone();
    let (leader_tx, mut leader_rx) = watch::channel(false);
    let release = CancellationToken::new();
    telemetry.health.register(HEALTH_COMPONENT);
    let health = telemetry.health.clone();
    let election = tokio::spawn(lease::run(
        client.clone(),
        lease,
        leader_tx,
        release.clone(),
        move || health.set_ready(HEALTH_COMPONENT, true),
    ));
    let metrics = telemetry.metrics.clone();

    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            changed = leader_rx.wait_for(|leading| *leading) => if changed.is_err() { break },
        }
        metrics.controller.set_leader(true);
        let term = shutdown.child_token();
        let mut lost = leader_rx.clone();
        let controllers = run_controllers(
            client.clone(),
            &args,
            identity.clone(),
            metrics.clone(),
            term.clone(),
        );
        tokio::pin!(controllers);
        tokio::select! {
            result = &mut controllers => result?,
            _ = lost.wait_for(|leading| !*leading) => {
                tracing::warn!("lost leadership: stopping reconcilers");
                term.cancel();
            }
        }
        metrics.controller.set_leader(false);
        if shutdown.is_cancelled() {
            break;
        }
    }
    release.cancel();
    election
        .await
        .map_err(|e| Error::Config(format!("leader election task: {e}")))?;
    Ok(())
}

/// A cached OIDC discovery: when it was fetched and the token endpoint or the error.
type OidcOutcome = (Instant, std::result::Result<String, FetchError>);

/// A policy by kind, namespace and name, remembered with the target it last pointed at.
type PolicyTargets = Arc<Mutex<HashMap<(String, String, String), Target>>>;

/// Everything the reconcilers share.
pub struct Context {
    client: Client,
    config: Settings,
    caches: Caches,
    key_product_cache: Store<APIProduct>,
    secrets: Arc<SecretCache>,
    targets: RefIndex<Target, APIProduct>,
    key_products: KeysByProduct,
    written: WrittenStatus,
    /// This replica's identity, the `reportingInstance` of its Events.
    identity: String,
    fetcher: Fetcher,
    oidc: Mutex<HashMap<String, OidcOutcome>>,
    failures: Mutex<HashMap<String, u32>>,
    metrics: Arc<Metrics>,
    /// Signalled when a reconcile moved a key to another phase, so the phase gauge follows soon.
    phase_changed: tokio::sync::Notify,
    stopping: CancellationToken,
    synced: watch::Receiver<bool>,
}

impl Context {
    /// Waits until every watch cache the reconcilers read has its initial list. Fails when the
    /// controllers stop first: the caches are fed by the controllers' own watches.
    async fn wait_synced(&self) -> Result<()> {
        let mut synced = self.synced.clone();
        tokio::select! {
            result = synced.wait_for(|ready| *ready) => result.map(|_| ()).map_err(|_| Error::ShuttingDown),
            () = self.stopping.cancelled() => Err(Error::ShuttingDown),
        }
    }

    /// Server-side-applies `status` on `object` with the controller's field manager.
    async fn apply_status<K, S>(&self, object: &K, status: &S) -> Result<()>
    where
        K: Resource<DynamicType = (), Scope = kube::core::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        S: Serialize,
    {
        let api =
            Api::<K>::namespaced(self.client.clone(), &object.namespace().unwrap_or_default());
        let patch = serde_json::json!({
            "apiVersion": K::api_version(&()),
            "kind": K::kind(&()),
            "status": status,
        });
        api.patch_status(
            &object.name_any(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&patch),
        )
        .await?;
        Ok(())
    }

    /// Server-side-applies a whole Secret of `role`.
    async fn apply_secret(&self, api: &Api<Secret>, secret: &Secret, role: Role) -> Result<()> {
        api.patch(
            secret.metadata.name.as_deref().unwrap_or_default(),
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(secret),
        )
        .await?;
        self.metrics.controller.secret_written(role.as_str());
        Ok(())
    }

    /// The Secrets devportal wrote for `key` that the cache holds.
    fn secrets_of(&self, key: &APIKey) -> Vec<OwnedSecret> {
        self.secrets.owned_by(
            key.metadata.namespace.as_deref().unwrap_or_default(),
            key.metadata.name.as_deref().unwrap_or_default(),
        )
    }

    async fn delete_secret(&self, secret: &OwnedSecret) -> Result<()> {
        let api = Api::<Secret>::namespaced(self.client.clone(), &secret.namespace);
        if apikey::delete_ignoring_missing(&api, &secret.name).await? {
            self.metrics.controller.secret_deleted(secret.role.as_str());
        }
        Ok(())
    }

    /// The OIDC token endpoint of `issuer`, cached for a few minutes (failures for less).
    async fn token_endpoint(&self, issuer: &str) -> Result<String> {
        const KEEP_OK: Duration = Duration::from_secs(600);
        const KEEP_ERR: Duration = Duration::from_secs(20);
        if let Some((at, outcome)) = self.oidc.lock().expect("oidc cache").get(issuer) {
            let keep = if outcome.is_ok() { KEEP_OK } else { KEEP_ERR };
            if at.elapsed() < keep {
                return outcome.clone().map_err(Error::from);
            }
        }
        let outcome = self.fetcher.token_endpoint(issuer).await;
        if outcome.is_err() {
            self.metrics.controller.fetch_failed("oidc");
        }
        self.oidc
            .lock()
            .expect("oidc cache")
            .insert(issuer.to_string(), (Instant::now(), outcome.clone()));
        outcome.map_err(Error::from)
    }

    /// Records a Kubernetes Event about `object`. Events are best effort: a failure is logged.
    /// Records a Kubernetes Event about `object`. Events are best effort: a failure is logged.
    /// Events are created directly rather than through kube's `Recorder`, which keeps every
    /// recent event in memory to aggregate repeats: the controller emits one per transition, so
    /// there is nothing to aggregate, and at thousands of keys that cache was most of its memory.
    async fn publish_event<K: Resource<DynamicType = ()>>(
        &self,
        object: &K,
        warning: bool,
        reason: &str,
        note: &str,
    ) {
        let regarding = object.object_ref(&());
        let namespace = regarding
            .namespace
            .clone()
            .unwrap_or_else(|| "default".into());
        let now = Timestamp::now();
        let event = Event {
            metadata: kube::api::ObjectMeta {
                // As kubectl and client-go name events: the object's name and a unique suffix.
                name: Some(format!(
                    "{}.{:x}",
                    regarding.name.as_deref().unwrap_or("object"),
                    now.as_nanosecond()
                )),
                namespace: Some(namespace.clone()),
                ..kube::api::ObjectMeta::default()
            },
            event_time: Some(MicroTime(now)),
            type_: Some(if warning { "Warning" } else { "Normal" }.into()),
            reason: Some(reason.into()),
            note: Some(note.chars().take(1000).collect()),
            action: Some("Reconcile".into()),
            reporting_controller: Some("devportal.kuadrant.io/controller".into()),
            reporting_instance: Some(self.identity.chars().take(128).collect()),
            regarding: Some(regarding),
            ..Event::default()
        };
        if let Err(error) = Api::<Event>::namespaced(self.client.clone(), &namespace)
            .create(&kube::api::PostParams::default(), &event)
            .await
        {
            tracing::warn!(%error, "could not record an event");
        }
    }

    fn backoff(&self, object: String) -> Action {
        let mut failures = self.failures.lock().expect("failure counts");
        let count = failures.entry(object).or_insert(0);
        *count = (*count + 1).min(9);
        Action::requeue(Duration::from_millis(500 << *count).min(Duration::from_secs(300)))
    }

    fn succeeded(&self, object: &str) {
        self.failures.lock().expect("failure counts").remove(object);
    }
}

/// Drops what no reconcile reads from a cached object, to keep the caches small.
fn strip<K: Resource>(object: &mut K) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
    }
}

async fn run_controllers(
    client: Client,
    args: &ControllerArgs,
    identity: String,
    metrics: Arc<Metrics>,
    term: CancellationToken,
) -> Result<()> {
    tracing::info!("leading: starting the APIProduct and APIKey controllers");
    let everything = watcher::Config::default();
    let (routes, routes_writer) = reflector::store::<HTTPRoute>();
    let (auth_policies, auth_writer) = reflector::store::<AuthPolicy>();
    let (plan_policies, plan_writer) = reflector::store::<PlanPolicy>();
    let (products, products_writer) = reflector::store::<APIProduct>();
    let (key_products, key_products_writer) = reflector::store::<APIProduct>();
    let (keys, keys_writer) = reflector::store::<CachedKey>();
    let secret_cache = Arc::new(SecretCache::default());

    let routes_stream = watcher(Api::<HTTPRoute>::all(client.clone()), everything.clone())
        .default_backoff()
        .modify(strip)
        .reflect(routes_writer)
        .touched_objects();
    let auth_stream = watcher(Api::<AuthPolicy>::all(client.clone()), everything.clone())
        .default_backoff()
        .modify(strip)
        .reflect(auth_writer)
        .touched_objects();
    let plan_stream = watcher(Api::<PlanPolicy>::all(client.clone()), everything.clone())
        .default_backoff()
        .modify(strip)
        .reflect(plan_writer)
        .touched_objects();
    let products_stream = watcher(Api::<APIProduct>::all(client.clone()), everything.clone())
        .default_backoff()
        .modify(strip)
        .reflect(products_writer)
        .applied_objects()
        // Our own status writes do not change the generation and need no reconcile.
        .predicate_filter(predicates::generation, Default::default());
    let key_products_stream = watcher(Api::<APIProduct>::all(client.clone()), everything.clone())
        .default_backoff()
        .modify(strip)
        .reflect(key_products_writer)
        .touched_objects();
    let keys_stream = watcher(Api::<CachedKey>::all(client.clone()), everything.clone())
        .default_backoff()
        .reflect(keys_writer)
        .applied_objects();
    let secrets_stream = watcher(
        Api::<PartialObjectMeta<Secret>>::all(client.clone()),
        watcher::Config::default().labels(secrets::MANAGED_SELECTOR),
    )
    .default_backoff()
    .inspect_ok({
        let cache = secret_cache.clone();
        move |event| cache.apply(event)
    })
    .touched_objects();

    // One task waits for the caches and tells every reconcile through a watch channel. (A
    // kube-runtime Store keeps a single waker per readiness signal, so many reconciles waiting
    // on the same Store directly could miss the wake-up; the controllers' own runners already
    // wait on their main stores, which is why those two are not waited on here.)
    let (synced_tx, synced) = watch::channel(false);
    let caches_synced = {
        let stores = (
            routes.clone(),
            auth_policies.clone(),
            plan_policies.clone(),
            key_products.clone(),
            secret_cache.clone(),
        );
        let term = term.clone();
        async move {
            let all = async {
                let _ = stores.0.wait_until_ready().await;
                let _ = stores.1.wait_until_ready().await;
                let _ = stores.2.wait_until_ready().await;
                let _ = stores.3.wait_until_ready().await;
                stores.4.wait_synced().await;
            };
            tokio::select! {
                () = all => {
                    tracing::debug!("watch caches synced");
                    synced_tx.send_replace(true);
                }
                () = term.cancelled() => {}
            }
        }
    };
    let ctx = Arc::new(Context {
        client: client.clone(),
        config: Settings {
            enforcement_namespace: args.enforcement_namespace.clone(),
            key_prefix: args.key_prefix.clone(),
            openapi_refresh: args.openapi_refresh,
            resync: args.resync,
        },
        caches: Caches {
            routes,
            auth_policies,
            plan_policies,
        },
        key_product_cache: key_products,
        secrets: secret_cache,
        targets: RefIndex::default(),
        key_products: KeysByProduct::default(),
        written: WrittenStatus::default(),
        identity,
        fetcher: args.fetch.fetcher(client.clone(), term.clone())?,
        oidc: Mutex::default(),
        failures: Mutex::default(),
        metrics: metrics.clone(),
        phase_changed: tokio::sync::Notify::new(),
        stopping: term.clone(),
        synced,
    });

    let config = ControllerConfig::default().concurrency(args.concurrency);
    let policy_targets = PolicyTargets::default();
    let product_controller = Controller::for_stream(products_stream, products)
        .with_config(config.clone())
        .watches_stream(routes_stream, {
            let ctx = ctx.clone();
            move |route: HTTPRoute| {
                ctx.targets.lookup(&Target {
                    kind: "HTTPRoute".into(),
                    namespace: route.namespace().unwrap_or_default(),
                    name: route.name_any(),
                })
            }
        })
        .watches_stream(
            auth_stream,
            policy_mapper(ctx.clone(), policy_targets.clone(), |p: &AuthPolicy| {
                &p.spec.target_ref
            }),
        )
        .watches_stream(
            plan_stream,
            policy_mapper(ctx.clone(), policy_targets, |p: &PlanPolicy| {
                &p.spec.target_ref
            }),
        )
        .graceful_shutdown_on(term.clone().cancelled_owned())
        .run(
            |product, ctx| measured("apiproduct", product, ctx, product::reconcile),
            retry_later,
            ctx.clone(),
        )
        .for_each(log_outcome);

    let phase_counts = count_phases(keys.clone(), ctx.clone(), term.clone());
    let key_controller = Controller::for_stream(keys_stream, keys)
        .with_config(config)
        .watches_stream(key_products_stream, {
            let ctx = ctx.clone();
            move |product: APIProduct| ctx.key_products.lookup(&ObjectRef::from_obj(&product))
        })
        .watches_stream(secrets_stream, |secret: PartialObjectMeta<Secret>| {
            let (namespace, name) = secrets::owner_reference(&secret.metadata)?.split_once('/')?;
            Some(ObjectRef::<CachedKey>::new(name).within(namespace))
        })
        .graceful_shutdown_on(term.cancelled_owned())
        .run(
            |key, ctx| measured("apikey", key, ctx, apikey::reconcile),
            retry_later,
            ctx,
        )
        .for_each(log_outcome);

    future::join4(
        product_controller,
        key_controller,
        phase_counts,
        caches_synced,
    )
    .await;
    tracing::info!("controllers stopped");
    Ok(())
}

/// Runs one reconcile of `object` by `controller` with its metrics, and forgets the object's
/// failure count when it succeeds.
async fn measured<K, Fut>(
    controller: &'static str,
    object: Arc<K>,
    ctx: Arc<Context>,
    reconcile: impl FnOnce(Arc<K>, Arc<Context>) -> Fut,
) -> Result<Action>
where
    K: Resource<DynamicType = ()>,
    Fut: Future<Output = Result<Action>>,
{
    let id = ObjectRef::from_obj(&*object).to_string();
    let started = Instant::now();
    let result = reconcile(object, ctx.clone()).await;
    ctx.metrics
        .controller
        .reconciled(controller, started.elapsed(), result.as_ref().err());
    if result.is_ok() {
        ctx.succeeded(&id);
    }
    result
}

/// The error policy of both controllers: log, and retry after the object's own backoff.
fn retry_later<K: Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    ctx: Arc<Context>,
) -> Action {
    let id = ObjectRef::from_obj(&*object);
    tracing::warn!(object = %id, %error, "reconcile failed");
    ctx.backoff(id.to_string())
}

/// Logs what the reconcile loop itself reports: watch failures (retried with backoff) and triggers
/// for objects no longer in the cache. Reconcile failures are logged by the error policies.
fn log_outcome<K, E1: std::error::Error, E2: std::error::Error>(
    outcome: std::result::Result<(ObjectRef<K>, Action), kube::runtime::controller::Error<E1, E2>>,
) -> future::Ready<()>
where
    K: Resource,
{
    use kube::runtime::controller::Error as Loop;
    match outcome {
        Err(Loop::QueueError(error)) => tracing::warn!(%error, "watch failed; retrying"),
        Err(Loop::ObjectNotFound(object)) => tracing::debug!(%object, "triggered object is gone"),
        _ => {}
    }
    future::ready(())
}

/// Publishes how many keys are in each phase, while leading: shortly after a reconcile changed a
/// phase (once the watch cache has the new status), and every few seconds regardless.
async fn count_phases(keys: Store<CachedKey>, ctx: Arc<Context>, term: CancellationToken) {
    /// Time for the status just written to reach the cache; also bounds the recounts per second.
    const SETTLE: Duration = Duration::from_millis(300);
    loop {
        let mut counts = APIKeyPhase::ALL.map(|phase| (phase, 0i64));
        for key in keys.state() {
            if let Some(phase) = key.phase()
                && let Some(slot) = counts.iter_mut().find(|(p, _)| *p == phase)
            {
                slot.1 += 1;
            }
        }
        ctx.metrics.controller.set_keys(counts);
        tokio::select! {
            () = term.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(5)) => {}
            () = ctx.phase_changed.notified() => tokio::time::sleep(SETTLE).await,
        }
    }
}

/// Maps a policy event to the products on its target — and on its previous target, so products
/// a policy was moved away from are reconciled too.
fn policy_mapper<P>(
    ctx: Arc<Context>,
    previous: PolicyTargets,
    target_of: fn(&P) -> &crate::resources::kuadrant::PolicyTargetRef,
) -> impl Fn(P) -> Vec<ObjectRef<APIProduct>>
where
    P: Resource<DynamicType = ()>,
{
    move |policy: P| {
        let namespace = policy.meta().namespace.clone().unwrap_or_default();
        let id = (
            P::kind(&()).to_string(),
            namespace.clone(),
            policy.meta().name.clone().unwrap_or_default(),
        );
        let current = Target::of_policy(target_of(&policy), &namespace);
        let mut remembered = previous.lock().expect("policy targets");
        let before = match &current {
            Some(target) => remembered.insert(id, target.clone()),
            None => remembered.remove(&id),
        };
        drop(remembered);
        let mut products: Vec<_> = current
            .iter()
            .chain(before.iter())
            .flat_map(|t| ctx.targets.lookup(t))
            .collect();
        products.sort_by_key(|p| p.to_string());
        products.dedup();
        products
    }
}
