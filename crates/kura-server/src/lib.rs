//! The Kura server: configuration, the axum application (git smart HTTP, the JSON API, health),
//! authentication and throttling, and `ops`, the administrative operations the CLI shares. It
//! reaches storage and the database only through `kura-git` and `kura-db`.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod error;
pub mod git_http;
pub mod maintenance;
pub mod metrics;
pub mod names;
pub mod netguard;
pub mod ops;
pub mod post_receive;
pub mod throttle;

pub use app::{serve, AppState};
pub use config::{Config, LogFormat, Overrides};
pub use ops::{Ops, OpsError};
