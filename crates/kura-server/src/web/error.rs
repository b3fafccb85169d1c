//! Failures of the pages, shown as a page in the visitor's frame. A missing repository and one
//! the visitor may not see give the very same page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::Chrome;
use crate::access::Denied;
use crate::ops::{ErrorKind, OpsError, ReadError};

#[derive(Debug, Clone)]
pub struct WebError {
    pub status: StatusCode,
    pub title: &'static str,
    pub message: String,
}

/// Carried in the response until the frame renders it with the visitor's chrome.
#[derive(Debug, Clone)]
pub(super) struct Failed(WebError);

#[derive(askama::Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    chrome: &'a Chrome,
    e: &'a WebError,
}

impl Failed {
    pub(super) fn render(self, chrome: Chrome) -> Response {
        let body = askama::Template::render(&ErrorPage {
            chrome: &chrome,
            e: &self.0,
        })
        .unwrap_or_else(|_| self.0.message.clone());
        let mut r = (self.0.status, axum::response::Html(body)).into_response();
        if self.0.status == StatusCode::SERVICE_UNAVAILABLE {
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("5"),
            );
        }
        r
    }
}

impl WebError {
    pub fn new(status: StatusCode, title: &'static str, message: impl Into<String>) -> WebError {
        WebError {
            status,
            title,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::NOT_FOUND, "Not found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> WebError {
        WebError::new(StatusCode::BAD_REQUEST, "Bad request", message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> WebError {
        tracing::error!(error = %detail, "page failed");
        WebError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "Kura could not show this page; the server log has the details. Try again, or tell an administrator.",
        )
    }

    /// The page for a repository that is missing or hidden: one text for both.
    pub fn no_repo() -> WebError {
        WebError::not_found(
            "There is no repository here, or you may not see it. Check the address; if it is private, sign in with an account that may read it.",
        )
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let mut r = self.status.into_response();
        r.extensions_mut().insert(Failed(self));
        r
    }
}

impl From<OpsError> for WebError {
    fn from(e: OpsError) -> WebError {
        match e.kind() {
            ErrorKind::NotFound => WebError::not_found(e.to_string()),
            ErrorKind::Invalid => WebError::bad_request(e.to_string()),
            ErrorKind::Conflict | ErrorKind::Busy => {
                WebError::new(StatusCode::CONFLICT, "Conflict", e.to_string())
            }
            ErrorKind::Unavailable => {
                tracing::error!(error = %e, "database error");
                WebError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Try again in a moment",
                    "Kura cannot reach its database right now; reload the page in a moment.",
                )
            }
            ErrorKind::DirectoryDown => {
                tracing::error!(error = %e, "directory sign-in failed");
                WebError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Directory unavailable",
                    "The company directory is unavailable, so Kura cannot check your password. Try again in a minute.",
                )
            }
            ErrorKind::Internal => WebError::internal(e),
        }
    }
}

impl From<Denied> for WebError {
    fn from(d: Denied) -> WebError {
        match d {
            Denied::Hidden { .. } => WebError::no_repo(),
            Denied::Failed(e) => e.into(),
            Denied::SignIn { .. } => {
                WebError::new(StatusCode::UNAUTHORIZED, "Sign in", "Sign in to do this.")
            }
            Denied::Scope { repo, need, .. } | Denied::Role { repo, need, .. } => WebError::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!(
                    "This needs the {} role on {repo}; ask one of its administrators.",
                    need.as_str()
                ),
            ),
            Denied::SiteAdmin => WebError::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                "Only site administrators may do this.",
            ),
            Denied::NamespaceAdmin { namespace } => WebError::new(
                StatusCode::FORBIDDEN,
                "Not allowed",
                format!("Only administrators of {namespace} may do this."),
            ),
        }
    }
}

impl From<ReadError> for WebError {
    fn from(e: ReadError) -> WebError {
        match e {
            ReadError::Busy => WebError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "Busy",
                "Kura is busy reading repositories; reload the page in a moment.",
            ),
            ReadError::View(v) => match v {
                kura_view::ViewError::NotFound(what) => {
                    WebError::not_found(format!("{what} does not exist in this repository."))
                }
                kura_view::ViewError::Invalid(m) => WebError::bad_request(m),
                kura_view::ViewError::TooLarge(m) => {
                    WebError::new(StatusCode::PAYLOAD_TOO_LARGE, "Too large", m)
                }
                kura_view::ViewError::Git(m) => WebError::internal(m),
            },
        }
    }
}
