//! Push triggers: `delivery_targets` rows of kind `trigger` (a repository's, or server-wide with
//! no repository), their deliveries (one per pushed ref update, each with its own status and
//! event) and the log of every attempt. Claiming, leases and backoff are `delivery.rs`'s.

use sqlx::Row;

use crate::delivery::TargetKind;
use crate::{now, Db, Result};

#[derive(Debug, Clone)]
pub struct Trigger {
    pub id: i64,
    /// `None`: server-wide (every repository).
    pub repo_id: Option<i64>,
    /// `namespace/name` of the repository, for repository triggers.
    pub repo: Option<String>,
    /// The webhook URL, the EventBridge bus or the CodePipeline pipeline.
    pub target: String,
    /// The kind's settings as JSON (kura-mirror's `TriggerSettings`).
    pub settings: String,
    /// Encrypted webhook secret (kura-mirror's secret box), never plaintext.
    pub secret: Option<String>,
    pub created_at: i64,
    pub next_attempt_at: i64,
    pub attempts: i64,
    pub last_attempt_at: Option<i64>,
    pub last_success_at: Option<i64>,
    pub last_error: Option<String>,
    pub last_duration_ms: Option<i64>,
    pub runs: i64,
    pub failures: i64,
    /// Events the target accepted, and events given up, ever.
    pub delivered: i64,
    pub given_up: i64,
}

const TRIGGER_SELECT: &str = "SELECT t.id, t.repo_id, CASE WHEN r.id IS NULL THEN NULL ELSE n.name || '/' || r.name END AS repo, \
     t.url, t.settings, t.secret, t.created_at, t.next_attempt_at, t.attempts, t.last_attempt_at, \
     t.last_success_at, t.last_error, t.last_duration_ms, t.runs, t.failures, t.delivered, t.given_up \
     FROM delivery_targets t LEFT JOIN repos r ON r.id = t.repo_id LEFT JOIN namespaces n ON n.id = r.namespace_id \
     WHERE t.kind = 'trigger'";

fn trigger(row: &sqlx::any::AnyRow) -> Result<Trigger> {
    Ok(Trigger {
        id: row.try_get("id")?,
        repo_id: row.try_get("repo_id")?,
        repo: row.try_get("repo")?,
        target: row.try_get("url")?,
        settings: row.try_get("settings")?,
        secret: row.try_get("secret")?,
        created_at: row.try_get("created_at")?,
        next_attempt_at: row.try_get("next_attempt_at")?,
        attempts: row.try_get("attempts")?,
        last_attempt_at: row.try_get("last_attempt_at")?,
        last_success_at: row.try_get("last_success_at")?,
        last_error: row.try_get("last_error")?,
        last_duration_ms: row.try_get("last_duration_ms")?,
        runs: row.try_get("runs")?,
        failures: row.try_get("failures")?,
        delivered: row.try_get("delivered")?,
        given_up: row.try_get("given_up")?,
    })
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryState {
    /// Not yet sent, or failed and to be retried.
    Pending,
    Delivered,
    /// Not sent: the event matched none of the trigger's filters (`note` says which).
    Skipped,
    /// Given up after retrying for the configured time; can be redelivered by hand.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Skipped => "skipped",
            DeliveryState::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> DeliveryState {
        match s {
            "delivered" => DeliveryState::Delivered,
            "skipped" => DeliveryState::Skipped,
            "failed" => DeliveryState::Failed,
            _ => DeliveryState::Pending,
        }
    }
}

/// One event owed to one trigger: a pushed ref update.
#[derive(Debug, Clone)]
pub struct TriggerDelivery {
    pub id: i64,
    pub target_id: i64,
    pub repo_id: Option<i64>,
    /// `namespace/name`, while the repository exists.
    pub repo: Option<String>,
    pub push_id: Option<i64>,
    pub ref_name: String,
    pub old_id: String,
    pub new_id: String,
    pub pusher: String,
    pub created_at: i64,
    pub done_at: Option<i64>,
    pub state: DeliveryState,
    pub attempts: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub note: Option<String>,
    /// The event as first built (JSON); retries and redeliveries send the same.
    pub event: Option<String>,
    pub redelivery_of: Option<i64>,
}

const DELIVERY_SELECT: &str = "SELECT d.id, d.target_id, d.repo_id, \
     CASE WHEN r.id IS NULL THEN NULL ELSE n.name || '/' || r.name END AS repo, d.push_id, \
     d.ref_name, d.old_id, d.new_id, d.pusher, d.created_at, d.done_at, d.status, d.attempts, \
     d.last_status, d.last_error, d.note, d.event, d.redelivery_of \
     FROM deliveries d JOIN delivery_targets t ON t.id = d.target_id AND t.kind = 'trigger' \
     LEFT JOIN repos r ON r.id = d.repo_id LEFT JOIN namespaces n ON n.id = r.namespace_id";

fn delivery(row: &sqlx::any::AnyRow) -> Result<TriggerDelivery> {
    let text = |name: &str| -> Result<String> {
        Ok(row.try_get::<Option<String>, _>(name)?.unwrap_or_default())
    };
    let status: String = row.try_get("status")?;
    Ok(TriggerDelivery {
        id: row.try_get("id")?,
        target_id: row.try_get("target_id")?,
        repo_id: row.try_get("repo_id")?,
        repo: row.try_get("repo")?,
        push_id: row.try_get("push_id")?,
        ref_name: text("ref_name")?,
        old_id: text("old_id")?,
        new_id: text("new_id")?,
        pusher: text("pusher")?,
        created_at: row.try_get("created_at")?,
        done_at: row.try_get("done_at")?,
        state: DeliveryState::parse(&status),
        attempts: row.try_get("attempts")?,
        last_status: row.try_get("last_status")?,
        last_error: row.try_get("last_error")?,
        note: row.try_get("note")?,
        event: row.try_get("event")?,
        redelivery_of: row.try_get("redelivery_of")?,
    })
}

/// One attempt at a delivery, as the delivery log shows it.
#[derive(Debug, Clone)]
pub struct DeliveryAttempt {
    pub id: i64,
    pub delivery_id: i64,
    pub started_at: i64,
    pub duration_ms: i64,
    /// The HTTP status of the answer, when there was one.
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub response_excerpt: Option<String>,
}

pub struct NewTrigger<'a> {
    pub repo_id: Option<i64>,
    pub target: &'a str,
    pub settings: &'a str,
    pub secret: Option<&'a str>,
}

/// Which deliveries a listing shows.
#[derive(Debug, Clone, Copy, Default)]
pub struct DeliveryFilter {
    /// Deliveries of pushes to this repository ...
    pub repo_id: Option<i64>,
    /// ... by triggers of this repository (`Some`), or by server-wide triggers (`Some(None)`).
    pub trigger_repo: Option<Option<i64>>,
    pub target_id: Option<i64>,
    /// Only those that failed: given up, or retrying after a failed attempt.
    pub failed: bool,
    /// Only ids below this (paging back).
    pub before: Option<i64>,
    pub limit: i64,
}

impl Db {
    pub async fn add_trigger(&self, new: &NewTrigger<'_>) -> Result<i64> {
        let (id,): (i64,) = sqlx::query_as(
            "INSERT INTO delivery_targets (kind, repo_id, url, settings, secret, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(TargetKind::Trigger.as_str())
        .bind(new.repo_id)
        .bind(new.target)
        .bind(new.settings)
        .bind(new.secret)
        .bind(now())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// A repository's own triggers (`Some`), or the server-wide ones (`None`).
    pub async fn triggers(&self, repo_id: Option<i64>) -> Result<Vec<Trigger>> {
        let rows = match repo_id {
            Some(id) => {
                sqlx::query(&format!(
                    "{TRIGGER_SELECT} AND t.repo_id = $1 ORDER BY t.id"
                ))
                .bind(id)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(&format!(
                    "{TRIGGER_SELECT} AND t.repo_id IS NULL ORDER BY t.id"
                ))
                .fetch_all(&self.pool)
                .await?
            }
        };
        rows.iter().map(trigger).collect()
    }

    /// Every trigger, server-wide ones first (for `/metrics`).
    pub async fn all_triggers(&self) -> Result<Vec<Trigger>> {
        let rows = sqlx::query(&format!("{TRIGGER_SELECT} ORDER BY t.repo_id, t.id"))
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(trigger).collect()
    }

    pub async fn trigger_by_id(&self, id: i64) -> Result<Option<Trigger>> {
        let row = sqlx::query(&format!("{TRIGGER_SELECT} AND t.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(trigger).transpose()
    }

    /// Pending deliveries of a trigger up to `max_id`, oldest first.
    pub async fn pending_trigger_deliveries(
        &self,
        target_id: i64,
        max_id: i64,
        limit: i64,
    ) -> Result<Vec<TriggerDelivery>> {
        let rows = sqlx::query(&format!(
            "{DELIVERY_SELECT} WHERE d.target_id = $1 AND d.id <= $2 AND d.done_at IS NULL ORDER BY d.id LIMIT $3"
        ))
        .bind(target_id)
        .bind(max_id)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    pub async fn trigger_delivery(&self, id: i64) -> Result<Option<TriggerDelivery>> {
        let row = sqlx::query(&format!("{DELIVERY_SELECT} WHERE d.id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(delivery).transpose()
    }

    /// Newest first.
    pub async fn trigger_deliveries(&self, f: DeliveryFilter) -> Result<Vec<TriggerDelivery>> {
        let rows = sqlx::query(&format!(
            "{DELIVERY_SELECT} WHERE ($1 = 0 OR d.repo_id = $1) AND ($2 = 0 OR d.target_id = $2) \
             AND ($3 = 0 OR d.status = 'failed' OR (d.done_at IS NULL AND d.attempts > 0)) \
             AND ($4 = 0 OR d.id < $4) \
             AND ($6 = 0 OR ($7 = 0 AND t.repo_id IS NULL) OR t.repo_id = $7) \
             ORDER BY d.id DESC LIMIT $5"
        ))
        .bind(f.repo_id.unwrap_or(0))
        .bind(f.target_id.unwrap_or(0))
        .bind(f.failed as i64)
        .bind(f.before.unwrap_or(0))
        .bind(f.limit)
        .bind(f.trigger_repo.is_some() as i64)
        .bind(f.trigger_repo.flatten().unwrap_or(0))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(delivery).collect()
    }

    /// Keeps the event as first built, so that retries and redeliveries send the same bytes.
    pub async fn set_delivery_event(&self, id: i64, event: &str) -> Result<()> {
        sqlx::query("UPDATE deliveries SET event = $1 WHERE id = $2")
            .bind(event)
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Logs an attempt and brings the delivery up to date; `done` ends it in that state.
    pub async fn record_attempt(
        &self,
        a: &DeliveryAttempt,
        done: Option<DeliveryState>,
    ) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery_id, started_at, duration_ms, status_code, error, response_excerpt) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(a.delivery_id)
        .bind(a.started_at)
        .bind(a.duration_ms)
        .bind(a.status_code)
        .bind(a.error.as_deref())
        .bind(a.response_excerpt.as_deref())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET attempts = attempts + 1, last_status = $1, last_error = $2, \
             status = $3, done_at = $4 WHERE id = $5",
        )
        .bind(a.status_code)
        .bind(a.error.as_deref())
        .bind(done.unwrap_or(DeliveryState::Pending).as_str())
        .bind(done.map(|_| now()))
        .bind(a.delivery_id)
        .execute(&mut *tx)
        .await?;
        let counter = match done {
            Some(DeliveryState::Delivered) => Some("delivered"),
            Some(DeliveryState::Failed) => Some("given_up"),
            _ => None,
        };
        if let Some(c) = counter {
            sqlx::query(&format!(
                "UPDATE delivery_targets SET {c} = {c} + 1 WHERE id = (SELECT target_id FROM deliveries WHERE id = $1)"
            ))
            .bind(a.delivery_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends a delivery that is not sent (filtered out, or nothing to send), saying why.
    pub async fn skip_delivery(&self, id: i64, note: &str) -> Result<()> {
        sqlx::query(
            "UPDATE deliveries SET status = 'skipped', note = $1, done_at = $2 WHERE id = $3",
        )
        .bind(note)
        .bind(now())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn delivery_attempts(&self, delivery_id: i64) -> Result<Vec<DeliveryAttempt>> {
        let rows = sqlx::query(
            "SELECT id, delivery_id, started_at, duration_ms, status_code, error, response_excerpt \
             FROM delivery_attempts WHERE delivery_id = $1 ORDER BY id",
        )
        .bind(delivery_id)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(DeliveryAttempt {
                    id: row.try_get("id")?,
                    delivery_id: row.try_get("delivery_id")?,
                    started_at: row.try_get("started_at")?,
                    duration_ms: row.try_get("duration_ms")?,
                    status_code: row.try_get("status_code")?,
                    error: row.try_get("error")?,
                    response_excerpt: row.try_get("response_excerpt")?,
                })
            })
            .collect()
    }

    /// Queues the same event again as a new delivery (its own id and log); skips the backoff.
    pub async fn redeliver(&self, id: i64) -> Result<Option<i64>> {
        let mut tx = self.pool.begin().await?;
        let row: Option<(i64,)> = sqlx::query_as(
            "INSERT INTO deliveries (target_id, push_id, created_at, repo_id, ref_name, old_id, new_id, pusher, event, redelivery_of) \
             SELECT target_id, push_id, $1, repo_id, ref_name, old_id, new_id, pusher, event, id \
             FROM deliveries WHERE id = $2 RETURNING id",
        )
        .bind(now())
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if row.is_some() {
            sqlx::query(
                "UPDATE delivery_targets SET next_attempt_at = 0 WHERE id = (SELECT target_id FROM deliveries WHERE id = $1)",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(row.map(|(n,)| n))
    }
}
