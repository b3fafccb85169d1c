//! `/metrics` in the Prometheus text format, for a site admin's token: mirror lag, pending
//! jobs, runs, failures and the last run's duration, per repository and mirror. Figures come
//! from the database, so every replica reports the same.

use std::fmt::Write;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Extension;

use crate::app::AppState;
use crate::auth::{self, Caller};
use crate::error::HttpError;
use crate::netguard::ClientIp;

fn label(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub async fn metrics(
    State(state): State<AppState>,
    Extension(ip): Extension<ClientIp>,
    headers: HeaderMap,
) -> Result<Response, HttpError> {
    match auth::authenticate(&state, &headers, ip.0).await? {
        Caller::User(a) if a.user.is_admin && a.scope.is_some() => {}
        Caller::User(_) => {
            return Err(HttpError::forbidden(
                "/metrics needs a site admin's token (not a password): kura token create admin --scope read",
            ))
        }
        Caller::Anonymous => {
            return Err(HttpError::unauthorized(
                "/metrics needs a site admin's token (Authorization: Bearer kura_...)",
            ))
        }
    }
    let now = kura_db::now();
    let mut lag = String::new();
    let mut pending = String::new();
    let mut runs = String::new();
    let mut failures = String::new();
    let mut duration = String::new();
    for m in state.ops.db.mirrors(None).await? {
        let p = state.ops.db.pending(m.id).await?;
        let l = format!(
            "{{repo=\"{}\",mirror=\"{}\"}}",
            label(&m.repo),
            label(&m.url)
        );
        let age = p.oldest_created_at.map(|t| (now - t).max(0)).unwrap_or(0);
        let _ = writeln!(lag, "kura_mirror_lag_seconds{l} {age}");
        let _ = writeln!(pending, "kura_mirror_pending_jobs{l} {}", p.count);
        let _ = writeln!(runs, "kura_mirror_runs_total{l} {}", m.runs);
        let _ = writeln!(failures, "kura_mirror_failures_total{l} {}", m.failures);
        if let Some(ms) = m.last_duration_ms {
            let _ = writeln!(
                duration,
                "kura_mirror_last_run_seconds{l} {:.3}",
                ms as f64 / 1000.0
            );
        }
    }
    let body = format!(
        "# HELP kura_mirror_lag_seconds Seconds since the oldest push not yet mirrored.\n# TYPE kura_mirror_lag_seconds gauge\n{lag}\
         # HELP kura_mirror_pending_jobs Pushes queued for the mirror.\n# TYPE kura_mirror_pending_jobs gauge\n{pending}\
         # HELP kura_mirror_runs_total Mirror runs.\n# TYPE kura_mirror_runs_total counter\n{runs}\
         # HELP kura_mirror_failures_total Failed mirror runs.\n# TYPE kura_mirror_failures_total counter\n{failures}\
         # HELP kura_mirror_last_run_seconds Duration of the last run.\n# TYPE kura_mirror_last_run_seconds gauge\n{duration}"
    );
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}
