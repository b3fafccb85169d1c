//! The browser pages: server-rendered HTML (askama templates in `web/templates`, CSS and a
//! little progressive-enhancement JS in `web/static`, both embedded), on the same access
//! decision as git and the API. Every page works with JavaScript off.

mod cache;
mod error;
mod history;
mod home;
mod refs;
pub mod render;
mod repo;
mod search;
mod session;
mod settings;
mod triggers;

use std::sync::{Arc, OnceLock};

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::app::AppState;

pub use cache::PageCache;
pub use error::WebError;
pub use session::Visitor;

/// What every page's frame shows: who is signed in and the form token.
#[derive(Debug, Clone, Default)]
pub struct Chrome {
    pub user: Option<String>,
    pub csrf: String,
    /// The current URL path, for "sign in and come back".
    pub here: String,
}

impl Chrome {
    pub fn login_href(&self) -> String {
        login_href(&self.here)
    }
}

/// The sign-in page, coming back to `here` afterwards.
pub fn login_href(here: &str) -> String {
    if here.is_empty() || here == "/" || here.starts_with("/login") {
        "/login".into()
    } else {
        format!("/login?next={}", render::encode_segment(here))
    }
}

pub fn routes() -> Router<AppState> {
    let repo = Router::new()
        .route("/{ns}", get(home::namespace))
        .route("/{ns}/{repo}", get(repo::summary))
        .route("/{ns}/{repo}/tree/{*rest}", get(repo::tree))
        .route("/{ns}/{repo}/blob/{*rest}", get(repo::blob))
        .route("/{ns}/{repo}/raw/{*rest}", get(repo::raw))
        .route("/{ns}/{repo}/blame/{*rest}", get(repo::blame))
        .route("/{ns}/{repo}/commits", get(history::commits_default))
        .route("/{ns}/{repo}/commits/{*rest}", get(history::commits))
        .route("/{ns}/{repo}/commit/{sha}", get(history::commit))
        .route("/{ns}/{repo}/compare/{*spec}", get(history::compare))
        .route("/{ns}/{repo}/branches", get(refs::branches))
        .route("/{ns}/{repo}/tags", get(refs::tags))
        .route("/{ns}/{repo}/archive/{*file}", get(refs::archive))
        .route("/{ns}/{repo}/search", get(search::search))
        .route(
            "/{ns}/{repo}/settings/triggers",
            get(triggers::show).post(triggers::add),
        )
        .route(
            "/{ns}/{repo}/settings/triggers/{id}/remove",
            post(triggers::remove),
        )
        .route(
            "/{ns}/{repo}/settings/triggers/deliveries/{id}",
            get(triggers::delivery),
        )
        .route(
            "/{ns}/{repo}/settings/triggers/deliveries/{id}/redeliver",
            post(triggers::redeliver),
        );
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(session::login_page).post(session::login))
        .route("/logout", post(session::logout))
        .route("/settings", get(settings::show))
        .route("/settings/password", post(settings::password))
        .route("/settings/tokens", post(settings::create_token))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/-/static/{file}", get(asset))
        .route(
            "/favicon.ico",
            get(|| async { Redirect::permanent("/-/static/favicon.svg") }),
        )
        .merge(repo)
        .layer(axum::middleware::from_fn(frame))
}

/// Security headers on every page, and error pages rendered in the visitor's frame.
async fn frame(mut req: Request, next: Next) -> Response {
    let slot: Arc<OnceLock<Chrome>> = Arc::default();
    req.extensions_mut().insert(slot.clone());
    let mut resp = next.run(req).await;
    if let Some(e) = resp.extensions_mut().remove::<error::Failed>() {
        resp = e.render(slot.get().cloned().unwrap_or_default());
    }
    let h = resp.headers_mut();
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                 connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
            ),
        );
    }
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    // Links that leave Kura carry no path (private repository and file names stay here).
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    resp
}

/// A rendered template as a page that is never cached by shared caches.
pub fn page(t: impl askama::Template) -> Response {
    match t.render() {
        Ok(body) => (
            [(
                header::CACHE_CONTROL,
                HeaderValue::from_static("private, no-cache"),
            )],
            Html(body),
        )
            .into_response(),
        Err(e) => WebError::internal(format!("rendering the page failed: {e}")).into_response(),
    }
}

static CSS: &str = include_str!("../../../../web/static/kura.css");
static JS: &str = include_str!("../../../../web/static/kura.js");
static ICON: &str = include_str!("../../../../web/static/favicon.svg");

async fn asset(Path(file): Path<String>, State(_): State<AppState>) -> Response {
    let (body, ty) = match file.as_str() {
        "kura.css" => (CSS, "text/css; charset=utf-8"),
        "kura.js" => (JS, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        _ => return (StatusCode::NOT_FOUND, "no such file\n").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, ty),
            (header::CACHE_CONTROL, "public, max-age=300"),
        ],
        body,
    )
        .into_response()
}
