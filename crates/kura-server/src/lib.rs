//! The Kura server: configuration, the axum application (git smart HTTP, the JSON API, health,
//! metrics), authentication (`auth`, one extractor), the one access decision (`access`), and
//! `ops`, the operations layer the CLI and the API share: only `ops` reaches the database, the
//! repository store and the delivery worker.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod access;
pub mod api;
pub mod app;
pub mod auth;
pub mod config;
pub mod datadir;
pub mod directory;
pub mod error;
pub mod git_cache;
pub mod git_http;
pub mod limits;
pub mod listen;
pub mod maintenance;
pub mod metrics;
pub use kura_proto::names;
pub mod netguard;
pub mod ops;
pub mod pack_cache;
pub mod passwords;
pub mod post_receive;
pub mod recent;
pub mod replicas;
pub mod throttle;
pub mod web;

pub use app::{serve, AppState};
pub use config::{Config, LogFormat, Overrides};
pub use names::RepoPath;
pub use ops::{Ops, OpsError};
