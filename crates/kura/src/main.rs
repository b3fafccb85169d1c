//! The `kura` binary: parses the command line, loads the configuration and calls into
//! `kura-server` (serve, ops) or `kura-git` (hooks). It holds no logic of its own.

mod cli;

use std::io::{IsTerminal, Read};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::Parser;
use kura_server::{Config, LogFormat, Ops, Overrides};

use cli::{Cli, Command, GroupCmd, LdapCmd, MemberCmd, MirrorCmd, RepoCmd, TokenCmd, UserCmd};

mod hooks;
mod import;
mod trigger;
mod words;

/// The pack cache is an optimisation: when its folder cannot be used, Kura serves without it.
fn open_pack_cache(
    config: &kura_server::Config,
) -> Option<std::sync::Arc<kura_server::pack_cache::PackCache>> {
    let dir = config.pack_cache_dir();
    match kura_server::pack_cache::PackCache::open(&dir, config.pack_cache_size) {
        Ok(Some(cache)) => {
            tracing::info!(dir = %dir.display(), limit = config.pack_cache_size, "pack cache ready");
            Some(cache)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!("running without the pack cache: {e}");
            None
        }
    }
}

/// glibc's malloc raises its mmap threshold each time a large buffer is freed, and then keeps
/// later large buffers in the heap for good: after a big push or a burst of clones, the server's
/// RSS stayed 20-30 MiB above idle. Fixed thresholds give such memory back. The tunables are
/// read at process start only, so `serve` re-executes itself once with them (the container
/// image sets them itself); other glibc tunables the caller set are kept.
fn with_malloc_tunables() {
    const OURS: &str = "glibc.malloc.mmap_threshold=131072:glibc.malloc.trim_threshold=131072";
    let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    if current.contains("glibc.malloc.mmap_threshold") || !cfg!(target_env = "gnu") {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let value = if current.is_empty() {
        OURS.to_string()
    } else {
        format!("{current}:{OURS}")
    };
    use std::os::unix::process::CommandExt;
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GLIBC_TUNABLES", value)
        .exec();
    // Only returns on failure: serve with glibc's defaults then.
    eprintln!("kura: cannot re-execute with GLIBC_TUNABLES ({err}); continuing without");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if matches!(cli.command, Command::Serve { .. }) {
        with_malloc_tunables();
    }
    // Hooks run inside a push: no config, no database, no runtime.
    match &cli.command {
        Command::Hook { name } => return hooks::run(name),
        Command::CredentialHelper { kind, operation } => {
            return hooks::credential_helper(kind, operation)
        }
        _ => {}
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(config: &Config, default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("KURA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match config.log_format {
        LogFormat::Json => builder.json().with_current_span(true).init(),
        LogFormat::Text => builder.init(),
    }
}

/// Opens the database, the repositories and the workers. Only `serve` (`create`) may make a
/// new data folder; every other command needs the one `serve` made.
async fn open(config: &Config, create: bool) -> Result<Ops> {
    if !create {
        kura_server::datadir::check_database(config)?;
    }
    kura_server::datadir::check_sqlite_filesystem(config)?;
    let url = config.database_url();
    let db = kura_db::Db::connect(&url)
        .await
        .with_context(|| format!("cannot open the database {}", kura_db::redact_url(&url)))?;
    if !create {
        kura_server::datadir::check_folder(config)?;
    }
    let exe = std::env::current_exe().context("cannot find the kura binary's own path")?;
    let store = kura_git::RepoStore::open(&config.data_dir, exe.clone()).with_context(|| {
        format!(
            "cannot prepare the data folder {}",
            config.data_dir.display()
        )
    })?;
    let secrets = kura_mirror::SecretBox::load(config.secret_key.as_deref(), &config.data_dir)?;
    let settings = kura_mirror::MirrorSettings {
        owner: format!(
            "{}-{}",
            std::process::id(),
            kura_db::secrets::random_password()
        ),
        lease: config.mirror_lease,
        retry_max: config.mirror_retry_max,
        codecommit_endpoint: config.codecommit_git_endpoint.clone(),
        exe,
        git_timeout: std::time::Duration::from_secs(600),
        poll: config.mirror_poll,
        concurrency: 4,
        secrets,
    };
    let triggers = open_triggers(config, &db, &store, &settings)?;
    let worker = kura_mirror::Worker::new(db.clone(), store.clone(), settings);
    let ops = Ops::new(db, store, worker, triggers);
    Ok(match &config.ldap {
        Some(l) => ops.with_directory(
            kura_server::ops::DirectoryLink::from_config(l)
                .map_err(|e| anyhow::anyhow!("the [ldap] section does not work: {e}"))?,
        ),
        None => ops,
    })
}

fn open_triggers(
    config: &Config,
    db: &kura_db::Db,
    store: &kura_git::RepoStore,
    mirror: &kura_mirror::MirrorSettings,
) -> Result<kura_mirror::trigger::TriggerWorker> {
    use kura_mirror::trigger::{trigger_worker, AllowList, TriggerConfig, Urls, WebhookClient};
    let allow = AllowList::parse(&config.trigger_allowed_targets).map_err(anyhow::Error::msg)?;
    let ca = config
        .ca_bundle
        .as_deref()
        .filter(|c| !c.is_empty())
        .map(std::path::Path::new);
    let webhooks =
        WebhookClient::new(allow, ca, config.trigger_timeout).map_err(anyhow::Error::msg)?;
    let engine = kura_mirror::delivery::EngineSettings {
        owner: mirror.owner.clone(),
        lease: config.mirror_lease,
        retry_max: config.trigger_retry_max,
        poll: config.mirror_poll,
        concurrency: 8,
    };
    Ok(trigger_worker(
        db.clone(),
        store.clone(),
        TriggerConfig {
            engine,
            secrets: mirror.secrets.clone(),
            webhooks,
            retry_for: config.trigger_retry_for,
            urls: {
                let c = config.clone();
                Urls {
                    base: std::sync::Arc::new(move || Some(c.public_url())),
                }
            },
            aws_region: config.aws_region.clone(),
        },
    ))
}

fn read_stdin_password() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("cannot read the password from stdin")?;
    let pw = s.trim_end_matches(['\n', '\r']).to_string();
    if pw.is_empty() {
        anyhow::bail!("no password on stdin: --password-stdin reads it from standard input; pipe it in, e.g. echo \"$PASSWORD\" | kura ... --password-stdin");
    }
    Ok(pw)
}

fn fmt_time(t: Option<i64>) -> String {
    match t {
        None => "-".into(),
        Some(t) => humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + std::time::Duration::from_secs(t.max(0) as u64),
        )
        .to_string(),
    }
}

async fn run(cli: Cli) -> Result<()> {
    let overrides = Overrides {
        config_file: cli.config.clone(),
        data_dir: cli.data_dir.clone(),
        listen: match &cli.command {
            Command::Serve { listen } => listen.clone(),
            _ => None,
        },
    };
    let config = Config::load(&overrides)?;
    match cli.command {
        Command::Serve { .. } => {
            init_logging(&config, "info,sqlx=warn,tower_http=info");
            kura_git::check_git_version().map_err(anyhow::Error::msg)?;
            // Before the lock file: a refused folder gets nothing written into it.
            kura_server::datadir::check_sqlite_filesystem(&config)?;
            let _lock = kura_server::datadir::lock_for_serve(&config)?;
            let ops = open(&config, true).await?;
            if let Some(pw) = ops
                .bootstrap_admin(config.admin_password.as_deref())
                .await?
            {
                println!("kura: created user admin with password {pw}");
                println!("kura: this password is shown only once; sign in with it in the browser and change it under Settings, or with: kura user passwd admin");
            }
            let mut state = kura_server::AppState::new(ops.clone(), config);
            state.pack_cache = open_pack_cache(&state.config);
            kura_server::serve(state).await?;
            ops.close().await;
        }
        Command::Config => {
            print!("{}", config.redacted_toml());
        }
        command => {
            init_logging(&config, "error");
            let ops = open(&config, false).await?;
            // Boxed: the command futures are large, and a release build's layout query would overflow.
            let result = Box::pin(admin(&ops, &config, command)).await;
            ops.close().await;
            result.map_err(words::worded)?;
        }
    }
    Ok(())
}

/// `kura ldap test`: each step as the directory client took it, then the verdict.
async fn ldap_test(ops: &Ops, login: &str) -> Result<()> {
    let mut pw = String::new();
    std::io::stdin()
        .read_to_string(&mut pw)
        .context("cannot read the password from stdin")?;
    let pw = pw.trim_end_matches(['\n', '\r']);
    let (trace, result) = ops.directory_test(login, pw).await?;
    for s in &trace.steps {
        println!("{s}");
    }
    let person = result?;
    println!("user: {} ({})", person.login, person.dn);
    if let Some(n) = &person.display_name {
        println!("display name: {n}");
    }
    if let Some(e) = &person.email {
        println!("email: {e}");
    }
    if let Some(link) = ops.directory() {
        for r in link.describe_roles(&person.groups) {
            println!("would grant: {r}");
        }
    }
    println!("sign-in of {login} works");
    Ok(())
}

async fn admin(ops: &Ops, config: &Config, command: Command) -> Result<()> {
    match command {
        Command::User(UserCmd::Add {
            name,
            admin,
            password_stdin,
        }) => {
            let pw = password_stdin.then(read_stdin_password).transpose()?;
            let (user, generated) = ops.add_user(&name, pw, admin).await?;
            eprintln!(
                "created user {}{}",
                user.name,
                if admin { " (site admin)" } else { "" }
            );
            if let Some(pw) = generated {
                eprintln!("its password, shown only once:");
                println!("{pw}");
            }
        }
        Command::User(UserCmd::List) => {
            println!(
                "{:<24} {:<10} {:<6} {:<13} {:<21} DISPLAY NAME",
                "NAME", "FROM", "ADMIN", "DISABLED", "CREATED"
            );
            for u in ops.list_users().await? {
                let disabled = match (&u.directory, u.disabled) {
                    (Some(d), true) if d.disabled => "by directory",
                    (_, true) => "yes",
                    (_, false) => "no",
                };
                let display = u.directory.as_ref().and_then(|d| d.display_name.as_deref());
                println!(
                    "{:<24} {:<10} {:<6} {:<13} {:<21} {}",
                    u.name,
                    u.source(),
                    if u.is_admin { "yes" } else { "no" },
                    disabled,
                    fmt_time(Some(u.created_at)),
                    display.unwrap_or("-")
                );
            }
        }
        Command::Ldap(LdapCmd::Test { login }) => ldap_test(ops, &login).await?,
        Command::Ldap(LdapCmd::Sync) => {
            let r = ops.directory_sync().await?;
            for c in &r.changes {
                println!("{c}");
            }
            for p in &r.problems {
                eprintln!("problem: {p}");
            }
            println!(
                "checked {} directory users: {} disabled, {} enabled again, {} changes, {} problems",
                r.checked,
                r.disabled.len(),
                r.enabled.len(),
                r.changes.len(),
                r.problems.len()
            );
            if !r.problems.is_empty() {
                anyhow::bail!(
                    "the sync left {} problems (above); fix them and run `kura ldap sync` again",
                    r.problems.len()
                );
            }
        }
        Command::User(UserCmd::Passwd {
            name,
            password_stdin,
        }) => {
            let pw = password_stdin.then(read_stdin_password).transpose()?;
            let generated = ops.set_password(&name, pw).await?;
            eprintln!("password of {name} changed");
            if let Some(pw) = generated {
                eprintln!("the new password, shown only once:");
                println!("{pw}");
            }
        }
        Command::User(UserCmd::Disable { name }) => {
            ops.set_disabled(&name, true).await?;
            eprintln!("{name} is disabled: its password and tokens no longer work");
        }
        Command::User(UserCmd::Enable { name }) => {
            ops.set_disabled(&name, false).await?;
            eprintln!("{name} is enabled");
        }
        Command::Token(TokenCmd::Create {
            user,
            scope,
            expires_in,
            name,
        }) => {
            let (token, rec) = ops
                .create_token(&user, scope, expires_in, name.as_deref())
                .await?;
            eprintln!(
                "token {} for {user}, scope {}, expires {}; it is shown only once:",
                rec.id,
                rec.scope,
                fmt_time(rec.expires_at)
            );
            println!("{token}");
        }
        Command::Token(TokenCmd::List { user }) => {
            println!(
                "{:<6} {:<16} {:<6} {:<21} {:<21} CREATED",
                "ID", "NAME", "SCOPE", "EXPIRES", "LAST USED"
            );
            for t in ops.list_tokens(&user).await? {
                println!(
                    "{:<6} {:<16} {:<6} {:<21} {:<21} {}",
                    t.id,
                    t.name,
                    t.scope,
                    fmt_time(t.expires_at),
                    fmt_time(t.last_used_at),
                    fmt_time(Some(t.created_at))
                );
            }
        }
        Command::Token(TokenCmd::Revoke { id }) => {
            ops.revoke_token(id).await?;
            eprintln!("token {id} revoked");
        }
        Command::Group(GroupCmd::Add { name }) => {
            ops.add_group(&name).await?;
            eprintln!("created group {name}");
        }
        Command::Group(GroupCmd::Delete { name }) => {
            let g = ops.delete_group(&name).await?;
            eprintln!("deleted group {}", g.name);
        }
        Command::User(UserCmd::Delete { name }) => {
            let u = ops.delete_user(&name).await?;
            eprintln!(
                "deleted user {}: its tokens, memberships and grants are gone",
                u.name
            );
        }
        Command::Group(GroupCmd::List) => {
            println!("{:<32} {:>7} {:>6}", "NAME", "MEMBERS", "REPOS");
            for (g, members, repos) in ops.list_groups().await? {
                println!("{:<32} {members:>7} {repos:>6}", g.name);
            }
        }
        Command::Group(GroupCmd::Show { name }) => {
            let (g, members, repos) = ops.show_group(&name).await?;
            println!("group {}", g.name);
            println!("members ({}):", members.len());
            for (user, role) in &members {
                println!("  {user:<24} {role}");
            }
            println!("repositories ({}):", repos.len());
            for r in &repos {
                println!(
                    "  {:<40} {}",
                    r.full_name(),
                    if r.is_public { "public" } else { "private" }
                );
            }
        }
        Command::Group(GroupCmd::Member(MemberCmd::Add { group, user, role })) => {
            ops.set_member(&group, &user, role).await?;
            eprintln!("{user} is now {role} in {group}");
        }
        Command::Group(GroupCmd::Member(MemberCmd::Remove { group, user })) => {
            ops.remove_member(&group, &user).await?;
            eprintln!("{user} removed from {group}");
        }
        Command::Repo(RepoCmd::Create {
            full_name,
            public,
            default_branch,
        }) => {
            let repo = ops
                .create_repo(&full_name, public, default_branch.as_deref())
                .await?;
            eprintln!(
                "created {} repository {} (default branch {})",
                if repo.is_public { "public" } else { "private" },
                repo.full_name(),
                repo.default_branch
            );
            println!("{}/{}.git", config.public_url(), repo.full_name());
        }
        Command::Repo(RepoCmd::List) => {
            println!(
                "{:<40} {:<8} {:<16} CREATED",
                "REPOSITORY", "PUBLIC", "DEFAULT BRANCH"
            );
            for r in ops.list_repos().await? {
                println!(
                    "{:<40} {:<8} {:<16} {}",
                    r.full_name(),
                    if r.is_public { "yes" } else { "no" },
                    r.default_branch,
                    fmt_time(Some(r.created_at))
                );
            }
        }
        Command::Repo(RepoCmd::Delete { full_name }) => {
            let repo = ops.delete_repo(&full_name).await?;
            eprintln!("deleted {} and its data", repo.full_name());
        }
        Command::Repo(RepoCmd::Rename {
            full_name,
            new_name,
        }) => {
            let repo = ops.rename_repo(&full_name, &new_name).await?;
            eprintln!("renamed {full_name} to {}", repo.full_name());
        }
        Command::Repo(RepoCmd::Set {
            full_name,
            default_branch,
            public,
            private,
        }) => {
            if default_branch.is_none() && !public && !private {
                anyhow::bail!(
                    "nothing to change: give --default-branch BRANCH, --public or --private"
                );
            }
            let repo = ops.repo(&full_name).await?;
            let visibility = (public || private).then_some(public);
            ops.update_repo(&repo, visibility, default_branch.as_deref())
                .await?;
            let now = ops.repo(&full_name).await?;
            eprintln!(
                "{}: default branch {}, {}",
                now.full_name(),
                now.default_branch,
                if now.is_public { "public" } else { "private" }
            );
        }
        Command::Repo(RepoCmd::Show { full_name }) => {
            let repo = ops.repo(&full_name).await?;
            println!("repository:     {}", repo.full_name());
            println!(
                "visibility:     {}",
                if repo.is_public { "public" } else { "private" }
            );
            println!("default branch: {}", repo.default_branch);
            println!("created:        {}", fmt_time(Some(repo.created_at)));
            let report = ops.repo_report(&repo).await?;
            println!("storage:        {}", report.storage.display());
            let c = &report.objects;
            println!(
                "objects:        {} pack(s), {} loose, {} KiB",
                c.packs, c.loose, c.size_kib
            );
            let m = &report.maintenance;
            match &m.running_by {
                Some(owner) => println!("maintenance:    running now ({owner})"),
                None => println!(
                    "maintenance:    last {} ({} runs)",
                    fmt_ago(m.last_finished_at),
                    m.runs
                ),
            }
            if let Some(r) = &m.last_result {
                println!(
                    "  last result:  {r} in {} ms",
                    m.last_duration_ms.unwrap_or(0)
                );
            }
            if let Some(e) = &m.last_error {
                println!("  last error:   {e}");
            }
            if m.failures > 0 {
                let next = m
                    .retry_at
                    .map(|t| (t - kura_db::now()).max(0) as u64)
                    .map(|s| kura_proto::format_duration(std::time::Duration::from_secs(s)))
                    .unwrap_or_else(|| "soon".into());
                println!(
                    "  failed:       {} run(s) in a row; tried again in {next} (or now with kura repo maintain)",
                    m.failures
                );
            }
            let protections = ops.protections(&repo).await?;
            for p in protections {
                println!(
                    "protected:      {} (push: {})",
                    p.pattern,
                    if p.allow_push.is_empty() {
                        "repository admins".into()
                    } else {
                        p.allow_push.join(", ")
                    }
                );
            }
            for mirror in ops.mirrors_of(&repo).await? {
                println!(
                    "mirror {}:       {} ({})",
                    mirror.id,
                    mirror.url,
                    if mirror.verified {
                        "verified"
                    } else {
                        "not verified"
                    }
                );
            }
        }
        Command::Repo(RepoCmd::Pushes { full_name, limit }) => {
            let repo = ops.repo(&full_name).await?;
            let pushes = ops.pushes(&repo, None, limit).await?;
            if pushes.is_empty() {
                eprintln!("no pushes to {} in the log", repo.full_name());
            }
            for p in pushes {
                println!(
                    "push {} by {} at {} ({})",
                    p.id,
                    if p.pusher.is_empty() { "-" } else { &p.pusher },
                    fmt_time(Some(p.created_at)),
                    p.protocol
                );
                for r in &p.refs {
                    println!("  {} {} -> {}", r.name, short(&r.old), short(&r.new));
                }
            }
        }
        Command::Repo(RepoCmd::Import {
            full_name,
            from,
            source,
        }) => {
            let creds = import::Credentials::read(source.username, source.password_stdin)?;
            import::import(
                ops,
                &config.public_url(),
                &full_name,
                &from,
                creds,
                source.public,
            )
            .await?
        }
        Command::Repo(RepoCmd::ImportMany { file, source }) => {
            let creds = import::Credentials::read(source.username, source.password_stdin)?;
            import::import_many(ops, &file, creds, source.public).await?
        }
        Command::Repo(RepoCmd::Maintain { full_name, full }) => {
            let repo = ops.repo(&full_name).await?;
            eprintln!("maintaining {} ...", repo.full_name());
            match ops
                .maintain(&repo, full, kura_server::maintenance::PACK_GRACE)
                .await?
            {
                kura_server::ops::Maintained::Done {
                    summary,
                    duration_ms,
                } => {
                    eprintln!(
                        "maintained {} in {duration_ms} ms: {summary}",
                        repo.full_name()
                    )
                }
                kura_server::ops::Maintained::Busy => anyhow::bail!(
                    "{}; see kura repo show {}",
                    kura_server::OpsError::Busy(repo.full_name()),
                    repo.full_name()
                ),
            }
        }
        Command::Grant {
            full_name,
            user,
            role,
        } => {
            ops.grant(&full_name, &user, role).await?;
            eprintln!("{user} has {role} access to {full_name}");
        }
        Command::Revoke { full_name, user } => {
            ops.revoke(&full_name, &user).await?;
            eprintln!("removed the grant of {user} on {full_name}");
        }
        Command::Protect {
            full_name,
            pattern,
            allow_push,
        } => {
            ops.protect(&full_name, &pattern, &allow_push).await?;
            let who = if allow_push.is_empty() {
                "repository admins".to_string()
            } else {
                allow_push.join(", ")
            };
            eprintln!("branches matching {pattern:?} in {full_name} are protected: no force-push, no deletion, pushes by {who}");
        }
        Command::Unprotect { full_name, pattern } => {
            ops.unprotect(&full_name, &pattern).await?;
            eprintln!("removed the protection {pattern:?} from {full_name}");
        }
        Command::Check => {
            let c = ops.check_storage().await?;
            for p in &c.problems {
                println!("problem: {p}");
            }
            for u in &c.unlisted {
                println!("not in the database: {}", u.display());
            }
            if c.problems.is_empty() && c.unlisted.is_empty() {
                println!(
                    "checked {} repositories: the database and the repositories agree",
                    c.checked
                );
            } else {
                anyhow::bail!(
                    "checked {} repositories: {} problems, {} folders not in the database (above); after a restore, restore the database and the repositories to the same time, or delete the repositories that have no data (kura repo delete) and move the unlisted folders away",
                    c.checked,
                    c.problems.len(),
                    c.unlisted.len()
                );
            }
        }
        Command::Mirror(cmd) => Box::pin(mirror(ops, cmd)).await?,
        Command::Trigger(cmd) => Box::pin(trigger::run(ops, cmd)).await?,
        Command::Serve { .. }
        | Command::Config
        | Command::Hook { .. }
        | Command::CredentialHelper { .. } => unreachable!(),
    }
    Ok(())
}

/// A commit id shortened for people; creations and deletions are spelled out.
fn short(oid: &str) -> &str {
    if !oid.is_empty() && oid.bytes().all(|b| b == b'0') {
        "(none)"
    } else {
        &oid[..oid.len().min(12)]
    }
}

fn fmt_ago(t: Option<i64>) -> String {
    match t {
        None => "never".into(),
        Some(t) => format!(
            "{} ({} ago)",
            fmt_time(Some(t)),
            humantime::format_duration(std::time::Duration::from_secs(
                (kura_db::now() - t).max(0) as u64
            ))
        ),
    }
}

async fn mirror(ops: &Ops, cmd: MirrorCmd) -> Result<()> {
    match cmd {
        MirrorCmd::Add {
            full_name,
            url,
            create,
            branches,
            keep_divergent_refs,
            username,
            password_stdin,
        } => {
            let password = password_stdin.then(read_stdin_password).transpose()?;
            let m = ops
                .add_mirror(
                    &full_name,
                    kura_server::ops::MirrorRequest {
                        url: &url,
                        create,
                        branches: &branches,
                        keep_divergent: keep_divergent_refs,
                        username: username.as_deref(),
                        password,
                    },
                )
                .await?;
            eprintln!(
                "mirror {} added: every push to {} goes to {}",
                m.id, m.repo, m.url
            );
            // The first run copies what the repository has now; report it here.
            match ops.run_mirror_now(&m).await {
                Some(Ok(o)) => eprintln!("mirrored to {} ({}), verified", m.url, o.summary),
                Some(Err(e)) => eprintln!(
                    "warning: the first run to {} failed: {}; it is retried in the background by kura serve (kura mirror status {})",
                    m.url,
                    kura_mirror::sanitize(&e),
                    m.repo
                ),
                None => eprintln!("the first run is queued (kura mirror status {})", m.repo),
            }
        }
        MirrorCmd::List { full_name } => {
            println!(
                "{:<5} {:<32} {:<48} {:<9} LAST SUCCESS",
                "ID", "REPOSITORY", "TARGET", "VERIFIED"
            );
            for m in ops.mirrors(full_name.as_ref()).await? {
                println!(
                    "{:<5} {:<32} {:<48} {:<9} {}",
                    m.id,
                    m.repo,
                    m.url,
                    if m.verified { "yes" } else { "no" },
                    fmt_time(m.last_success_at)
                );
            }
        }
        MirrorCmd::Status { full_name } => {
            let mirrors = ops.mirrors(Some(&full_name)).await?;
            if mirrors.is_empty() {
                println!("{full_name} has no mirror");
            }
            for m in mirrors {
                let st = ops.mirror_status(&m).await?;
                let lag = if st.pending > 0 {
                    format!("{} s", st.lag_seconds)
                } else {
                    "0 s (up to date)".into()
                };
                println!("mirror {} of {}: {}", m.id, m.repo, m.url);
                if !m.branches.is_empty() {
                    println!("  branches:      {}", m.branches.join(", "));
                }
                if m.keep_divergent {
                    println!("  keep divergent refs: yes");
                }
                println!("  last success:  {}", fmt_ago(m.last_success_at));
                println!(
                    "  last result:   {}",
                    m.last_summary.as_deref().unwrap_or("-")
                );
                println!(
                    "  last error:    {}",
                    m.last_error.as_deref().unwrap_or("none")
                );
                println!("  pending:       {} push(es), lag {lag}", st.pending);
                if let (Some(_), Some(next)) = (&m.last_error, st.next_attempt_at) {
                    println!("  next attempt:  {}", fmt_time(Some(next)));
                }
                println!(
                    "  remote heads:  {}",
                    if m.verified {
                        "verified"
                    } else {
                        "not verified"
                    }
                );
                for line in m.remote_heads.as_deref().unwrap_or("").lines() {
                    if let Some((name, oid)) = line.split_once(' ') {
                        println!("    {name} {}", &oid[..oid.len().min(12)]);
                    }
                }
                println!("  runs:          {} ({} failed)", m.runs, m.failures);
            }
        }
        MirrorCmd::Sync { full_name, mirror } => {
            let m = ops.mirror(&full_name, mirror.as_deref()).await?;
            ops.sync_mirror(&m).await?;
            eprintln!("mirroring {} to {} ...", m.repo, m.url);
            match ops.run_mirror_now(&m).await {
                Some(Ok(o)) => eprintln!("mirrored to {} ({}), verified", m.url, o.summary),
                Some(Err(e)) => anyhow::bail!(
                    "mirroring to {} failed: {}; it will be retried (kura mirror status {})",
                    m.url,
                    kura_mirror::sanitize(&e),
                    m.repo
                ),
                None => eprintln!(
                    "a run is in progress elsewhere or waiting for its retry time; queued (kura mirror status {})",
                    m.repo
                ),
            }
        }
        MirrorCmd::Remove { full_name, mirror } => {
            let m = ops.remove_mirror(&full_name, mirror.as_deref()).await?;
            eprintln!("removed mirror {} of {} ({})", m.id, m.repo, m.url);
        }
    }
    Ok(())
}
