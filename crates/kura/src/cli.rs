//! The command line (clap derive).

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use kura_db::Role;
use kura_server::RepoPath;

#[derive(Parser)]
#[command(name = "kura", version, about = "Kura, a private Git server")]
pub struct Cli {
    /// Configuration file (default: ./kura.toml when it exists)
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data folder: repositories and the SQLite database (env KURA_DATA_DIR)
    #[arg(long, global = true, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server
    Serve {
        /// Address to listen on, e.g. 0.0.0.0:3000 (env KURA_LISTEN)
        #[arg(long, value_name = "ADDR")]
        listen: Option<String>,
    },
    /// Print the effective configuration, secrets redacted
    Config,
    /// Check that the database and the repositories agree: every repository has its folder
    /// and its refs' objects, and no folder is left over (run after a restore)
    Check,
    /// Manage users
    #[command(subcommand)]
    User(UserCmd),
    /// Manage access tokens
    #[command(subcommand)]
    Token(TokenCmd),
    /// Manage groups
    #[command(subcommand)]
    Group(GroupCmd),
    /// Manage repositories
    #[command(subcommand)]
    Repo(RepoCmd),
    /// Give a user a role on one repository
    Grant {
        /// NAMESPACE/NAME
        full_name: RepoPath,
        user: String,
        /// read, write or admin
        #[arg(long)]
        role: Role,
    },
    /// Remove a user's grant on a repository
    Revoke { full_name: RepoPath, user: String },
    /// Protect branches: no force-push, no deletion, only allowed pushers
    Protect {
        /// NAMESPACE/NAME
        full_name: RepoPath,
        /// Branch name or glob, e.g. main or release/*
        pattern: String,
        /// Who may push (repeatable); without it, repository admins
        #[arg(long = "allow-push", value_name = "USER")]
        allow_push: Vec<String>,
    },
    /// Remove a branch protection
    Unprotect {
        full_name: RepoPath,
        pattern: String,
    },
    /// Manage push mirrors (CodeCommit or any Git remote)
    #[command(subcommand)]
    Mirror(MirrorCmd),
    /// Start webhooks, EventBridge events or CodePipeline runs on push
    #[command(subcommand)]
    Trigger(TriggerCmd),
    /// Check and sync sign-in with the company directory ([ldap] in kura.toml)
    #[command(subcommand)]
    Ldap(LdapCmd),
    /// Git credential helper: `codecommit` signs with AWS credentials (SigV4)
    #[command(name = "credential-helper")]
    CredentialHelper {
        /// codecommit (or env, used by Kura's own mirror pushes)
        kind: String,
        /// get, store or erase (given by git)
        operation: String,
    },
    /// Run by git during pushes
    #[command(hide = true)]
    Hook { name: String },
}

#[derive(Subcommand)]
pub enum UserCmd {
    /// Create a user (a random password is printed when --password-stdin is not given)
    Add {
        name: String,
        /// Make the user a site admin
        #[arg(long)]
        admin: bool,
        /// Read the password from stdin
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users
    List,
    /// Set a new password (random and printed when --password-stdin is not given)
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Lock a user out: password and tokens stop working
    Disable { name: String },
    /// Let a disabled user back in
    Enable { name: String },
    /// Delete a user with their tokens, memberships and grants (refused while they own
    /// repositories; the push log keeps their name)
    Delete { name: String },
}

#[derive(Subcommand)]
pub enum LdapCmd {
    /// Sign LOGIN in step by step (password from stdin), showing each step, the groups found
    /// and the roles Kura would grant; changes nothing
    Test { login: String },
    /// Bring every directory user in line with the directory now: details, disabled users,
    /// site admins and group roles
    Sync,
}

#[derive(Subcommand)]
pub enum TokenCmd {
    /// Create a token; it is printed once on stdout
    Create {
        user: String,
        /// read, write or admin
        #[arg(long)]
        scope: Role,
        /// Lifetime, e.g. 90d or 12h, at most 3650d (default: no expiry)
        #[arg(long, value_name = "DURATION", value_parser = kura_proto::parse_lifetime, allow_hyphen_values = true)]
        expires_in: Option<std::time::Duration>,
        /// A label to recognise it by
        #[arg(long)]
        name: Option<String>,
    },
    /// List a user's tokens
    List { user: String },
    /// Delete a token
    Revoke { id: i64 },
}

#[derive(Subcommand)]
pub enum GroupCmd {
    /// Create a group namespace
    Add { name: String },
    /// List groups with their numbers of members and repositories
    List,
    /// Show a group's members (and roles) and repositories
    Show { name: String },
    /// Delete a group (refused while it holds repositories)
    Delete { name: String },
    /// Manage group members
    #[command(subcommand)]
    Member(MemberCmd),
}

#[derive(Subcommand)]
pub enum MemberCmd {
    /// Add a member or change their role
    Add {
        group: String,
        user: String,
        /// read, write or admin
        #[arg(long)]
        role: Role,
    },
    /// Remove a member
    Remove { group: String, user: String },
}

#[derive(Subcommand)]
pub enum RepoCmd {
    /// Create a repository
    Create {
        /// NAMESPACE/NAME
        full_name: RepoPath,
        /// Readable by everyone
        #[arg(long)]
        public: bool,
        #[arg(long, value_name = "BRANCH")]
        default_branch: Option<String>,
    },
    /// List repositories
    List,
    /// Delete a repository and its data
    Delete { full_name: RepoPath },
    /// Rename or move a repository (metadata only)
    Rename {
        full_name: RepoPath,
        new_name: RepoPath,
    },
    /// Change a repository's default branch or visibility
    Set {
        /// NAMESPACE/NAME
        full_name: RepoPath,
        /// The branch clones check out (and that cannot be deleted)
        #[arg(long, value_name = "BRANCH")]
        default_branch: Option<String>,
        /// Readable by everyone
        #[arg(long, conflicts_with = "private")]
        public: bool,
        /// Readable only by members and grantees
        #[arg(long)]
        private: bool,
    },
    /// Show a repository: settings, storage, maintenance, mirrors
    Show { full_name: RepoPath },
    /// Show the push log of a repository, newest first
    Pushes {
        full_name: RepoPath,
        /// How many pushes to show (at most 100)
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// Copy every branch and tag of another Git server's repository into a new (or empty)
    /// repository: any https:// remote or a local path
    Import {
        /// NAMESPACE/NAME (created when missing)
        full_name: RepoPath,
        /// https://host/group/project.git or /path/to/repo.git
        #[arg(long, value_name = "URL")]
        from: String,
        #[command(flatten)]
        source: ImportArgs,
    },
    /// Import many repositories: FILE has one `NAMESPACE/NAME URL` per line (# comments);
    /// goes on past failures and prints a summary
    ImportMany {
        /// The list (not stdin: stdin carries the password)
        file: PathBuf,
        #[command(flatten)]
        source: ImportArgs,
    },
    /// Repack (with bitmaps), refresh the commit-graph, pack refs, prune old loose objects
    Maintain {
        full_name: RepoPath,
        /// One pack for everything instead of a geometric roll-up
        #[arg(long)]
        full: bool,
    },
}

/// How `kura repo import` and `import-many` sign in at the source, and what they create.
#[derive(clap::Args)]
pub struct ImportArgs {
    /// User name at the source (GitLab: any name with a token as the password)
    #[arg(long)]
    pub username: Option<String>,
    /// Read the source's password or token from stdin (used for every line of a list)
    #[arg(long)]
    pub password_stdin: bool,
    /// Make the repositories the import creates readable by everyone
    #[arg(long)]
    pub public: bool,
}

#[derive(Subcommand)]
pub enum MirrorCmd {
    /// Mirror every push of a repository to CodeCommit or another Git remote
    Add {
        /// NAMESPACE/NAME
        full_name: RepoPath,
        /// codecommit://REGION/REPOSITORY or https://HOST/PATH.git
        url: String,
        /// Create the CodeCommit repository when missing
        #[arg(long)]
        create: bool,
        /// Mirror only branches matching these globs (repeatable); tags are always mirrored
        #[arg(long = "branches", value_name = "GLOB")]
        branches: Vec<String>,
        /// Never overwrite or delete a remote ref that is not behind Kura's
        #[arg(long)]
        keep_divergent_refs: bool,
        /// User name for an HTTPS remote
        #[arg(long)]
        username: Option<String>,
        /// Read the HTTPS remote's password from stdin (stored encrypted)
        #[arg(long)]
        password_stdin: bool,
    },
    /// List mirrors (of one repository, or all)
    List { full_name: Option<RepoPath> },
    /// Show a repository's mirrors: last success, last error, pending pushes, lag, verification
    Status { full_name: RepoPath },
    /// Mirror now
    Sync {
        full_name: RepoPath,
        /// Mirror id or URL when the repository has several
        mirror: Option<String>,
    },
    /// Stop mirroring
    Remove {
        full_name: RepoPath,
        /// Mirror id or URL when the repository has several
        mirror: Option<String>,
    },
}

#[derive(Subcommand)]
pub enum TriggerCmd {
    /// Add a trigger: NS/NAME webhook URL | NS/NAME eventbridge | NS/NAME codepipeline PIPELINE
    /// (with --server: the same without NS/NAME, for every repository)
    Add {
        /// NAMESPACE/NAME (not with --server), then webhook, eventbridge or codepipeline, then
        /// the URL (webhook; `-` reads it from stdin's first line, out of argv and shell
        /// history) or the pipeline's name (codepipeline)
        #[arg(value_name = "ARG", num_args = 1..=3, required = true)]
        args: Vec<String>,
        /// A server-wide trigger: every push to every repository
        #[arg(long)]
        server: bool,
        /// Read the webhook's signing secret from stdin (X-Kura-Signature-256; stored encrypted)
        #[arg(long)]
        secret_stdin: bool,
        /// Webhook body: json (a push event like GitHub's and GitLab's) or mattermost (also Slack)
        #[arg(long, value_name = "FORMAT")]
        format: Option<String>,
        /// EventBridge bus name or ARN (default: default)
        #[arg(long, value_name = "NAME_OR_ARN")]
        bus: Option<String>,
        /// EventBridge detail-type (default: Kura Push)
        #[arg(long, value_name = "TYPE")]
        detail_type: Option<String>,
        /// CodePipeline variable (repeatable); VALUE may use {commit}, {before}, {ref},
        /// {branch}, {tag}, {pusher}, {repository}
        #[arg(long = "variable", value_name = "NAME=VALUE")]
        variables: Vec<String>,
        /// Only pushes to branches matching these globs (without --tags: no tag pushes)
        #[arg(long, value_name = "GLOB", num_args = 1.., value_delimiter = ',')]
        branches: Vec<String>,
        /// Only pushes of tags matching these globs (without --branches: no branch pushes)
        #[arg(long, value_name = "GLOB", num_args = 1.., value_delimiter = ',')]
        tags: Vec<String>,
        /// Only branch pushes that change a file matching one of these globs, e.g. services/a/**
        #[arg(long, value_name = "GLOB", num_args = 1.., value_delimiter = ',')]
        paths: Vec<String>,
        /// Not for changed files matching these globs (a push changing only such files is not sent)
        #[arg(long, value_name = "GLOB", num_args = 1.., value_delimiter = ',')]
        exclude_paths: Vec<String>,
    },
    /// List triggers: of one repository, the server-wide ones (--server), or all
    List {
        full_name: Option<RepoPath>,
        #[arg(long)]
        server: bool,
    },
    /// Show one trigger: settings, filters, last result, pending events
    Show { id: i64 },
    /// Remove a trigger and its pending events
    Remove { id: i64 },
    /// The delivery log: each event, its status and last answer (newest first)
    Deliveries {
        full_name: Option<RepoPath>,
        /// Deliveries of the server-wide triggers
        #[arg(long)]
        server: bool,
        /// Only those that failed (retrying or given up)
        #[arg(long)]
        failed: bool,
        /// Only this trigger's
        #[arg(long, value_name = "ID")]
        trigger: Option<i64>,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One delivery with every attempt (status code, duration, answer)
    Delivery { id: i64 },
    /// Send a delivery's event again (as a new delivery)
    Redeliver { id: i64 },
}
