//! `kura trigger`: push triggers and their delivery log.

use std::io::Read;

use anyhow::{bail, Context, Result};
use kura_db::{DeliveryAttempt, TriggerDelivery};
use kura_mirror::trigger::{Filters, TriggerKind};
use kura_server::ops::{TriggerInfo, TriggerRequest, TriggerScope};
use kura_server::{Ops, RepoPath};

use super::{fmt_ago, fmt_time};
use crate::cli::TriggerCmd;

/// What stdin holds for `trigger add`: the URL's line first when it was given as `-` (so a
/// token in it stays out of argv and shell history), then the secret with `--secret-stdin`.
fn read_stdin(url: bool, secret: bool) -> Result<(Option<String>, Option<String>)> {
    if !url && !secret {
        return Ok((None, None));
    }
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read stdin")?;
    let (first, rest) = match url {
        true => s.split_once('\n').unwrap_or((s.as_str(), "")),
        false => ("", s.as_str()),
    };
    let url = url.then(|| first.trim().to_string());
    if url.as_deref() == Some("") {
        bail!("no URL on stdin: give it as the first line, e.g. printf '%s\\n' \"$URL\" | kura trigger add NS/NAME webhook -");
    }
    let secret = secret.then(|| rest.trim_end_matches(['\n', '\r']).to_string());
    if secret.as_deref() == Some("") {
        bail!("no secret on stdin: pipe it in (after the URL's line when the URL is -), e.g. printf %s \"$SECRET\" | kura trigger add ... --secret-stdin");
    }
    Ok((url, secret))
}

fn scope_of(full_name: Option<RepoPath>, server: bool) -> Result<Option<TriggerScope>> {
    match (full_name, server) {
        (Some(_), true) => bail!("give a repository or --server, not both"),
        (Some(p), false) => Ok(Some(TriggerScope::Repo(p))),
        (None, true) => Ok(Some(TriggerScope::Server)),
        (None, false) => Ok(None),
    }
}

fn describe(t: &TriggerInfo) -> String {
    let target = t.shown_target();
    match &t.settings.kind {
        TriggerKind::Webhook { format } => format!("POST {target} ({})", format.name()),
        TriggerKind::Eventbridge { detail_type } => {
            format!("EventBridge bus {target} (source kura, detail-type {detail_type})")
        }
        TriggerKind::Codepipeline { variables } => {
            let vars: Vec<String> = variables
                .iter()
                .map(|v| format!("{}={}", v.name, v.value))
                .collect();
            if vars.is_empty() {
                format!("CodePipeline {target}")
            } else {
                format!("CodePipeline {target} ({})", vars.join(", "))
            }
        }
    }
}

fn whose(t: &TriggerInfo) -> String {
    t.trigger
        .repo
        .clone()
        .unwrap_or_else(|| "every repository".into())
}

pub async fn run(ops: &Ops, cmd: TriggerCmd) -> Result<()> {
    match cmd {
        TriggerCmd::Add {
            args,
            server,
            secret_stdin,
            format,
            bus,
            detail_type,
            variables,
            branches,
            tags,
            paths,
            exclude_paths,
        } => {
            let mut args = args.into_iter();
            let scope = if server {
                TriggerScope::Server
            } else {
                let repo = args.next().unwrap_or_default();
                let path: RepoPath = repo.parse().map_err(|e| {
                    anyhow::anyhow!("{e}: write NAMESPACE/NAME, or --server for every repository")
                })?;
                TriggerScope::Repo(path)
            };
            let Some(kind) = args.next() else {
                bail!("say what to trigger: webhook URL, eventbridge, or codepipeline PIPELINE");
            };
            let positional = args.next();
            if args.next().is_some() {
                bail!("too many arguments: kura trigger add NS/NAME KIND [URL|PIPELINE] [flags]");
            }
            let (stdin_url, secret) = read_stdin(positional.as_deref() == Some("-"), secret_stdin)?;
            let positional = stdin_url.or(positional);
            let target = match kind.as_str() {
                "eventbridge" => {
                    if positional.is_some() {
                        bail!("give the EventBridge bus with --bus NAME_OR_ARN");
                    }
                    bus.clone()
                }
                _ => {
                    if bus.is_some() {
                        bail!("--bus applies to eventbridge triggers only");
                    }
                    positional
                }
            };
            let t = ops
                .add_trigger(
                    &scope,
                    TriggerRequest {
                        kind: &kind,
                        target: target.as_deref(),
                        secret,
                        format: format.as_deref(),
                        detail_type: detail_type.as_deref(),
                        variables: &variables,
                        filters: Filters {
                            branches,
                            tags,
                            paths,
                            exclude_paths,
                        },
                    },
                )
                .await?;
            eprintln!(
                "trigger {} added: pushes to {} -> {}; {}{}",
                t.trigger.id,
                whose(&t),
                describe(&t),
                t.settings.filters.describe(),
                if t.trigger.secret.is_some() {
                    "; signed (X-Kura-Signature-256)"
                } else {
                    ""
                }
            );
        }
        TriggerCmd::List { full_name, server } => {
            let list = match scope_of(full_name, server)? {
                Some(s) => ops.triggers(&s).await?,
                None => ops.all_triggers().await?,
            };
            if list.is_empty() {
                println!("no triggers");
                return Ok(());
            }
            println!(
                "{:<5} {:<24} {:<13} {:<8} {:<6} TARGET / FILTERS",
                "ID", "REPOSITORY", "KIND", "PENDING", "FAILS"
            );
            for t in list {
                println!(
                    "{:<5} {:<24} {:<13} {:<8} {:<6} {}",
                    t.trigger.id,
                    t.trigger.repo.as_deref().unwrap_or("*"),
                    t.kind(),
                    t.status.pending,
                    t.trigger.failures,
                    t.shown_target()
                );
                println!("{:<59} {}", "", t.settings.filters.describe());
            }
        }
        TriggerCmd::Show { id } => {
            let t = ops.trigger_anywhere(id).await?;
            println!(
                "trigger {} of {}: {}",
                t.trigger.id,
                whose(&t),
                describe(&t)
            );
            println!("  filters:       {}", t.settings.filters.describe());
            println!(
                "  secret:        {}",
                if t.trigger.secret.is_some() {
                    "set (not shown)"
                } else {
                    "none"
                }
            );
            println!("  last success:  {}", fmt_ago(t.trigger.last_success_at));
            println!(
                "  last error:    {}",
                t.trigger.last_error.as_deref().unwrap_or("none")
            );
            println!(
                "  pending:       {} event(s), lag {} s",
                t.status.pending, t.status.lag_seconds
            );
            if let (Some(_), Some(next)) = (&t.trigger.last_error, t.status.next_attempt_at) {
                println!("  next attempt:  {}", fmt_time(Some(next)));
            }
            println!(
                "  runs:          {} ({} failed)",
                t.trigger.runs, t.trigger.failures
            );
        }
        TriggerCmd::Remove { id } => {
            let t = ops.remove_trigger(None, id).await?;
            eprintln!(
                "removed trigger {id} ({} of {}); its pending events are dropped",
                describe(&t),
                whose(&t)
            );
        }
        TriggerCmd::Deliveries {
            full_name,
            server,
            failed,
            trigger,
            limit,
        } => {
            let scope = match scope_of(full_name, server)? {
                Some(s) => s,
                None => bail!("name a repository (kura trigger deliveries NS/NAME) or --server"),
            };
            let rows = ops
                .trigger_deliveries(&scope, trigger, failed, None, limit)
                .await?;
            if rows.is_empty() {
                println!("no deliveries{}", if failed { " failed" } else { "" });
                return Ok(());
            }
            println!(
                "{:<7} {:<7} {:<24} {:<28} {:<10} {:<5} {:<6} QUEUED",
                "ID", "TRIGGER", "REPOSITORY", "REF", "STATUS", "TRIES", "LAST"
            );
            for d in rows {
                print_delivery_row(&d);
            }
        }
        TriggerCmd::Delivery { id } => {
            let (d, attempts) = ops.delivery(None, id).await?;
            print_delivery(&d, &attempts);
        }
        TriggerCmd::Redeliver { id } => {
            let new = ops.redeliver(None, id).await?;
            eprintln!("delivery {id} queued again as delivery {new}; kura serve sends it (kura trigger delivery {new})");
        }
    }
    Ok(())
}

fn print_delivery_row(d: &TriggerDelivery) {
    println!(
        "{:<7} {:<7} {:<24} {:<28} {:<10} {:<5} {:<6} {}",
        d.id,
        d.target_id,
        d.repo.as_deref().unwrap_or("-"),
        d.ref_name,
        d.state.as_str(),
        d.attempts,
        d.last_status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "-".into()),
        fmt_time(Some(d.created_at))
    );
    if let Some(n) = &d.note {
        println!("        {n}");
    }
    if d.done_at.is_none() || d.state == kura_db::DeliveryState::Failed {
        if let Some(e) = &d.last_error {
            println!("        last error: {e}");
        }
    }
}

fn print_delivery(d: &TriggerDelivery, attempts: &[DeliveryAttempt]) {
    let short = |s: &str| s.chars().take(12).collect::<String>();
    println!(
        "delivery {} of trigger {}: {} {} {} -> {} by {}",
        d.id,
        d.target_id,
        d.repo.as_deref().unwrap_or("-"),
        d.ref_name,
        short(&d.old_id),
        short(&d.new_id),
        d.pusher
    );
    println!("  status:   {}", d.state.as_str());
    if let Some(n) = &d.note {
        println!("  note:     {n}");
    }
    if let Some(of) = d.redelivery_of {
        println!("  redelivery of {of}");
    }
    println!("  queued:   {}", fmt_time(Some(d.created_at)));
    if attempts.is_empty() {
        println!("  attempts: none yet");
    }
    for (i, a) in attempts.iter().enumerate() {
        let status = a
            .status_code
            .map(|s| format!("HTTP {s}"))
            .unwrap_or_else(|| {
                if a.error.is_some() {
                    "no answer".into()
                } else {
                    "ok".into()
                }
            });
        println!(
            "  attempt {}: {} {} in {} ms{}",
            i + 1,
            fmt_time(Some(a.started_at)),
            status,
            a.duration_ms,
            a.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        );
        if let Some(x) = &a.response_excerpt {
            println!("    answer: {}", x.replace('\n', " "));
        }
    }
}
