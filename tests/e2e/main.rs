//! End-to-end suite: the real `kura` binary on 127.0.0.1, driven by the real `git` client and raw
//! HTTP, once on SQLite and once on PostgreSQL (`NAME::sqlite`, `NAME::postgres`).

#[macro_use]
mod harness;

mod abuse;
mod api;
mod auth;
mod big;
mod browser;
mod cli;
mod concurrency;
mod directory;
mod disconnect;
mod faults;
mod git_basic;
mod hardening;
mod import;
mod maintenance;
mod matrix;
mod mirror;
mod names;
mod network;
mod pack_cache;
mod pages;
mod permissions;
mod protected;
mod pushlog;
mod replicas;
mod trigger_pages;
mod triggers;
