//! Push triggers and their delivery log: a repository's (its admins) under
//! `/repos/{ns}/{name}/...`, the server-wide ones (site admins) under `/triggers` and
//! `/deliveries`. The handlers of both are the same once the scope is known.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use kura_db::{DeliveryAttempt, Role, TriggerDelivery};
use kura_mirror::trigger::{Filters, TriggerKind};
use serde::{Deserialize, Serialize};

use super::{
    created, no_content, repo_for, ApiCaller, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult,
};
use crate::access::{self, Actor};
use crate::app::AppState;
use crate::error::HttpError;
use crate::names::RepoPath;
use crate::ops::{TriggerInfo, TriggerRequest, TriggerScope};

/// A delivery log page when the caller names no `limit`.
const DEFAULT_DELIVERIES: i64 = 50;

#[derive(Serialize)]
pub struct VariableView {
    pub(crate) name: String,
    pub(crate) value: String,
}

#[derive(Serialize)]
pub struct TriggerView {
    pub(crate) id: i64,
    /// `None`: server-wide.
    pub(crate) repo: Option<String>,
    pub(crate) kind: &'static str,
    /// A webhook URL without its query (tokens live there), the bus or the pipeline.
    pub(crate) target: String,
    /// Webhooks only.
    pub(crate) format: Option<&'static str>,
    /// EventBridge only.
    pub(crate) detail_type: Option<String>,
    /// CodePipeline only.
    pub(crate) variables: Option<Vec<VariableView>>,
    pub(crate) branches: Vec<String>,
    pub(crate) tags: Vec<String>,
    pub(crate) paths: Vec<String>,
    pub(crate) exclude_paths: Vec<String>,
    /// Whether webhook deliveries are signed; the secret itself is never shown.
    pub(crate) has_secret: bool,
    pub(crate) pending: i64,
    pub(crate) lag_seconds: i64,
    pub(crate) next_attempt_at: Option<i64>,
    pub(crate) last_attempt_at: Option<i64>,
    pub(crate) last_success_at: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) runs: i64,
    pub(crate) failures: i64,
    pub(crate) created_at: i64,
}

pub(crate) fn view(t: TriggerInfo) -> TriggerView {
    let target = t.shown_target();
    let kind = t.kind();
    let TriggerInfo {
        trigger: row,
        settings,
        status,
    } = t;
    let (format, detail_type, variables) = match settings.kind {
        TriggerKind::Webhook { format } => (Some(format.name()), None, None),
        TriggerKind::Eventbridge { detail_type } => (None, Some(detail_type), None),
        TriggerKind::Codepipeline { variables } => (
            None,
            None,
            Some(
                variables
                    .into_iter()
                    .map(|v| VariableView {
                        name: v.name,
                        value: v.value,
                    })
                    .collect(),
            ),
        ),
    };
    let Filters {
        branches,
        tags,
        paths,
        exclude_paths,
    } = settings.filters;
    TriggerView {
        id: row.id,
        repo: row.repo,
        kind,
        target,
        format,
        detail_type,
        variables,
        branches,
        tags,
        paths,
        exclude_paths,
        has_secret: row.secret.is_some(),
        pending: status.pending,
        lag_seconds: status.lag_seconds,
        next_attempt_at: status.next_attempt_at,
        last_attempt_at: row.last_attempt_at,
        last_success_at: row.last_success_at,
        last_error: row.last_error,
        runs: row.runs,
        failures: row.failures,
        created_at: row.created_at,
    }
}

#[derive(Serialize)]
pub struct AttemptView {
    pub(crate) started_at: i64,
    pub(crate) duration_ms: i64,
    pub(crate) status_code: Option<i64>,
    pub(crate) error: Option<String>,
    pub(crate) response_excerpt: Option<String>,
}

impl From<DeliveryAttempt> for AttemptView {
    fn from(a: DeliveryAttempt) -> AttemptView {
        AttemptView {
            started_at: a.started_at,
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error,
            response_excerpt: a.response_excerpt,
        }
    }
}

#[derive(Serialize)]
pub struct DeliveryView {
    pub(crate) id: i64,
    /// The trigger's id.
    pub(crate) trigger: i64,
    /// `namespace/name`, while the repository exists.
    pub(crate) repo: Option<String>,
    #[serde(rename = "ref")]
    pub(crate) ref_name: String,
    pub(crate) before: String,
    pub(crate) after: String,
    pub(crate) pusher: String,
    pub(crate) created_at: i64,
    pub(crate) done_at: Option<i64>,
    /// `pending`, `delivered`, `skipped` or `failed`.
    pub(crate) status: &'static str,
    pub(crate) attempts: i64,
    pub(crate) last_status: Option<i64>,
    pub(crate) last_error: Option<String>,
    pub(crate) note: Option<String>,
    pub(crate) redelivery_of: Option<i64>,
    /// Every attempt, oldest first: in the answer for one delivery, not in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) attempt_log: Option<Vec<AttemptView>>,
}

pub(crate) fn delivery_view(
    d: TriggerDelivery,
    attempts: Option<Vec<DeliveryAttempt>>,
) -> DeliveryView {
    DeliveryView {
        id: d.id,
        trigger: d.target_id,
        repo: d.repo,
        ref_name: d.ref_name,
        before: d.old_id,
        after: d.new_id,
        pusher: d.pusher,
        created_at: d.created_at,
        done_at: d.done_at,
        status: d.state.as_str(),
        attempts: d.attempts,
        last_status: d.last_status,
        last_error: d.last_error,
        note: d.note,
        redelivery_of: d.redelivery_of,
        attempt_log: attempts.map(|a| a.into_iter().map(AttemptView::from).collect()),
    }
}

/// The answer to a redelivery: the new delivery's id, to poll.
#[derive(Serialize)]
pub struct RedeliveryView {
    pub(crate) queued: bool,
    pub(crate) delivery: i64,
    pub(crate) redelivery_of: i64,
}

/// The triggers of `ns/name`, for its admins (and site admins).
async fn repo_scope(s: &AppState, a: &Actor, ns: &str, name: &str) -> ApiResult<TriggerScope> {
    let repo = repo_for(s, a, ns, name, Role::Admin).await?;
    Ok(TriggerScope::Repo(RepoPath {
        namespace: repo.namespace,
        name: repo.name,
    }))
}

/// The server-wide triggers, for site admins.
fn server_scope(a: &Actor) -> ApiResult<TriggerScope> {
    access::require_site_admin(a)?;
    Ok(TriggerScope::Server)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewTrigger {
    kind: String,
    url: Option<String>,
    bus: Option<String>,
    pipeline: Option<String>,
    secret: Option<String>,
    format: Option<String>,
    detail_type: Option<String>,
    #[serde(default)]
    variables: Vec<String>,
    #[serde(default)]
    branches: Vec<String>,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    exclude_paths: Vec<String>,
}

fn bad(m: impl Into<String>) -> ApiError {
    ApiError(HttpError::bad_request(m).code("invalid"))
}

/// The one target field that fits the kind (`url`, `bus` or `pipeline`); other kinds are left
/// to the operation, which names the kinds there are.
fn target_of(body: &NewTrigger) -> ApiResult<Option<&str>> {
    let given: Vec<(&str, &str)> = [
        ("url", &body.url),
        ("bus", &body.bus),
        ("pipeline", &body.pipeline),
    ]
    .into_iter()
    .filter_map(|(field, v)| v.as_deref().map(|v| (field, v)))
    .collect();
    if given.len() > 1 {
        let fields: Vec<&str> = given.iter().map(|(f, _)| *f).collect();
        return Err(bad(format!(
            "give one target, not {}: url for a webhook, bus for eventbridge, pipeline for codepipeline",
            fields.join(" and ")
        )));
    }
    let wants = match body.kind.as_str() {
        "webhook" => Some("url"),
        "eventbridge" => Some("bus"),
        "codepipeline" => Some("pipeline"),
        _ => None,
    };
    match (given.first(), wants) {
        (Some((field, _)), Some(want)) if *field != want => Err(bad(format!(
            "{field} is not for {} triggers: give the target in {want}",
            body.kind
        ))),
        (given, _) => Ok(given.map(|(_, v)| *v)),
    }
}

async fn add(s: &AppState, scope: TriggerScope, body: NewTrigger) -> ApiResult<Response> {
    let target = target_of(&body)?;
    let info = s
        .ops
        .add_trigger(
            &scope,
            TriggerRequest {
                kind: &body.kind,
                target,
                secret: body.secret.clone(),
                format: body.format.as_deref(),
                detail_type: body.detail_type.as_deref(),
                variables: &body.variables,
                filters: Filters {
                    branches: body.branches.clone(),
                    tags: body.tags.clone(),
                    paths: body.paths.clone(),
                    exclude_paths: body.exclude_paths.clone(),
                },
            },
        )
        .await?;
    Ok(created(view(info)))
}

async fn list(s: &AppState, scope: TriggerScope) -> ApiResult<Json<Vec<TriggerView>>> {
    let all = s.ops.triggers(&scope).await?;
    Ok(Json(all.into_iter().map(view).collect()))
}

async fn show(s: &AppState, scope: TriggerScope, id: i64) -> ApiResult<Json<TriggerView>> {
    Ok(Json(view(s.ops.trigger(&scope, id).await?)))
}

async fn remove(s: &AppState, scope: TriggerScope, id: i64) -> ApiResult<Response> {
    // Only one of the scope's own: another repository's trigger does not exist here.
    s.ops.remove_trigger(Some(&scope), id).await?;
    Ok(no_content())
}

#[derive(Deserialize)]
pub struct DeliveriesQuery {
    /// Only this trigger's.
    trigger: Option<i64>,
    /// Only those given up or retrying after a failed attempt.
    #[serde(default)]
    failed: bool,
    /// The `id` of the last delivery of the previous page.
    before: Option<i64>,
    limit: Option<i64>,
}

async fn deliveries(
    s: &AppState,
    scope: TriggerScope,
    q: DeliveriesQuery,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    let rows = s
        .ops
        .trigger_deliveries(
            &scope,
            q.trigger,
            q.failed,
            q.before,
            q.limit.unwrap_or(DEFAULT_DELIVERIES),
        )
        .await?;
    Ok(Json(
        rows.into_iter().map(|d| delivery_view(d, None)).collect(),
    ))
}

async fn delivery(s: &AppState, scope: TriggerScope, id: i64) -> ApiResult<Json<DeliveryView>> {
    let (d, attempts) = s.ops.delivery(Some(&scope), id).await?;
    Ok(Json(delivery_view(d, Some(attempts))))
}

/// Queues the delivery's event again as a new delivery; the worker picks it up at once. Poll
/// the new delivery for the result.
async fn redeliver(s: &AppState, scope: TriggerScope, id: i64) -> ApiResult<Response> {
    let new = s.ops.redeliver(Some(&scope), id).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(RedeliveryView {
            queued: true,
            delivery: new,
            redelivery_of: id,
        }),
    )
        .into_response())
}

// A repository's triggers.

pub async fn repo_list(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
) -> ApiResult<Json<Vec<TriggerView>>> {
    list(&s, repo_scope(&s, &a, &ns, &name).await?).await
}

pub async fn repo_add(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiJson(body): ApiJson<NewTrigger>,
) -> ApiResult<Response> {
    let scope = repo_scope(&s, &a, &ns, &name).await?;
    access::require_trigger_kind(&a, &body.kind)?;
    add(&s, scope, body).await
}

pub async fn repo_show(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name, id)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<TriggerView>> {
    show(&s, repo_scope(&s, &a, &ns, &name).await?, id).await
}

pub async fn repo_remove(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name, id)): ApiPath<(String, String, i64)>,
) -> ApiResult<Response> {
    remove(&s, repo_scope(&s, &a, &ns, &name).await?, id).await
}

pub async fn repo_deliveries(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name)): ApiPath<(String, String)>,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    deliveries(&s, repo_scope(&s, &a, &ns, &name).await?, q).await
}

pub async fn repo_delivery(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name, id)): ApiPath<(String, String, i64)>,
) -> ApiResult<Json<DeliveryView>> {
    delivery(&s, repo_scope(&s, &a, &ns, &name).await?, id).await
}

pub async fn repo_redeliver(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath((ns, name, id)): ApiPath<(String, String, i64)>,
) -> ApiResult<Response> {
    redeliver(&s, repo_scope(&s, &a, &ns, &name).await?, id).await
}

// The server-wide triggers.

pub async fn server_list(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
) -> ApiResult<Json<Vec<TriggerView>>> {
    list(&s, server_scope(&a)?).await
}

pub async fn server_add(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiJson(body): ApiJson<NewTrigger>,
) -> ApiResult<Response> {
    add(&s, server_scope(&a)?, body).await
}

pub async fn server_show(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<TriggerView>> {
    show(&s, server_scope(&a)?, id).await
}

pub async fn server_remove(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    remove(&s, server_scope(&a)?, id).await
}

pub async fn server_deliveries(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiQuery(q): ApiQuery<DeliveriesQuery>,
) -> ApiResult<Json<Vec<DeliveryView>>> {
    deliveries(&s, server_scope(&a)?, q).await
}

pub async fn server_delivery(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<DeliveryView>> {
    delivery(&s, server_scope(&a)?, id).await
}

pub async fn server_redeliver(
    State(s): State<AppState>,
    ApiCaller(a): ApiCaller,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Response> {
    redeliver(&s, server_scope(&a)?, id).await
}
