//! `/metrics` (Prometheus/OpenMetrics text via `prometheus-client`), for a site admin's token:
//! request counts and latency per route and status, git service durations (this process), and
//! the delivery figures per mirror and per trigger (from the database, so every replica
//! reports the same).

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

use crate::access::Caller;
use crate::app::AppState;
use crate::error::HttpError;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: String,
    method: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    /// hit, follow (read while another request produces it), produce, bypass, none (not a clone)
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MirrorLabels {
    repo: String,
    mirror: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TriggerLabels {
    /// `*` for a server-wide trigger.
    repo: String,
    trigger: String,
    kind: String,
}

/// The process's own metrics; cheap to clone into the request path.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
    git: Family<ServiceLabels, Histogram>,
    verifications: Counter,
    directory_checks: Counter,
    pack_cache: Family<CacheLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.001, 2.0, 16))
        });
        let git = Family::<ServiceLabels, Histogram>::new_with_constructor(|| {
            Histogram::new(exponential_buckets(0.005, 2.0, 16))
        });
        registry.register(
            "kura_http_requests",
            "HTTP requests answered",
            requests.clone(),
        );
        registry.register(
            "kura_http_request_duration_seconds",
            "Time to the response head, per route and status",
            latency.clone(),
        );
        registry.register(
            "kura_git_service_duration_seconds",
            "Duration of git upload-pack/receive-pack runs, until their output ends",
            git.clone(),
        );
        let verifications = Counter::default();
        registry.register(
            "kura_password_verifications",
            "Password verifications (argon2id) run; cached sign-ins do not count",
            verifications.clone(),
        );
        let directory_checks = Counter::default();
        registry.register(
            "kura_directory_checks",
            "Passwords sent to the company directory; remembered sign-ins do not count",
            directory_checks.clone(),
        );
        let pack_cache = Family::<CacheLabels, Counter>::default();
        registry.register(
            "kura_pack_cache_requests",
            "upload-pack requests by what the pack cache did with them",
            pack_cache.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            git,
            verifications,
            directory_checks,
            pack_cache,
        }
    }
}

impl Metrics {
    pub fn password_verified(&self) {
        self.verifications.inc();
    }

    pub fn pack_cache(&self, result: &str) {
        self.pack_cache
            .get_or_create(&CacheLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn directory_checked(&self) {
        self.directory_checks.inc();
    }

    pub fn observe_git(&self, service: &str, seconds: f64) {
        self.git
            .get_or_create(&ServiceLabels {
                service: service.to_string(),
            })
            .observe(seconds);
    }
}

/// Counts every request by its route pattern (never the raw path: names stay out of labels).
pub async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let method = req.method().as_str().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    let labels = RequestLabels {
        route,
        method,
        status: resp.status().as_u16(),
    };
    state.metrics.requests.get_or_create(&labels).inc();
    state
        .metrics
        .latency
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    resp
}

pub async fn metrics(State(state): State<AppState>, caller: Caller) -> Result<Response, HttpError> {
    if let Err(d) = crate::access::require_metrics_reader(&caller) {
        return Err(match d {
            crate::access::Denied::SignIn { .. } => HttpError::unauthorized(
                "/metrics needs a site admin's token: send Authorization: Bearer kura_... (kura token create admin --scope read)",
            ),
            _ => HttpError::forbidden(
                "/metrics needs a site admin's token (not a password): kura token create admin --scope read",
            ),
        });
    }
    let mut deliveries = Registry::default();
    let lag = Family::<MirrorLabels, Gauge>::default();
    let pending = Family::<MirrorLabels, Gauge>::default();
    let runs = Family::<MirrorLabels, Counter>::default();
    let failures = Family::<MirrorLabels, Counter>::default();
    let last = Family::<MirrorLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    for (m, st) in state.ops.all_mirror_statuses().await? {
        let l = MirrorLabels {
            repo: m.repo.clone(),
            mirror: m.url.clone(),
        };
        lag.get_or_create(&l).set(st.lag_seconds);
        pending.get_or_create(&l).set(st.pending);
        runs.get_or_create(&l).inc_by(m.runs.max(0) as u64);
        failures.get_or_create(&l).inc_by(m.failures.max(0) as u64);
        if let Some(ms) = m.last_duration_ms {
            last.get_or_create(&l).set(ms as f64 / 1000.0);
        }
    }
    deliveries.register(
        "kura_mirror_lag_seconds",
        "Seconds since the oldest push not yet mirrored",
        lag,
    );
    deliveries.register(
        "kura_mirror_pending_jobs",
        "Pushes queued for the mirror",
        pending,
    );
    deliveries.register("kura_mirror_runs", "Mirror runs", runs);
    deliveries.register("kura_mirror_failures", "Failed mirror runs", failures);
    deliveries.register(
        "kura_mirror_last_run_seconds",
        "Duration of the last run",
        last,
    );
    register_triggers(&state, &mut deliveries).await?;
    if let Some(cache) = &state.pack_cache {
        let st = cache.stats();
        let bytes = Gauge::<i64>::default();
        bytes.set(st.bytes as i64);
        let entries = Gauge::<i64>::default();
        entries.set(st.entries as i64);
        let evictions: Counter = Counter::default();
        evictions.inc_by(st.evictions);
        deliveries.register(
            "kura_pack_cache_bytes",
            "Bytes of packs in the pack cache",
            bytes,
        );
        deliveries.register(
            "kura_pack_cache_entries",
            "Packs in the pack cache",
            entries,
        );
        deliveries.register(
            "kura_pack_cache_evictions",
            "Packs evicted to stay within pack_cache_size",
            evictions,
        );
    }
    let mut body = String::new();
    encode_registry(&mut body, &state.metrics.registry)
        .and_then(|_| encode_registry(&mut body, &deliveries))
        .and_then(|_| encode_eof(&mut body))
        .map_err(HttpError::internal)?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}

/// Per trigger: events pending and the oldest one's age, events delivered and given up, and
/// failed attempts (runs), from the database like the mirror figures.
async fn register_triggers(state: &AppState, reg: &mut Registry) -> Result<(), HttpError> {
    let pending = Family::<TriggerLabels, Gauge>::default();
    let lag = Family::<TriggerLabels, Gauge>::default();
    let delivered = Family::<TriggerLabels, Counter>::default();
    let given_up = Family::<TriggerLabels, Counter>::default();
    let failures = Family::<TriggerLabels, Counter>::default();
    for t in state.ops.all_triggers().await? {
        let l = TriggerLabels {
            repo: t.trigger.repo.clone().unwrap_or_else(|| "*".into()),
            trigger: t.trigger.id.to_string(),
            kind: t.kind().to_string(),
        };
        pending.get_or_create(&l).set(t.status.pending);
        lag.get_or_create(&l).set(t.status.lag_seconds);
        delivered
            .get_or_create(&l)
            .inc_by(t.trigger.delivered.max(0) as u64);
        given_up
            .get_or_create(&l)
            .inc_by(t.trigger.given_up.max(0) as u64);
        failures
            .get_or_create(&l)
            .inc_by(t.trigger.failures.max(0) as u64);
    }
    reg.register(
        "kura_trigger_pending_events",
        "Events queued for the trigger, not yet sent",
        pending,
    );
    reg.register(
        "kura_trigger_lag_seconds",
        "Seconds since the oldest event not yet sent",
        lag,
    );
    reg.register(
        "kura_trigger_delivered_events",
        "Events the trigger's target accepted",
        delivered,
    );
    reg.register(
        "kura_trigger_given_up_events",
        "Events given up after retrying for trigger_retry_for",
        given_up,
    );
    reg.register(
        "kura_trigger_failed_attempts",
        "Delivery runs that failed (each is retried)",
        failures,
    );
    Ok(())
}

/// Once a minute, while the repositories have mirrors: one `mirror lag` line with the largest
/// lag, for log-based alarms (a CloudWatch metric filter on `fields.lag_seconds`) where nothing
/// scrapes `/metrics`. Every replica logs the same figures (they come from the database).
pub fn spawn_lag_log(ops: crate::Ops) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            match ops.all_mirror_statuses().await {
                Ok(all) if all.is_empty() => {}
                Ok(all) => {
                    let lag = all.iter().map(|(_, st)| st.lag_seconds).max().unwrap_or(0);
                    let pending: i64 = all.iter().map(|(_, st)| st.pending).sum();
                    let behind = all.iter().filter(|(_, st)| st.pending > 0).count();
                    tracing::info!(
                        lag_seconds = lag,
                        pending,
                        mirrors = all.len(),
                        behind,
                        "mirror lag"
                    );
                }
                Err(e) => tracing::warn!(error = %e, "cannot read the mirrors' lag"),
            }
        }
    })
}
