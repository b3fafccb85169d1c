//! Push triggers: adding (with every setting checked, webhook targets against the allow list),
//! listing, removing, the delivery log and redelivery. A trigger belongs to a repository or is
//! server-wide (`TriggerScope::Server`); front ends decide who may touch which.

use kura_db::{DeliveryAttempt, DeliveryFilter, Trigger, TriggerDelivery};
use kura_mirror::trigger::{
    parse_url, Filters, TriggerKind, TriggerSettings, Variable, WebhookFormat,
};

use super::mirrors::DeliveryStatus;
use super::{Ops, OpsError, Result};
use crate::names::RepoPath;

/// The most deliveries one page of the log returns.
pub const MAX_DELIVERIES: i64 = 200;

#[derive(Debug, Clone)]
pub enum TriggerScope {
    Repo(RepoPath),
    /// Every repository (site admins).
    Server,
}

/// What `kura trigger add` / `POST .../triggers` asks for.
pub struct TriggerRequest<'a> {
    /// `webhook`, `eventbridge` or `codepipeline`.
    pub kind: &'a str,
    /// The webhook URL, the bus (name or ARN; default `default`) or the pipeline name.
    pub target: Option<&'a str>,
    pub secret: Option<String>,
    pub format: Option<&'a str>,
    pub detail_type: Option<&'a str>,
    /// `NAME=VALUE` (CodePipeline).
    pub variables: &'a [String],
    pub filters: Filters,
}

/// A trigger with its settings read, as the front ends show it.
pub struct TriggerInfo {
    pub trigger: Trigger,
    pub settings: TriggerSettings,
    pub status: DeliveryStatus,
}

impl TriggerInfo {
    pub fn kind(&self) -> &'static str {
        self.settings.kind.name()
    }
    /// The target as it may be shown: a webhook URL without its query (tokens live there).
    pub fn shown_target(&self) -> String {
        match self.settings.kind {
            TriggerKind::Webhook { .. } => kura_mirror::trigger::display_url(&self.trigger.target),
            _ => self.trigger.target.clone(),
        }
    }
}

fn invalid(m: impl Into<String>) -> OpsError {
    OpsError::Invalid(m.into())
}

fn check_bus(bus: &str) -> Result<()> {
    let name = bus
        .rsplit_once(":event-bus/")
        .map(|(_, n)| n)
        .unwrap_or(bus);
    let ok = !name.is_empty()
        && bus.len() <= 1600
        && name.len() <= 256
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && (!bus.contains(':') || bus.starts_with("arn:"));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{bus:?} is not an EventBridge bus: give its name (letters, digits, . _ - /) or its ARN"
        )))
    }
}

fn check_pipeline(p: &str) -> Result<()> {
    let ok = !p.is_empty()
        && p.len() <= 100
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || ".@-_".contains(c));
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "{p:?} is not a CodePipeline pipeline name (letters, digits, . @ - _; at most 100)"
        )))
    }
}

impl Ops {
    async fn scope_repo_id(&self, scope: &TriggerScope) -> Result<Option<i64>> {
        match scope {
            TriggerScope::Repo(p) => Ok(Some(self.repo(p).await?.id)),
            TriggerScope::Server => Ok(None),
        }
    }

    pub async fn add_trigger(
        &self,
        scope: &TriggerScope,
        req: TriggerRequest<'_>,
    ) -> Result<TriggerInfo> {
        let repo_id = self.scope_repo_id(scope).await?;
        req.filters.check().map_err(invalid)?;
        let config = self.triggers.kind().config();
        let only_webhook = |what: &str| invalid(format!("{what} applies to webhook triggers only"));
        if req.kind != "webhook" {
            if req.secret.is_some() {
                return Err(only_webhook("a secret"));
            }
            if req.format.is_some() {
                return Err(only_webhook("a format"));
            }
        }
        if req.kind != "eventbridge" && req.detail_type.is_some() {
            return Err(invalid(
                "a detail-type applies to eventbridge triggers only",
            ));
        }
        if req.kind != "codepipeline" && !req.variables.is_empty() {
            return Err(invalid("variables apply to codepipeline triggers only"));
        }
        let (kind, target) = match req.kind {
            "webhook" => {
                let url = req
                    .target
                    .ok_or_else(|| invalid("a webhook trigger needs the URL to POST to"))?;
                parse_url(url).map_err(invalid)?;
                config.webhooks.check_url(url).await.map_err(invalid)?;
                if let Some(s) = &req.secret {
                    if s.is_empty() || s.len() > 4096 {
                        return Err(invalid("the webhook secret must be 1 to 4096 characters"));
                    }
                }
                let format = WebhookFormat::parse(req.format.unwrap_or("json")).map_err(invalid)?;
                (TriggerKind::Webhook { format }, url.to_string())
            }
            "eventbridge" => {
                let bus = req.target.unwrap_or("default");
                check_bus(bus)?;
                let detail_type = req.detail_type.unwrap_or("Kura Push").trim();
                if detail_type.is_empty() || detail_type.len() > 128 {
                    return Err(invalid("the detail-type must be 1 to 128 characters"));
                }
                (
                    TriggerKind::Eventbridge {
                        detail_type: detail_type.to_string(),
                    },
                    bus.to_string(),
                )
            }
            "codepipeline" => {
                let p = req
                    .target
                    .ok_or_else(|| invalid("a codepipeline trigger needs the pipeline's name"))?;
                check_pipeline(p)?;
                let variables = req
                    .variables
                    .iter()
                    .map(|v| Variable::parse(v))
                    .collect::<std::result::Result<Vec<_>, _>>()
                    .map_err(invalid)?;
                (TriggerKind::Codepipeline { variables }, p.to_string())
            }
            other => {
                return Err(invalid(format!(
                    "unknown trigger kind {other:?}: use webhook, eventbridge or codepipeline"
                )))
            }
        };
        let settings = TriggerSettings {
            kind,
            filters: req.filters,
        };
        let sealed = match &req.secret {
            Some(s) => Some(
                config
                    .secrets
                    .seal(s)
                    .map_err(|e| OpsError::Internal(e.to_string()))?,
            ),
            None => None,
        };
        let id = self
            .db
            .add_trigger(&kura_db::NewTrigger {
                repo_id,
                target: &target,
                settings: &settings.to_json(),
                secret: sealed.as_deref(),
            })
            .await?;
        self.trigger_info(id).await
    }

    async fn trigger_info(&self, id: i64) -> Result<TriggerInfo> {
        let t = self
            .db
            .trigger_by_id(id)
            .await?
            .ok_or_else(|| OpsError::TriggerNotFound(id.to_string()))?;
        self.info(t).await
    }

    async fn info(&self, t: Trigger) -> Result<TriggerInfo> {
        let settings = TriggerSettings::from_json(&t.settings).map_err(OpsError::Internal)?;
        let p = self.db.pending(t.id).await?;
        let status = DeliveryStatus::new(t.next_attempt_at, p, kura_db::now());
        Ok(TriggerInfo {
            trigger: t,
            settings,
            status,
        })
    }

    pub async fn triggers(&self, scope: &TriggerScope) -> Result<Vec<TriggerInfo>> {
        let repo_id = self.scope_repo_id(scope).await?;
        let mut out = Vec::new();
        for t in self.db.triggers(repo_id).await? {
            out.push(self.info(t).await?);
        }
        Ok(out)
    }

    /// Every trigger with its status (for `/metrics`).
    pub async fn all_triggers(&self) -> Result<Vec<TriggerInfo>> {
        let mut out = Vec::new();
        for t in self.db.all_triggers().await? {
            out.push(self.info(t).await?);
        }
        Ok(out)
    }

    /// A trigger by id, when it belongs to `scope` (otherwise it does not exist for the caller).
    pub async fn trigger(&self, scope: &TriggerScope, id: i64) -> Result<TriggerInfo> {
        let repo_id = self.scope_repo_id(scope).await?;
        match self.db.trigger_by_id(id).await? {
            Some(t) if t.repo_id == repo_id => self.info(t).await,
            _ => Err(OpsError::TriggerNotFound(id.to_string())),
        }
    }

    /// What the pusher's line names a trigger by: its kind and target host (or bus, pipeline),
    /// without reading its queue.
    pub async fn trigger_label(&self, id: i64) -> Result<String> {
        let t = self
            .db
            .trigger_by_id(id)
            .await?
            .ok_or_else(|| OpsError::TriggerNotFound(id.to_string()))?;
        let settings = TriggerSettings::from_json(&t.settings).map_err(OpsError::Internal)?;
        let target = match settings.kind {
            TriggerKind::Webhook { .. } => url::Url::parse(&t.target)
                .ok()
                .and_then(|u| u.host_str().map(String::from))
                .unwrap_or_default(),
            _ => t.target,
        };
        Ok(format!("{} {target}", settings.kind.name()))
    }

    /// A trigger by id, wherever it is (the CLI, run by the server's operator).
    pub async fn trigger_anywhere(&self, id: i64) -> Result<TriggerInfo> {
        self.trigger_info(id).await
    }

    /// Removes a trigger of `scope` (`None`: anywhere, for the CLI) and its pending events;
    /// only triggers: a mirror's id is not one.
    pub async fn remove_trigger(
        &self,
        scope: Option<&TriggerScope>,
        id: i64,
    ) -> Result<TriggerInfo> {
        let t = match scope {
            Some(scope) => self.trigger(scope, id).await?,
            None => self.trigger_anywhere(id).await?,
        };
        if !self.db.remove_target(t.trigger.id).await? {
            return Err(OpsError::TriggerNotFound(id.to_string()));
        }
        Ok(t)
    }

    /// The delivery log of a scope, newest first: the deliveries of a repository's own
    /// triggers, or of the server-wide ones.
    pub async fn trigger_deliveries(
        &self,
        scope: &TriggerScope,
        trigger: Option<i64>,
        failed: bool,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<TriggerDelivery>> {
        let repo_id = self.scope_repo_id(scope).await?;
        if let Some(t) = trigger {
            self.trigger(scope, t).await?;
        }
        Ok(self
            .db
            .trigger_deliveries(DeliveryFilter {
                repo_id,
                trigger_repo: Some(repo_id),
                target_id: trigger,
                failed,
                before,
                limit: limit.clamp(1, MAX_DELIVERIES),
            })
            .await?)
    }

    /// A delivery and its attempts, when it belongs to `scope`: of one of the repository's
    /// own triggers, or of a server-wide trigger (`None`: anywhere, for the CLI).
    pub async fn delivery(
        &self,
        scope: Option<&TriggerScope>,
        id: i64,
    ) -> Result<(TriggerDelivery, Vec<DeliveryAttempt>)> {
        let d = self
            .db
            .trigger_delivery(id)
            .await?
            .ok_or(OpsError::DeliveryNotFound(id))?;
        if let Some(scope) = scope {
            let t = self
                .db
                .trigger_by_id(d.target_id)
                .await?
                .ok_or(OpsError::DeliveryNotFound(id))?;
            let fits = match scope {
                TriggerScope::Repo(p) => {
                    let repo = self.repo(p).await?;
                    d.repo_id == Some(repo.id) && t.repo_id == Some(repo.id)
                }
                TriggerScope::Server => t.repo_id.is_none(),
            };
            if !fits {
                return Err(OpsError::DeliveryNotFound(id));
            }
        }
        let attempts = self.db.delivery_attempts(id).await?;
        Ok((d, attempts))
    }

    /// Sends a delivery's event again as a new delivery; returns its id.
    pub async fn redeliver(&self, scope: Option<&TriggerScope>, id: i64) -> Result<i64> {
        self.delivery(scope, id).await?;
        let new = self
            .db
            .redeliver(id)
            .await?
            .ok_or(OpsError::DeliveryNotFound(id))?;
        self.triggers.kick();
        Ok(new)
    }
}
