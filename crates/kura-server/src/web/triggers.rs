//! `/NS/NAME/settings/triggers`: a repository's push triggers, for its admins (site admins
//! included). The list with Remove buttons, a form for a webhook trigger (EventBridge and
//! CodePipeline ones come from the CLI or the API), the recent deliveries with Redeliver, and
//! one delivery's attempts. Anonymous visitors are sent to sign in; a signed-in user who may not
//! read the repository gets the missing-repository page, a reader or writer a plain 403.
//! A webhook secret is write-only: the form never shows it again, the list only says "signed".

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use kura_db::{DeliveryAttempt, DeliveryState, Role, TriggerDelivery};
use kura_mirror::trigger::{Filters, TriggerKind};
use serde::Deserialize;

use super::render::{age, encode_segment, utc};
use super::repo::{self, Head};
use super::{page, Chrome, Visitor, WebError};
use crate::app::AppState;
use crate::names::RepoPath;
use crate::ops::{ErrorKind, TriggerInfo, TriggerRequest, TriggerScope};

/// How many of the newest deliveries the page lists.
const RECENT_DELIVERIES: i64 = 30;
/// The most of a delivery's event shown on its page.
const MAX_EVENT_SHOWN: usize = 64 * 1024;

pub struct TriggerRow {
    pub id: i64,
    pub kind: &'static str,
    pub target: String,
    /// The webhook format, the EventBridge detail-type or the CodePipeline variables.
    pub detail: String,
    pub filters: String,
    pub signed: bool,
    pub pending: i64,
    pub last_error: Option<String>,
}

pub struct DeliveryRow {
    pub id: i64,
    /// The delivery's own page; `None` for deliveries of server-wide triggers, which only site
    /// admins open.
    pub href: Option<String>,
    pub trigger: String,
    pub ref_name: String,
    pub status: &'static str,
    pub attempts: i64,
    pub last_status: String,
    /// Why it was skipped.
    pub note: Option<String>,
    pub last_error: Option<String>,
    pub queued_age: String,
    pub queued_utc: String,
    /// Delivered and failed ones may be sent again.
    pub redeliver: bool,
}

pub struct AttemptRow {
    pub age: String,
    pub utc: String,
    pub status_code: String,
    pub duration: String,
    pub error: Option<String>,
    pub excerpt: Option<String>,
}

/// One delivery's page.
pub struct Detail {
    pub row: DeliveryRow,
    pub before: String,
    pub after: String,
    pub pusher: String,
    pub done: String,
    /// The delivery this one sends again.
    pub redelivery_of: Option<i64>,
    /// Its page.
    pub redelivery_href: String,
    pub attempts: Vec<AttemptRow>,
    pub event: Option<String>,
}

/// What the add form shows: empty, or what was typed before a refusal (never the secret).
#[derive(Default)]
pub struct Draft {
    pub url: String,
    pub mattermost: bool,
    pub branches: String,
    pub tags: String,
    pub paths: String,
    pub exclude_paths: String,
}

#[derive(askama::Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    chrome: Chrome,
    head: Head,
    /// `/ns/name/settings/triggers`, encoded.
    here: String,
    triggers: Vec<TriggerRow>,
    deliveries: Vec<DeliveryRow>,
    draft: Draft,
    notice: Option<String>,
    error: Option<String>,
    detail: Option<Detail>,
}

/// The repository, when the visitor administers it.
struct Admin {
    c: repo::Ctx,
    scope: TriggerScope,
    here: String,
}

/// `/ns/name/settings/triggers` as typed (for the sign-in redirect, before any lookup).
fn typed_page(ns: &str, name: &str) -> String {
    format!(
        "/{}/{}/settings/triggers",
        encode_segment(ns),
        encode_segment(name)
    )
}

fn sign_in(ns: &str, name: &str) -> Response {
    Redirect::to(&super::login_href(&typed_page(ns, name))).into_response()
}

/// The visitor's admin access to `ns/name`: hidden and missing give the same 404, a reader or
/// writer a 403 that says what is needed.
async fn admin(s: &AppState, v: Visitor, ns: &str, name: &str) -> Result<Admin, WebError> {
    let c = repo::open(s, v, ns, name, "settings").await?;
    if c.acc.check(&c.v.caller, Role::Admin).is_err() {
        return Err(WebError::new(
            StatusCode::FORBIDDEN,
            "Not allowed",
            format!(
                "You need admin access to {} to manage its triggers; ask one of its administrators.",
                c.head.full_name
            ),
        ));
    }
    let scope = TriggerScope::Repo(RepoPath {
        namespace: c.acc.repo.namespace.clone(),
        name: c.acc.repo.name.clone(),
    });
    let here = format!("{}/settings/triggers", c.head.base);
    Ok(Admin { c, scope, here })
}

fn trigger_row(t: TriggerInfo) -> TriggerRow {
    let detail = match &t.settings.kind {
        TriggerKind::Webhook { format } => format.name().to_string(),
        TriggerKind::Eventbridge { detail_type } => format!("detail-type {detail_type}"),
        TriggerKind::Codepipeline { variables } => variables
            .iter()
            .map(|v| format!("{}={}", v.name, v.value))
            .collect::<Vec<_>>()
            .join(", "),
    };
    TriggerRow {
        id: t.trigger.id,
        kind: t.kind(),
        target: t.shown_target(),
        detail,
        filters: t.settings.filters.describe(),
        signed: t.trigger.secret.is_some(),
        pending: t.status.pending,
        last_error: t.trigger.last_error.clone(),
    }
}

fn delivery_row(here: &str, own: &[i64], d: &TriggerDelivery, now: i64) -> DeliveryRow {
    let mine = own.contains(&d.target_id);
    DeliveryRow {
        id: d.id,
        href: mine.then(|| format!("{here}/deliveries/{}", d.id)),
        trigger: if mine {
            format!("#{}", d.target_id)
        } else {
            format!("#{} (server-wide)", d.target_id)
        },
        ref_name: d.ref_name.clone(),
        status: d.state.as_str(),
        attempts: d.attempts,
        last_status: d.last_status.map(|c| c.to_string()).unwrap_or_default(),
        note: d.note.clone(),
        last_error: d.last_error.clone(),
        queued_age: age(d.created_at, now),
        queued_utc: utc(d.created_at),
        redeliver: mine && matches!(d.state, DeliveryState::Delivered | DeliveryState::Failed),
    }
}

fn attempt_row(a: &DeliveryAttempt, now: i64) -> AttemptRow {
    AttemptRow {
        age: age(a.started_at, now),
        utc: utc(a.started_at),
        status_code: a
            .status_code
            .map(|c| c.to_string())
            .unwrap_or_else(|| "none".into()),
        duration: format!("{} ms", a.duration_ms),
        error: a.error.clone(),
        excerpt: a.response_excerpt.clone().filter(|x| !x.is_empty()),
    }
}

/// The recorded push event, pretty-printed when it is JSON, cut at `MAX_EVENT_SHOWN`.
fn event_text(event: Option<&str>) -> Option<String> {
    let raw = event?;
    let mut text = serde_json::from_str::<serde_json::Value>(raw)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| raw.to_string());
    if text.len() > MAX_EVENT_SHOWN {
        let mut cut = MAX_EVENT_SHOWN;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n…");
    }
    Some(text)
}

/// Renders the page: the list, the form and the deliveries, or one delivery (`detail`).
async fn render(
    s: &AppState,
    a: Admin,
    draft: Draft,
    notice: Option<String>,
    error: Option<String>,
    detail: Option<i64>,
) -> Result<Response, WebError> {
    let now = kura_db::now();
    let triggers: Vec<TriggerRow> = s
        .ops
        .triggers(&a.scope)
        .await?
        .into_iter()
        .map(trigger_row)
        .collect();
    let own: Vec<i64> = triggers.iter().map(|t| t.id).collect();
    let (deliveries, detail) = match detail {
        Some(id) => {
            let (d, attempts) = s.ops.delivery(Some(&a.scope), id).await?;
            let detail = Detail {
                row: delivery_row(&a.here, &own, &d, now),
                before: d.old_id.clone(),
                after: d.new_id.clone(),
                pusher: d.pusher.clone(),
                done: d
                    .done_at
                    .map(|t| format!("{} ({})", age(t, now), utc(t)))
                    .unwrap_or_default(),
                redelivery_of: d.redelivery_of,
                redelivery_href: d
                    .redelivery_of
                    .map(|o| format!("{}/deliveries/{o}", a.here))
                    .unwrap_or_default(),
                attempts: attempts.iter().map(|x| attempt_row(x, now)).collect(),
                event: event_text(d.event.as_deref()),
            };
            (Vec::new(), Some(detail))
        }
        None => (
            s.ops
                .trigger_deliveries(&a.scope, None, false, None, RECENT_DELIVERIES)
                .await?
                .iter()
                .map(|d| delivery_row(&a.here, &own, d, now))
                .collect(),
            None,
        ),
    };
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    let mut r = page(TriggersPage {
        here: a.here,
        triggers,
        deliveries,
        draft,
        notice,
        error,
        detail,
        chrome: a.c.v.chrome,
        head: a.c.head,
    });
    *r.status_mut() = status;
    Ok(r)
}

/// What a redirect after a change asks the page to say (numbers only: the text is ours).
#[derive(Deserialize, Default)]
pub struct Flash {
    added: Option<String>,
    removed: Option<String>,
    redelivered: Option<String>,
    #[serde(rename = "as")]
    new_id: Option<String>,
}

impl Flash {
    fn text(&self) -> Option<String> {
        let num = |v: &Option<String>| v.as_deref().and_then(|v| v.parse::<i64>().ok());
        if let Some(id) = num(&self.added) {
            return Some(format!("Trigger {id} added."));
        }
        if let Some(id) = num(&self.removed) {
            return Some(format!("Trigger {id} removed."));
        }
        match (num(&self.redelivered), num(&self.new_id)) {
            (Some(old), Some(new)) => {
                Some(format!("Delivery {old} queued again as delivery {new}."))
            }
            _ => None,
        }
    }
}

pub async fn show(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
    Query(f): Query<Flash>,
) -> Result<Response, WebError> {
    if v.user().is_none() {
        return Ok(sign_in(&ns, &name));
    }
    let a = admin(&s, v, &ns, &name).await?;
    render(&s, a, Draft::default(), f.text(), None, None).await
}

pub async fn delivery(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, id)): Path<(String, String, i64)>,
) -> Result<Response, WebError> {
    if v.user().is_none() {
        return Ok(sign_in(&ns, &name));
    }
    let a = admin(&s, v, &ns, &name).await?;
    render(&s, a, Draft::default(), None, None, Some(id)).await
}

#[derive(Deserialize)]
pub struct NewWebhook {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    format: String,
    #[serde(default)]
    secret: String,
    #[serde(default)]
    branches: String,
    #[serde(default)]
    tags: String,
    #[serde(default)]
    paths: String,
    #[serde(default)]
    exclude_paths: String,
}

/// `a, b ,c` as globs (empty items dropped).
fn globs(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect()
}

pub async fn add(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name)): Path<(String, String)>,
    Form(f): Form<NewWebhook>,
) -> Result<Response, WebError> {
    if v.user().is_none() {
        return Ok(sign_in(&ns, &name));
    }
    v.check_csrf(&f.csrf)?;
    let a = admin(&s, v, &ns, &name).await?;
    let url = f.url.trim();
    let format = match f.format.trim() {
        "" => "json",
        other => other,
    };
    let secret = (!f.secret.is_empty()).then(|| f.secret.clone());
    let added = s
        .ops
        .add_trigger(
            &a.scope,
            TriggerRequest {
                kind: "webhook",
                target: (!url.is_empty()).then_some(url),
                secret,
                format: Some(format),
                detail_type: None,
                variables: &[],
                filters: Filters {
                    branches: globs(&f.branches),
                    tags: globs(&f.tags),
                    paths: globs(&f.paths),
                    exclude_paths: globs(&f.exclude_paths),
                },
            },
        )
        .await;
    match added {
        Ok(t) => Ok(Redirect::to(&format!("{}?added={}", a.here, t.trigger.id)).into_response()),
        Err(e) if e.kind() == ErrorKind::Invalid => {
            let draft = Draft {
                url: url.to_string(),
                mattermost: format == "mattermost" || format == "slack",
                branches: f.branches,
                tags: f.tags,
                paths: f.paths,
                exclude_paths: f.exclude_paths,
            };
            let e = e.to_string();
            let why = format!("The trigger was not added: {}.", e.trim_end_matches('.'));
            render(&s, a, draft, None, Some(why), None).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn remove(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, id)): Path<(String, String, i64)>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    if v.user().is_none() {
        return Ok(sign_in(&ns, &name));
    }
    v.check_csrf(&f.csrf)?;
    let a = admin(&s, v, &ns, &name).await?;
    // Only one of this repository's own: another's (or a server-wide one) does not exist here.
    s.ops
        .remove_trigger(Some(&a.scope), id)
        .await
        .map_err(|e| match e.kind() {
            ErrorKind::NotFound => WebError::not_found(format!(
                "This repository has no trigger {id}; the list on the triggers page shows its triggers."
            )),
            _ => e.into(),
        })?;
    Ok(Redirect::to(&format!("{}?removed={id}", a.here)).into_response())
}

pub async fn redeliver(
    State(s): State<AppState>,
    v: Visitor,
    Path((ns, name, id)): Path<(String, String, i64)>,
    Form(f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    if v.user().is_none() {
        return Ok(sign_in(&ns, &name));
    }
    v.check_csrf(&f.csrf)?;
    let a = admin(&s, v, &ns, &name).await?;
    let missing = |e: crate::ops::OpsError| match e.kind() {
        ErrorKind::NotFound => {
            WebError::not_found(format!("This repository's triggers have no delivery {id}."))
        }
        _ => e.into(),
    };
    let (d, _) = s.ops.delivery(Some(&a.scope), id).await.map_err(missing)?;
    if !matches!(d.state, DeliveryState::Delivered | DeliveryState::Failed) {
        return Err(WebError::new(
            StatusCode::CONFLICT,
            "Not sent again",
            format!(
                "Delivery {id} is {}: only delivered and failed deliveries can be sent again.",
                d.state.as_str()
            ),
        ));
    }
    let new = s.ops.redeliver(Some(&a.scope), id).await.map_err(missing)?;
    Ok(Redirect::to(&format!("{}?redelivered={id}&as={new}", a.here)).into_response())
}
