//! `/`: the repositories the visitor may read, filtered by name.

use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;

use super::render::{age, utc};
use super::{page, Chrome, Visitor, WebError};
use crate::access;
use crate::app::AppState;

pub struct RepoRow {
    pub full_name: String,
    pub href: String,
    pub public: bool,
    pub default_branch: String,
    pub pushed: Option<(String, String)>,
}

#[derive(askama::Template)]
#[template(path = "home.html")]
struct Home {
    chrome: Chrome,
    q: String,
    repos: Vec<RepoRow>,
    total: usize,
}

#[derive(Deserialize)]
pub struct HomeQuery {
    q: Option<String>,
}

pub async fn home(
    State(s): State<AppState>,
    v: Visitor,
    Query(q): Query<HomeQuery>,
) -> Result<Response, WebError> {
    let filter = q.q.unwrap_or_default().trim().to_lowercase();
    let pushed = s.ops.last_push_times().await?;
    let now = kura_db::now();
    let mut repos = Vec::new();
    let mut total = 0;
    for r in s.ops.list_repos().await? {
        let Ok(acc) = access::on(&s.ops, s.config.allow_anonymous_read, &v.caller, r).await else {
            continue;
        };
        total += 1;
        let r = acc.repo;
        let full_name = r.full_name();
        if !filter.is_empty() && !full_name.to_lowercase().contains(&filter) {
            continue;
        }
        let last = pushed.get(&r.id).copied();
        repos.push((
            last,
            RepoRow {
                href: format!("/{}", super::render::encode_path(&full_name)),
                full_name,
                public: r.is_public,
                default_branch: r.default_branch,
                pushed: last.map(|t| (age(t, now), utc(t))),
            },
        ));
    }
    // Recently pushed first, then by name.
    repos.sort_by(|a, b| {
        b.0.cmp(&a.0)
            .then_with(|| a.1.full_name.cmp(&b.1.full_name))
    });
    Ok(page(Home {
        chrome: v.chrome,
        q: filter,
        repos: repos.into_iter().map(|(_, r)| r).collect(),
        total,
    }))
}

/// `/NS`: the list filtered to that namespace.
pub async fn namespace(
    axum::extract::Path(ns): axum::extract::Path<String>,
) -> axum::response::Redirect {
    axum::response::Redirect::to(&format!(
        "/?q={}",
        super::render::encode_segment(&format!("{ns}/"))
    ))
}
