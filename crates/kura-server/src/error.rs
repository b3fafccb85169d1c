//! One error type for HTTP answers: a status, a message that says what to do, and the format
//! the client reads (plain text for git, which prints it as `remote:` lines; JSON for the API).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::ops::{ErrorKind, OpsError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug)]
pub struct HttpError {
    pub status: StatusCode,
    pub message: String,
    pub format: Format,
    pub challenge: bool,
    pub retry_after: Option<u64>,
    /// A stable identifier for programs (the API's `code`).
    pub code: &'static str,
}

impl HttpError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> HttpError {
        HttpError {
            status,
            message: message.into(),
            format: Format::Text,
            challenge: false,
            retry_after: None,
            code: default_code(status),
        }
    }
    pub fn code(mut self, code: &'static str) -> HttpError {
        self.code = code;
        self
    }
    pub fn json(mut self) -> HttpError {
        self.format = Format::Json;
        self
    }
    /// `401` with the Basic challenge that makes git ask for credentials.
    pub fn unauthorized(message: impl Into<String>) -> HttpError {
        let mut e = HttpError::new(StatusCode::UNAUTHORIZED, message);
        e.challenge = true;
        e
    }
    pub fn not_found(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::NOT_FOUND, message)
    }
    pub fn forbidden(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::FORBIDDEN, message)
    }
    pub fn bad_request(message: impl Into<String>) -> HttpError {
        HttpError::new(StatusCode::BAD_REQUEST, message)
    }
    pub fn internal(detail: impl std::fmt::Display) -> HttpError {
        // The detail goes to the log; the client gets a request id to quote.
        tracing::error!(error = %detail, "internal error");
        HttpError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Kura hit an internal error; try again, and if it persists give the administrator the x-request-id of this response",
        )
    }
}

fn default_code(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "bad_request",
        401 => "unauthenticated",
        403 => "forbidden",
        404 => "not_found",
        409 => "conflict",
        415 => "unsupported_media_type",
        429 => "throttled",
        503 => "unavailable",
        _ => "error",
    }
}

/// The operation's words, with a status for its kind; failures of the database or storage are
/// logged and answered without their details.
impl From<OpsError> for HttpError {
    fn from(e: OpsError) -> HttpError {
        let status = match e.kind() {
            ErrorKind::NotFound => StatusCode::NOT_FOUND,
            ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            ErrorKind::Conflict => StatusCode::CONFLICT,
            ErrorKind::Busy => StatusCode::CONFLICT,
            ErrorKind::Unavailable => {
                tracing::error!(error = %e, "database error");
                return HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "Kura cannot reach its database right now; try again in a moment",
                )
                .code(e.code());
            }
            // The detail (directory URLs, why they failed) is for the log and `kura ldap test`.
            ErrorKind::DirectoryDown => {
                tracing::error!(error = %e, "directory sign-in failed");
                let mut h = HttpError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the company directory is unavailable, so Kura cannot check this password; try again in a minute (an access token works without the directory; if this persists, an administrator can run `kura ldap test` to see why)",
                )
                .code(e.code());
                h.retry_after = Some(10);
                return h;
            }
            ErrorKind::Internal => return HttpError::internal(&e).code(e.code()),
        };
        HttpError::new(status, e.to_string()).code(e.code())
    }
}

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        let mut resp = match self.format {
            Format::Text => {
                let mut r = format!("{}\n", self.message).into_response();
                r.headers_mut().insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                r
            }
            Format::Json => {
                axum::Json(serde_json::json!({ "error": self.message, "code": self.code }))
                    .into_response()
            }
        };
        *resp.status_mut() = self.status;
        let h = resp.headers_mut();
        if self.challenge {
            h.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"Kura\""),
            );
        }
        if let Some(s) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&s.to_string()) {
                h.insert(header::RETRY_AFTER, v);
            }
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        resp
    }
}
