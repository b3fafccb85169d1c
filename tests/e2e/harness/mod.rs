//! E2E test harness: the real `kura` binary on 127.0.0.1, its CLI, `git` and raw HTTP.
#![allow(dead_code)]

/// Generates one `#[test]` per backend: `NAME::sqlite` and `NAME::postgres`, so that nextest runs
/// them as separate tests (in parallel).
macro_rules! both {
    ($( $(#[$meta:meta])* fn $name:ident($b:ident : Backend) $body:block )*) => {$(
        $(#[$meta])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;
            fn run($b: $crate::harness::Backend) $body
            #[test]
            fn sqlite() { run($crate::harness::Backend::Sqlite) }
            #[test]
            fn postgres() { run($crate::harness::Backend::Postgres) }
        }
    )*};
}

mod aws;
mod directory;
mod events;
mod fs;
mod http;
mod kura;
mod mount;
mod pg;
mod process;
mod proxy;
mod web;
mod webhook;

// Everything public in the parts is public here, as when the harness was one file.
pub use aws::*;
pub use directory::*;
pub use events::*;
pub use fs::*;
pub use http::*;
pub use kura::*;
pub use mount::*;
pub use pg::*;
pub use process::*;
pub use proxy::*;
pub use web::*;
pub use webhook::*;

/// Asserts `hay` contains `needle`, showing `hay` otherwise.
#[track_caller]
pub fn assert_contains(hay: &str, needle: &str, what: &str) {
    assert!(
        hay.contains(needle),
        "{what}: expected to contain {needle:?}, got:\n{hay}"
    );
}
