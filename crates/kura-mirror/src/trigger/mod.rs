//! Push triggers, the second kind of delivery: one event per pushed ref update, sent to a
//! webhook (JSON or a Mattermost/Slack message, HMAC-signed), put on an EventBridge bus, or
//! starting a CodePipeline execution. Queued with the push (`record_push`), delivered in order
//! per trigger by the shared engine (lease, backoff), every attempt logged; an event that
//! matches none of the trigger's filters is marked skipped with the reason.

mod allow;
mod event;
mod settings;
mod webhook;

use std::time::{Duration, Instant};

use kura_db::{
    Db, DeliveryAttempt, DeliveryState, RunSuccess, TargetKind, Trigger, TriggerDelivery,
};
use kura_git::RepoStore;
use tokio::sync::OnceCell;

pub use allow::AllowList;
use event::PushEvent;
pub use event::Urls;
pub use settings::{Filters, TriggerKind, TriggerSettings, Variable, WebhookFormat};
use webhook::signature;
pub use webhook::{display_url, parse_url, WebhookClient};

use crate::delivery::{Deliver, Engine, EngineSettings};
use crate::secret::SecretBox;

#[derive(Clone)]
pub struct TriggerConfig {
    pub engine: EngineSettings,
    pub secrets: SecretBox,
    pub webhooks: WebhookClient,
    /// A delivery still failing this long after its push is given up (redeliver by hand).
    pub retry_for: Duration,
    /// For links in events (`public_url`).
    pub urls: Urls,
    pub aws_region: Option<String>,
}

/// A claimed trigger with its settings read.
pub struct Loaded {
    pub row: Trigger,
    pub settings: Result<TriggerSettings, String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct TriggerError(pub String);

impl From<kura_db::DbError> for TriggerError {
    fn from(e: kura_db::DbError) -> TriggerError {
        TriggerError(format!("database: {e}"))
    }
}

pub struct Outcome {
    pub summary: String,
}

pub struct Triggers {
    db: Db,
    store: RepoStore,
    config: TriggerConfig,
    aws: OnceCell<kura_aws::SdkConfig>,
}

impl Triggers {
    pub fn config(&self) -> &TriggerConfig {
        &self.config
    }

    /// Builds and keeps the events of just-queued deliveries now, while the repository is as
    /// the push left it (a trigger waiting behind a failing target would otherwise see later
    /// pushes); each ref's event is built once for all its triggers.
    pub async fn prebuild(&self, ids: &[i64]) {
        let mut built: std::collections::HashMap<String, String> = Default::default();
        for id in ids {
            let Ok(Some(d)) = self.db.trigger_delivery(*id).await else {
                continue;
            };
            if d.event.is_some() {
                continue;
            }
            let key = format!("{} {} {}", d.ref_name, d.old_id, d.new_id);
            if let Some(json) = built.get(&key) {
                let _ = self.db.set_delivery_event(d.id, json).await;
                continue;
            }
            match self.event_of(&d).await {
                Ok(ev) => {
                    if let Ok(json) = serde_json::to_string(&ev) {
                        built.insert(key, json);
                    }
                }
                Err(e) => tracing::warn!(delivery = d.id, error = %e, "cannot build the event yet"),
            }
        }
    }
}

/// What one kind of trigger answered.
struct Sent {
    status: Option<i64>,
    excerpt: String,
}

impl Deliver for Triggers {
    type Target = Loaded;
    type Outcome = Outcome;
    type Error = TriggerError;

    const KIND: TargetKind = TargetKind::Trigger;
    const COVERS_QUEUE: bool = false;

    async fn load(&self, db: &Db, id: i64) -> kura_db::Result<Option<Loaded>> {
        Ok(db.trigger_by_id(id).await?.map(|row| Loaded {
            settings: TriggerSettings::from_json(&row.settings),
            row,
        }))
    }

    async fn deliver(&self, t: &Loaded, covers: i64) -> Result<Outcome, TriggerError> {
        let settings = t.settings.as_ref().map_err(|e| TriggerError(e.clone()))?;
        let (mut delivered, mut skipped, mut given_up) = (0, 0, 0);
        loop {
            let batch = self
                .db
                .pending_trigger_deliveries(t.row.id, covers, 50)
                .await?;
            if batch.is_empty() {
                break;
            }
            for d in batch {
                let started_at = kura_db::now();
                let started = Instant::now();
                // An event that cannot be built is a failed attempt like any other (logged,
                // retried, given up after `retry_for`): it must not hold the queue for good.
                let event = match self.event_of(&d).await {
                    Ok(e) => Some(e),
                    Err(e) => {
                        tracing::warn!(delivery = d.id, error = %e, "cannot build the event");
                        None
                    }
                };
                let skip = event.as_ref().and_then(|event| {
                    settings.filters.decide(event).err().or_else(|| {
                        (matches!(settings.kind, TriggerKind::Codepipeline { .. }) && event.deleted)
                            .then(|| {
                                "a deletion: there is nothing for the pipeline to build".to_string()
                            })
                    })
                });
                if let Some(why) = skip {
                    self.db.skip_delivery(d.id, &why).await?;
                    skipped += 1;
                    continue;
                }
                let sent = match &event {
                    Some(event) => self.send(t, settings, &d, event).await,
                    None => Err(format!(
                        "the event of {} could not be built from the repository; see the server log",
                        d.ref_name
                    )),
                };
                let duration_ms = started.elapsed().as_millis() as i64;
                let (ok, status, error, excerpt) = match sent {
                    Ok(s) => {
                        let ok = s.status.is_none_or(|c| (200..300).contains(&c));
                        let err = (!ok).then(|| format!("answered HTTP {}", s.status.unwrap_or(0)));
                        (ok, s.status, err, Some(s.excerpt))
                    }
                    Err(e) => (false, None, Some(crate::sanitize(&e)), None),
                };
                let give_up =
                    !ok && kura_db::now() - d.created_at >= self.config.retry_for.as_secs() as i64;
                let done = if ok {
                    Some(DeliveryState::Delivered)
                } else if give_up {
                    Some(DeliveryState::Failed)
                } else {
                    None
                };
                let attempt = DeliveryAttempt {
                    id: 0,
                    delivery_id: d.id,
                    started_at,
                    duration_ms,
                    status_code: status,
                    error: error.clone(),
                    response_excerpt: excerpt.filter(|e| !e.is_empty()),
                };
                self.db.record_attempt(&attempt, done).await?;
                if ok {
                    delivered += 1;
                } else if give_up {
                    tracing::warn!(delivery = d.id, error = ?error, "trigger delivery given up");
                    given_up += 1;
                } else {
                    return Err(TriggerError(format!(
                        "delivery {}: {}",
                        d.id,
                        error.unwrap_or_default()
                    )));
                }
            }
        }
        Ok(Outcome {
            summary: format!("{delivered} delivered, {skipped} skipped, {given_up} given up"),
        })
    }

    fn lease_lost(&self) -> TriggerError {
        TriggerError("the run's lease was lost; undelivered events are sent again".into())
    }

    fn span(&self, t: &Loaded) -> tracing::Span {
        let shown = match &t.settings {
            Ok(TriggerSettings {
                kind: TriggerKind::Webhook { .. },
                ..
            }) => webhook::display_url(&t.row.target)
                .split('/')
                .take(3)
                .collect::<Vec<_>>()
                .join("/"),
            _ => t.row.target.clone(),
        };
        tracing::info_span!("trigger", trigger_id = t.row.id, repo = t.row.repo.as_deref().unwrap_or("*"), target = %shown)
    }

    fn attempts(&self, t: &Loaded) -> i64 {
        t.row.attempts
    }

    fn success<'a>(&self, o: &'a Outcome) -> RunSuccess<'a> {
        RunSuccess {
            summary: &o.summary,
            verified: true,
            remote_heads: "",
        }
    }
}

impl Triggers {
    /// The event as first built, or built now (and kept) from the repository.
    async fn event_of(&self, d: &TriggerDelivery) -> Result<PushEvent, TriggerError> {
        if let Some(e) = d
            .event
            .as_deref()
            .and_then(|j| serde_json::from_str(j).ok())
        {
            return Ok(e);
        }
        let repo_id = d
            .repo_id
            .ok_or_else(|| TriggerError(format!("delivery {} names no repository", d.id)))?;
        let repo =
            self.db.repo_by_id(repo_id).await?.ok_or_else(|| {
                TriggerError(format!("the repository of delivery {} is gone", d.id))
            })?;
        let full = repo.full_name();
        let ev = event::build(
            &self.store,
            &event::Update {
                repo_id,
                repository: &full,
                default_branch: &repo.default_branch,
                ref_name: &d.ref_name,
                before: &d.old_id,
                after: &d.new_id,
                pusher: &d.pusher,
                pushed_at: d.created_at,
            },
        )
        .await
        .map_err(TriggerError)?;
        if let Ok(json) = serde_json::to_string(&ev) {
            self.db.set_delivery_event(d.id, &json).await?;
        }
        Ok(ev)
    }

    async fn aws(&self) -> &kura_aws::SdkConfig {
        self.aws
            .get_or_init(|| kura_aws::sdk_config(self.config.aws_region.as_deref()))
            .await
    }

    async fn send(
        &self,
        t: &Loaded,
        s: &TriggerSettings,
        d: &TriggerDelivery,
        e: &PushEvent,
    ) -> Result<Sent, String> {
        let urls = &self.config.urls.now();
        match &s.kind {
            TriggerKind::Webhook { format } => {
                let body = match format {
                    WebhookFormat::Json => e.webhook_json(urls),
                    WebhookFormat::Mattermost => e.mattermost(urls),
                };
                let body = serde_json::to_vec(&body).map_err(|e| e.to_string())?;
                let mut headers = vec![
                    ("X-Kura-Event", "push".to_string()),
                    ("X-Kura-Delivery", d.id.to_string()),
                ];
                if let Some(sealed) = &t.row.secret {
                    let secret = self
                        .config
                        .secrets
                        .open(sealed)
                        .map_err(|e| format!("cannot open the trigger's secret ({e}): the server key (KURA_SECRET_KEY or secret.key) changed since it was added; add the trigger again with its secret"))?;
                    headers.push(("X-Kura-Signature-256", signature(&secret, &body)));
                }
                let a = self
                    .config
                    .webhooks
                    .post(&t.row.target, body, &headers)
                    .await?;
                Ok(Sent {
                    status: Some(a.status as i64),
                    excerpt: a.excerpt,
                })
            }
            TriggerKind::Eventbridge { detail_type } => {
                let detail = e.eventbridge_detail(d.id, urls).to_string();
                let id = kura_aws::put_event(
                    self.aws().await,
                    &t.row.target,
                    "kura",
                    detail_type,
                    &detail,
                )
                .await
                .map_err(|e| e.to_string())?;
                Ok(Sent {
                    status: None,
                    excerpt: format!("event {id}"),
                })
            }
            TriggerKind::Codepipeline { variables } => {
                let vars: Vec<kura_aws::PipelineVariable> = variables
                    .iter()
                    .map(|v| kura_aws::PipelineVariable {
                        name: v.name.clone(),
                        value: v.render(e),
                    })
                    .collect();
                // The same token on a retry: CodePipeline starts one execution per delivery.
                let token = format!("kura-{}-{}-{}", t.row.id, d.id, t.row.created_at);
                let id = kura_aws::start_pipeline(self.aws().await, &t.row.target, &vars, &token)
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(Sent {
                    status: None,
                    excerpt: format!("execution {id}"),
                })
            }
        }
    }
}

/// The trigger worker of this process: the delivery engine with the trigger kind.
pub type TriggerWorker = Engine<Triggers>;

/// The trigger worker for this process's database and repositories.
pub fn trigger_worker(db: Db, store: RepoStore, config: TriggerConfig) -> TriggerWorker {
    let engine_settings = config.engine.clone();
    Engine::new(
        db.clone(),
        Triggers {
            db,
            store,
            config,
            aws: OnceCell::new(),
        },
        engine_settings,
    )
}
