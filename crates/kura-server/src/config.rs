//! The one `Config`: defaults -> `kura.toml` -> `KURA_*` environment -> command-line flags.

use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

/// In the data folder: the address `kura serve` listens on.
const LISTENING_FILE: &str = "listening";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub data_dir: PathBuf,
    #[serde(deserialize_with = "lenient_string")]
    pub listen: String,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub database_url: Option<String>,
    /// The PostgreSQL password, when it is kept apart from `database_url` (a secret store hands
    /// it over on its own); it fills a URL that has none.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub database_password: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub admin_password: Option<String>,
    #[serde(deserialize_with = "lenient_opt_string")]
    pub public_url: Option<String>,
    pub allow_anonymous_read: bool,
    #[serde(deserialize_with = "string_list")]
    pub allowed_cidrs: Vec<String>,
    #[serde(deserialize_with = "string_list")]
    pub trusted_proxies: Vec<String>,
    pub auth_max_failures: u32,
    /// Failed passwords for one user name from all addresses together before it is throttled
    /// (higher than the per-address limit, so one address cannot lock a user out everywhere).
    pub auth_max_failures_per_user: u32,
    #[serde(with = "duration")]
    pub auth_failure_window: Duration,
    /// Password verifications (argon2id) that may run at once; 0: the number of cores.
    pub auth_concurrency: usize,
    /// How long a sign-in waits for a verification slot before `503` + `Retry-After`.
    #[serde(with = "duration")]
    pub auth_queue_wait: Duration,
    /// How long a verified user name and password is remembered (per process; a changed
    /// password never matches); `0s`: every sign-in pays a verification.
    #[serde(with = "duration")]
    pub auth_cache_ttl: Duration,
    /// How long a browser stays signed in to the pages.
    #[serde(with = "duration")]
    pub session_ttl: Duration,
    #[serde(with = "duration")]
    pub shutdown_grace: Duration,
    /// After SIGTERM, how long new requests are still served while `/readyz` fails (the load
    /// balancer's deregistration delay): a push is several requests with packing in between.
    #[serde(with = "duration")]
    pub shutdown_blackout: Duration,
    /// Use SQLite although its folder is on a network file system (NFS, EFS, FUSE, SMB), where
    /// its locks do not hold; for people who know their file system does.
    pub allow_sqlite_on_network_fs: bool,
    /// How long a network file system client may show a stale view of the shared folder
    /// (NFS/EFS: `acdirmax`, 60 s): a repository changed through one replica is served by it
    /// for this long after the change (PostgreSQL only).
    #[serde(with = "duration")]
    pub shared_cache_window: Duration,
    /// The URL other replicas reach this one at (e.g. `http://10.0.1.23:8080`); unset: the
    /// address it listens on, an unspecified IP replaced by this host's own address.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub peer_url: Option<String>,
    pub log_format: LogFormat,
    /// How long `post-receive` waits for mirrors before telling the pusher they are queued.
    #[serde(with = "duration")]
    pub mirror_wait: Duration,
    /// Longest pause between retries of a failing mirror.
    #[serde(with = "duration")]
    pub mirror_retry_max: Duration,
    /// How long a mirror run's lease lasts without renewal (a crashed run is retried after it).
    #[serde(with = "duration")]
    pub mirror_lease: Duration,
    /// How often to look for mirror work queued by other processes or due for retry.
    #[serde(with = "duration")]
    pub mirror_poll: Duration,
    /// CodeCommit Git endpoint override: a VPC endpoint URL (or a test stand-in).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub codecommit_git_endpoint: Option<String>,
    /// Region for CodeCommit hosts that do not name one.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub aws_region: Option<String>,
    /// Maintain a repository this long after its last push (`0s`: not after pushes).
    #[serde(with = "duration")]
    pub maintenance_debounce: Duration,
    /// Maintain (full repack) every repository at least this often (`0s`: never on a schedule).
    #[serde(with = "duration")]
    pub maintenance_interval: Duration,
    /// Connections served at once; beyond, new ones get a short `503` and are closed.
    pub max_connections: usize,
    /// A request's headers must arrive within this; also ends idle keep-alive connections.
    #[serde(with = "duration")]
    pub http_header_timeout: Duration,
    /// git children (clones, fetches, pushes) that may run at once in this server ...
    pub git_max_processes: usize,
    /// ... and for one repository.
    pub git_max_processes_per_repo: usize,
    /// How long a git request waits for a free slot before `503` + `Retry-After`.
    #[serde(with = "duration")]
    pub git_queue_wait: Duration,
    /// A git request that moves no byte in either direction this long is stopped (`0s`: never).
    #[serde(with = "duration")]
    pub git_idle_timeout: Duration,
    /// The longest a single git request may run (`0s`: no limit).
    #[serde(with = "duration")]
    pub git_max_duration: Duration,
    /// Keep the push log this long (`0s`: forever); older pushes are pruned by maintenance.
    #[serde(with = "duration")]
    pub push_log_retention: Duration,
    /// Key for mirror passwords at rest (else `<data_dir>/secret.key`).
    #[serde(deserialize_with = "lenient_opt_string")]
    pub secret_key: Option<String>,
    /// Hosts (`jenkins.corp`, `*.corp.example`), addresses and networks (`10.1.0.0/16`), or
    /// `*`, that webhooks may reach; empty: none. Metadata addresses are always refused.
    #[serde(deserialize_with = "string_list")]
    pub trigger_allowed_targets: Vec<String>,
    /// Extra CA certificates (PEM) that webhook targets' certificates may chain to.
    #[serde(deserialize_with = "lenient_opt_string")]
    pub ca_bundle: Option<String>,
    /// How long one webhook request may take.
    #[serde(with = "duration")]
    pub trigger_timeout: Duration,
    /// Longest pause between retries of a failing trigger.
    #[serde(with = "duration")]
    pub trigger_retry_max: Duration,
    /// A delivery still failing this long after its push is given up (redeliver by hand).
    #[serde(with = "duration")]
    pub trigger_retry_for: Duration,
    /// Where clone packs are cached: local disk, never the shared repositories' folder
    /// (default: `kura-pack-cache` in the system's temporary folder).
    pub pack_cache_dir: Option<PathBuf>,
    /// The pack cache's size limit (`0`: no cache).
    #[serde(with = "size")]
    pub pack_cache_size: u64,
    /// Sign-in with the company directory (`[ldap]`); none: local accounts only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ldap: Option<LdapConfig>,
}

/// `[ldap]`: how to reach the directory and what its groups mean in Kura.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapConfig {
    /// `ldaps://host:636`, or `ldap://host:389` with `starttls`; several for failover.
    #[serde(deserialize_with = "string_list")]
    pub url: Vec<String>,
    #[serde(default)]
    pub starttls: bool,
    /// The directory's CA certificates (PEM); none: the system's roots.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub ca_bundle: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub bind_dn: String,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub bind_password: Option<String>,
    /// A file holding the service account's password (a trailing newline is ignored).
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub bind_password_file: Option<String>,
    #[serde(default, deserialize_with = "lenient_string")]
    pub user_base: String,
    /// With a `{login}` placeholder; none: the default for the directory's kind.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub user_filter: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub login_attribute: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub display_name_attribute: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub email_attribute: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub group_base: Option<String>,
    /// Members of this directory group (DN or CN) are site admins; none: Kura decides.
    #[serde(default, deserialize_with = "lenient_opt_string")]
    pub admin_group: Option<String>,
    /// `auto` (asks the directory), `ad` or `ldap`.
    #[serde(default)]
    pub kind: LdapKind,
    #[serde(default = "LdapConfig::default_sync", with = "duration")]
    pub sync_interval: Duration,
    /// For connecting and for each directory operation.
    #[serde(default = "LdapConfig::default_timeout", with = "duration")]
    pub timeout: Duration,
    /// How long a successful directory sign-in is remembered (git signs in on every request).
    #[serde(default = "LdapConfig::default_cache", with = "duration")]
    pub cache_ttl: Duration,
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<LdapGroup>,
}

/// `[[ldap.group]]`: members of the directory group `dn` (a DN or a CN) get `role` in the
/// Kura group `kura_group`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LdapGroup {
    pub dn: String,
    pub kura_group: String,
    pub role: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LdapKind {
    #[default]
    Auto,
    Ad,
    Ldap,
}

impl LdapConfig {
    fn default_sync() -> Duration {
        Duration::from_secs(15 * 60)
    }
    fn default_timeout() -> Duration {
        Duration::from_secs(5)
    }
    fn default_cache() -> Duration {
        Duration::from_secs(60)
    }

    /// The directory client's settings, with the service account's password read from its file.
    pub fn settings(&self) -> Result<kura_ldap::Settings, ConfigError> {
        let bind_password = match (&self.bind_password, &self.bind_password_file) {
            (Some(_), Some(_)) => {
                return Err(ConfigError::new(
                    "set ldap.bind_password or ldap.bind_password_file, not both",
                ))
            }
            (Some(p), None) => p.clone(),
            (None, Some(f)) => {
                let text = std::fs::read_to_string(f).map_err(|e| {
                    ConfigError::new(format!(
                        "cannot read ldap.bind_password_file {f}: {e}; give a readable file holding the service account's password"
                    ))
                })?;
                text.strip_suffix('\n')
                    .map(|t| t.strip_suffix('\r').unwrap_or(t))
                    .unwrap_or(&text)
                    .to_string()
            }
            (None, None) => {
                return Err(ConfigError::new(
                    "ldap.bind_password (or ldap.bind_password_file, or KURA_LDAP_BIND_PASSWORD) is missing: the directory's service account needs its password",
                ))
            }
        };
        let settings = kura_ldap::Settings {
            urls: self.url.clone(),
            starttls: self.starttls,
            ca_bundle: self
                .ca_bundle
                .as_deref()
                .filter(|c| !c.is_empty())
                .map(PathBuf::from),
            bind_dn: self.bind_dn.clone(),
            bind_password,
            user_base: self.user_base.clone(),
            user_filter: self.user_filter.clone().filter(|f| !f.is_empty()),
            login_attribute: self.login_attribute.clone().filter(|f| !f.is_empty()),
            display_name_attribute: self
                .display_name_attribute
                .clone()
                .filter(|f| !f.is_empty()),
            email_attribute: self.email_attribute.clone().filter(|f| !f.is_empty()),
            group_base: self.group_base.clone().filter(|f| !f.is_empty()),
            kind: match self.kind {
                LdapKind::Auto => kura_ldap::Kind::Auto,
                LdapKind::Ad => kura_ldap::Kind::ActiveDirectory,
                LdapKind::Ldap => kura_ldap::Kind::Ldap,
            },
            timeout: self.timeout,
        };
        settings.check().map_err(ConfigError::new)?;
        Ok(settings)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.settings()?;
        if let Some(ca) = self.ca_bundle.as_deref().filter(|c| !c.is_empty()) {
            if !Path::new(ca).is_file() {
                return Err(ConfigError::new(format!(
                    "ldap.ca_bundle {ca} is not a readable file: give the path of the directory's CA certificate (PEM)"
                )));
            }
        }
        for (what, d) in [
            ("ldap.sync_interval", self.sync_interval),
            ("ldap.timeout", self.timeout),
        ] {
            if d.is_zero() {
                return Err(ConfigError::new(format!("{what} must be longer than 0s")));
            }
        }
        for g in &self.groups {
            if g.dn.trim().is_empty() {
                return Err(ConfigError::new(
                    "an [[ldap.group]] has an empty dn: give the directory group's DN or CN",
                ));
            }
            crate::names::validate("group", &g.kura_group).map_err(|e| {
                ConfigError::new(format!(
                    "[[ldap.group]] {}: kura_group {:?}: {e}",
                    g.dn, g.kura_group
                ))
            })?;
            g.role
                .parse::<kura_db::Role>()
                .map_err(|e| ConfigError::new(format!("[[ldap.group]] {}: {e}", g.dn)))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            data_dir: PathBuf::from("./kura-data"),
            listen: "127.0.0.1:3000".into(),
            database_url: None,
            database_password: None,
            admin_password: None,
            public_url: None,
            allow_anonymous_read: true,
            allowed_cidrs: Vec::new(),
            trusted_proxies: Vec::new(),
            auth_max_failures: 10,
            auth_max_failures_per_user: 100,
            auth_concurrency: 0,
            auth_queue_wait: Duration::from_secs(5),
            auth_cache_ttl: Duration::from_secs(300),
            session_ttl: Duration::from_secs(7 * 24 * 3600),
            auth_failure_window: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(30),
            shutdown_blackout: Duration::from_secs(10),
            allow_sqlite_on_network_fs: false,
            shared_cache_window: Duration::from_secs(60),
            peer_url: None,
            log_format: LogFormat::Text,
            mirror_wait: Duration::from_secs(10),
            mirror_retry_max: Duration::from_secs(300),
            mirror_lease: Duration::from_secs(60),
            mirror_poll: Duration::from_secs(2),
            codecommit_git_endpoint: None,
            maintenance_debounce: Duration::from_secs(60),
            maintenance_interval: Duration::from_secs(24 * 3600),
            push_log_retention: Duration::from_secs(90 * 24 * 3600),
            max_connections: 4096,
            http_header_timeout: Duration::from_secs(30),
            git_max_processes: 64,
            git_max_processes_per_repo: 16,
            git_queue_wait: Duration::from_secs(10),
            git_idle_timeout: Duration::from_secs(60),
            git_max_duration: Duration::from_secs(2 * 3600),
            aws_region: None,
            secret_key: None,
            trigger_allowed_targets: Vec::new(),
            ca_bundle: None,
            trigger_timeout: Duration::from_secs(10),
            trigger_retry_max: Duration::from_secs(300),
            trigger_retry_for: Duration::from_secs(24 * 3600),
            pack_cache_dir: None,
            pack_cache_size: 2 << 30,
            ldap: None,
        }
    }
}

/// Flags given on the command line; they win over everything else.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(String);

impl ConfigError {
    pub fn new(msg: impl Into<String>) -> ConfigError {
        ConfigError(msg.into())
    }
}

impl Config {
    pub fn load(over: &Overrides) -> Result<Config, ConfigError> {
        let file = over
            .config_file
            .clone()
            .or_else(|| std::env::var_os("KURA_CONFIG").map(PathBuf::from));
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match &file {
            Some(path) if !path.exists() => {
                return Err(ConfigError(format!(
                    "the config file {} does not exist; create it or drop --config/KURA_CONFIG",
                    path.display()
                )))
            }
            Some(path) => fig = fig.merge(Toml::file(path)),
            None if Path::new("kura.toml").exists() => fig = fig.merge(Toml::file("kura.toml")),
            None => {}
        }
        // Every other `KURA_*` variable must be a setting: a misspelt one is an error.
        fig = fig.merge(Env::prefixed("KURA_").filter(|k| {
            !not_settings(k.as_str()) && !k.as_str().to_ascii_lowercase().starts_with("ldap_")
        }));
        // `KURA_LDAP_URL` is `ldap.url`, and so on.
        fig = fig.merge(Env::prefixed("KURA_LDAP_").map(|k| format!("ldap.{}", k.as_str()).into()));
        let mut cfg: Config = fig.extract().map_err(explain)?;
        if let Some(d) = &over.data_dir {
            cfg.data_dir = d.clone();
        }
        if let Some(l) = &over.listen {
            cfg.listen = l.clone();
        }
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        check_listen(&self.listen)?;
        if let Some(u) = self.peer_url.as_deref().filter(|u| !u.is_empty()) {
            check_http_url("peer_url", u, "http://10.0.1.23:8080")?;
        }
        if let Some(u) = self.public_url.as_deref().filter(|u| !u.is_empty()) {
            check_http_url("public_url", u, "https://git.corp.example")?;
        }
        if let Some(u) = self
            .codecommit_git_endpoint
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            check_http_url(
                "codecommit_git_endpoint",
                u,
                "https://git-codecommit.eu-west-1.amazonaws.com",
            )?;
        }
        let db = self.database_url();
        if self
            .database_password
            .as_deref()
            .is_some_and(|p| !p.is_empty())
            && !(db.starts_with("postgres://") || db.starts_with("postgresql://"))
        {
            return Err(ConfigError(
                "database_password is set but database_url is not a PostgreSQL URL: set database_url = postgres://USER@HOST:5432/DB, or drop database_password".into(),
            ));
        }
        if !["sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| db.starts_with(p))
        {
            return Err(ConfigError(format!(
                "database_url {} is neither SQLite nor PostgreSQL: write sqlite:///path/kura.db or postgres://user:password@host:5432/kura",
                kura_db::redact_url(&db)
            )));
        }
        if let Some(r) = self.aws_region.as_deref().filter(|r| !r.is_empty()) {
            if !r
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                return Err(ConfigError(format!(
                    "aws_region {r:?} is not a region name: write it as eu-west-1"
                )));
            }
        }
        for c in self.allowed_cidrs.iter().chain(&self.trusted_proxies) {
            parse_net(c).map_err(ConfigError)?;
        }
        if let Some(dir) = &self.pack_cache_dir {
            let abs = |p: &Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            if abs(dir).starts_with(abs(&self.data_dir).join("repositories")) {
                return Err(ConfigError(format!(
                    "pack_cache_dir {} is inside the repositories' folder: give a folder on local disk outside {}",
                    dir.display(),
                    self.data_dir.join("repositories").display()
                )));
            }
        }
        kura_mirror::trigger::AllowList::parse(&self.trigger_allowed_targets)
            .map_err(ConfigError)?;
        if let Some(ca) = self.ca_bundle.as_deref().filter(|c| !c.is_empty()) {
            if !Path::new(ca).is_file() {
                return Err(ConfigError(format!(
                    "ca_bundle {ca} is not a readable file: give the path of a PEM file of CA certificates"
                )));
            }
        }
        if self.trigger_timeout.is_zero() {
            return Err(ConfigError("trigger_timeout must be longer than 0s".into()));
        }
        if self.auth_max_failures == 0 {
            return Err(ConfigError("auth_max_failures must be at least 1".into()));
        }
        if let Some(l) = &self.ldap {
            l.validate()?;
        }
        Ok(())
    }

    /// The database URL, defaulting to SQLite in the data folder, with `database_password`
    /// filled in when the URL names none.
    pub fn database_url(&self) -> String {
        let url = match &self.database_url {
            Some(u) if !u.is_empty() => u.clone(),
            _ => return format!("sqlite://{}", self.data_dir.join("kura.db").display()),
        };
        let Some(pw) = self.database_password.as_deref().filter(|p| !p.is_empty()) else {
            return url;
        };
        match url::Url::parse(&url) {
            Ok(mut u) if u.password().is_none() => match u.set_password(Some(pw)) {
                Ok(()) => u.to_string(),
                Err(()) => url,
            },
            _ => url,
        }
    }

    /// The base URL of clone URLs in answers to a request: `public_url`, else the `Host` the
    /// client used (when it is a plain host[:port]), else `public_url()`.
    pub fn base_url_for(&self, host: Option<&str>) -> String {
        if let Some(u) = self.public_url.as_deref().filter(|u| !u.is_empty()) {
            return u.trim_end_matches('/').to_string();
        }
        match host {
            Some(h)
                if !h.is_empty()
                    && h.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:[]".contains(c)) =>
            {
                format!("http://{h}")
            }
            _ => self.public_url(),
        }
    }

    /// The base URL printed in clone URLs: `public_url`, else the address the server last
    /// listened on (it notes it in the data folder: the CLI may run without the server's
    /// `--listen` or environment), else `listen`. An unspecified address (`0.0.0.0`) becomes
    /// the machine's host name.
    pub fn public_url(&self) -> String {
        if let Some(u) = self.public_url.as_deref().filter(|u| !u.is_empty()) {
            return u.trim_end_matches('/').to_string();
        }
        let noted = std::fs::read_to_string(self.data_dir.join(LISTENING_FILE)).ok();
        let addr = noted
            .map(|n| n.trim().to_string())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| self.listen.clone());
        match addr.parse::<std::net::SocketAddr>() {
            Ok(a) if a.ip().is_unspecified() => {
                let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .map(|h| h.trim().to_string())
                    .unwrap_or_else(|_| "localhost".into());
                format!("http://{host}:{}", a.port())
            }
            _ => format!("http://{addr}"),
        }
    }

    /// Notes the address the server listens on, for `public_url` in the CLI.
    pub fn note_listening(&self, addr: std::net::SocketAddr) {
        if let Err(e) = std::fs::write(self.data_dir.join(LISTENING_FILE), format!("{addr}\n")) {
            tracing::warn!(error = %e, "cannot note the listening address in the data folder");
        }
    }

    /// TOML with secrets replaced, for `kura config`.
    pub fn redacted_toml(&self) -> String {
        let mut c = self.clone();
        c.database_url = Some(kura_db::redact_url(&self.database_url()));
        if c.admin_password.is_some() {
            c.admin_password = Some("***".into());
        }
        if c.database_password.is_some() {
            c.database_password = Some("***".into());
        }
        if c.secret_key.is_some() {
            c.secret_key = Some("***".into());
        }
        if let Some(l) = &mut c.ldap {
            if l.bind_password.is_some() {
                l.bind_password = Some("***".into());
            }
        }
        let mut out = toml::to_string(&c)
            .unwrap_or_else(|e| format!("# cannot render the configuration: {e}\n"));
        // Unset settings are not silent: say what happens without them.
        let unset = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
        let mut notes = Vec::new();
        if unset(&self.admin_password) {
            notes.push(
                "admin_password: a random one is printed once when serve creates the data folder",
            );
        }
        if unset(&self.public_url) {
            notes.push("public_url: clone URLs use the address kura serve listens on");
        }
        if unset(&self.secret_key) {
            notes.push("secret_key: mirror passwords are encrypted with <data_dir>/secret.key");
        }
        if unset(&self.aws_region) {
            notes.push("aws_region: AWS_REGION, for CodeCommit hosts that name no region");
        }
        if unset(&self.codecommit_git_endpoint) {
            notes.push("codecommit_git_endpoint: https://git-codecommit.REGION.amazonaws.com");
        }
        if unset(&self.ca_bundle) {
            notes.push("ca_bundle: webhook certificates are checked against the system's CAs only");
        }
        if self.ldap.is_none() {
            notes.push("[ldap]: local accounts only, no sign-in with the company directory");
        }
        if self.pack_cache_dir.is_none() && self.pack_cache_size > 0 {
            notes.push("pack_cache_dir: kura-pack-cache in the system's temporary folder");
        }
        if !notes.is_empty() {
            out.push_str("\n# not set:\n");
            for n in notes {
                out.push_str(&format!("#   {n}\n"));
            }
        }
        out
    }
}

pub use kura_proto::parse_net;

/// `listen` is `HOST:PORT`: an address (`0.0.0.0:3000`, `[::]:3000`) or a name (`localhost:3000`).
fn check_listen(listen: &str) -> Result<(), ConfigError> {
    let bad = || {
        ConfigError(format!(
            "listen {listen:?} is not an address with a port: write HOST:PORT, e.g. 127.0.0.1:3000 (this machine only) or 0.0.0.0:3000 (every interface)"
        ))
    };
    if listen.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let (host, port) = listen.rsplit_once(':').ok_or_else(bad)?;
    let name_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
    if !name_ok || port.parse::<u16>().is_err() {
        return Err(bad());
    }
    Ok(())
}

/// An `http(s)://host[:port][/path]` URL without credentials, query or fragment.
fn check_http_url(key: &str, value: &str, example: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError(format!("{key} {value:?} {why}: write it as {example}"));
    let u = url::Url::parse(value).map_err(|e| bad(&format!("is not a URL ({e})")))?;
    if !matches!(u.scheme(), "http" | "https") {
        return Err(bad("is not an http:// or https:// URL"));
    }
    if u.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !u.username().is_empty() || u.password().is_some() {
        return Err(bad("must not hold a user name or password"));
    }
    if u.query().is_some() || u.fragment().is_some() {
        return Err(bad("must not have a query or fragment"));
    }
    Ok(())
}

/// `KURA_*` variables that are not settings: read elsewhere in Kura (`KURA_CONFIG`, the log
/// filter `KURA_LOG`, what `kura serve` hands its hooks and credential helper) or reserved for
/// Kura's own test suite (`KURA_TEST_*`).
fn not_settings(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    [
        "config",
        "log",
        "mirror_username",
        "mirror_password",
        "mirror_url",
    ]
    .contains(&k.as_str())
        || k.starts_with("hook_")
        || k.starts_with("test_")
}

/// A figment error in words: where the value came from (the file or the variable), which
/// setting, what is wrong, and for an unknown setting the nearest known one.
fn explain(e: figment::Error) -> ConfigError {
    use figment::error::Kind;
    use figment::Source;
    let from_env = e
        .metadata
        .as_ref()
        .is_some_and(|m| m.name.contains("environment"));
    let file = e.metadata.as_ref().and_then(|m| match &m.source {
        Some(Source::File(p)) => Some(p.display().to_string()),
        _ => None,
    });
    let name = |path: &[String]| -> String {
        if from_env {
            format!("KURA_{}", path.join("_").to_ascii_uppercase())
        } else {
            path.join(".")
        }
    };
    let place = file.map(|f| format!("{f}: ")).unwrap_or_default();
    match &e.kind {
        Kind::UnknownField(field, known) => {
            let mut path = e.path.clone();
            if path.last() == Some(field) {
                path.pop();
            }
            let mut full = path.clone();
            full.push(field.clone());
            let nearest = known
                .iter()
                .map(|k| (strsim::jaro_winkler(field, k), *k))
                .filter(|(score, _)| *score > 0.8)
                .max_by(|a, b| a.0.total_cmp(&b.0))
                .map(|(_, k)| {
                    let mut p = path.clone();
                    p.push(k.to_string());
                    format!("; did you mean {}?", name(&p))
                })
                .unwrap_or_default();
            let what = if from_env {
                format!("the variable {} is not a Kura setting{nearest} (unset it, or see `kura config` for the settings)", name(&full))
            } else {
                format!(
                    "{} is not a Kura setting{nearest} (see `kura config` for the settings)",
                    name(&full)
                )
            };
            ConfigError(format!("{place}{what}"))
        }
        kind if !e.path.is_empty() => ConfigError(format!("{place}{}: {kind}", name(&e.path))),
        _ => ConfigError(format!("{place}{e}")),
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    S(String),
    I(i64),
    F(f64),
    B(bool),
}

impl Scalar {
    fn into_string(self) -> String {
        match self {
            Scalar::S(s) => s,
            Scalar::I(i) => i.to_string(),
            Scalar::F(f) => f.to_string(),
            Scalar::B(b) => b.to_string(),
        }
    }
}

/// Environment values look like numbers sometimes (a numeric password): keep them as text.
fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Scalar::deserialize(d)?.into_string())
}

fn lenient_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(Option::<Scalar>::deserialize(d)?.map(Scalar::into_string))
}

/// A list in TOML, or a comma-separated string in the environment.
fn string_list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum L {
        One(String),
        Many(Vec<String>),
    }
    Ok(match L::deserialize(d)? {
        L::One(s) => s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from)
            .collect(),
        L::Many(v) => v,
    })
}

/// `"30s"`, `"5m"`, `"24h"`: a unit is required (`kura_proto::parse_duration`).
mod duration {
    use super::Scalar;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&kura_proto::format_duration(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let text = match Scalar::deserialize(d)? {
            Scalar::S(s) => s,
            other => other.into_string(),
        };
        kura_proto::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

/// Sizes as `2GiB`, `500MiB`, `0` (bytesize's forms); printed in IEC units.
mod size {
    use super::Scalar;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(n: &u64, s: S) -> Result<S::Ok, S::Error> {
        let text = if *n == 0 {
            "0".to_string()
        } else {
            bytesize::ByteSize::b(*n).display().iec().to_string()
        };
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let text = match Scalar::deserialize(d)? {
            Scalar::S(s) => s,
            other => other.into_string(),
        };
        text.trim()
            .parse::<bytesize::ByteSize>()
            .map(|b| b.as_u64())
            .map_err(|e| {
                serde::de::Error::custom(format!(
                    "{text:?} is not a size ({e}): write it as 500MiB, 2GiB or 0"
                ))
            })
    }
}

impl Config {
    /// The pack cache's folder (see `pack_cache_dir`).
    pub fn pack_cache_dir(&self) -> PathBuf {
        self.pack_cache_dir
            .clone()
            .unwrap_or_else(|| std::env::temp_dir().join("kura-pack-cache"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_and_print() {
        #[derive(Deserialize, Serialize)]
        struct S {
            #[serde(with = "size")]
            n: u64,
        }
        for (text, n) in [
            ("2GiB", 2u64 << 30),
            ("500 MiB", 500 << 20),
            ("0", 0),
            ("1048576", 1 << 20),
        ] {
            let s: S = toml::from_str(&format!("n = {text:?}")).unwrap();
            assert_eq!(s.n, n, "{text}");
            let back: S = toml::from_str(&toml::to_string(&s).unwrap()).unwrap();
            assert_eq!(back.n, n);
        }
        let e = toml::from_str::<S>("n = \"lots\"")
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("write it as 500MiB"), "{e}");
    }

    #[test]
    fn durations_print_in_one_unit_and_read_back() {
        for (d, text) in [
            (90 * 86_400, "90d"),
            (7200, "2h"),
            (300, "5m"),
            (90, "90s"),
            (0, "0s"),
        ] {
            assert_eq!(kura_proto::format_duration(Duration::from_secs(d)), text);
            assert_eq!(
                humantime::parse_duration(text).unwrap(),
                Duration::from_secs(d)
            );
        }
    }

    #[test]
    fn redaction_hides_secrets() {
        let c = Config {
            database_url: Some("postgres://kura:hunter2@db/kura".into()),
            database_password: Some("pw-apart".into()),
            admin_password: Some("s3cret".into()),
            secret_key: Some("k3y".into()),
            ldap: Some(ldap_example()),
            ..Config::default()
        };
        let t = c.redacted_toml();
        assert!(
            !t.contains("hunter2")
                && !t.contains("s3cret")
                && !t.contains("k3y")
                && !t.contains("svc-pass")
                && !t.contains("pw-apart"),
            "{t}"
        );
        assert!(t.contains("postgres://kura:***@db/kura"), "{t}");
    }

    fn ldap_example() -> LdapConfig {
        let toml = r#"
            url = ["ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example:636"]
            bind_dn = "CN=kura-svc,OU=Services,DC=corp,DC=example"
            bind_password = "svc-pass"
            user_base = "OU=People,DC=corp,DC=example"
            admin_group = "kura-admins"
            [[group]]
            dn = "CN=payments-dev,OU=Groups,DC=corp,DC=example"
            kura_group = "payments"
            role = "write"
        "#;
        toml::from_str(toml).unwrap()
    }

    #[test]
    fn ldap_section_reads_with_defaults_and_checks() {
        let l = ldap_example();
        assert_eq!(l.sync_interval, Duration::from_secs(900));
        assert_eq!(l.timeout, Duration::from_secs(5));
        assert_eq!(l.groups.len(), 1);
        l.validate().unwrap();
        let s = l.settings().unwrap();
        assert_eq!(s.urls.len(), 2);
        assert_eq!(s.bind_password, "svc-pass");
        let mut bad = l.clone();
        bad.groups[0].role = "owner".into();
        assert!(bad.validate().unwrap_err().to_string().contains("owner"));
        let mut both = l.clone();
        both.bind_password_file = Some("/nonexistent".into());
        assert!(both
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not both"));
        let mut plain = l;
        plain.url = vec!["ldap://dc1.corp.example".into()];
        assert!(plain.validate().is_err(), "plain-text LDAP is refused");
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns figment::Error
    fn ldap_from_the_environment() {
        // figment::Jail isolates the environment and the working folder of this test.
        figment::Jail::expect_with(|jail| {
            jail.set_env("KURA_LDAP_URL", "ldaps://a.corp:636,ldaps://b.corp:636");
            jail.set_env("KURA_LDAP_BIND_DN", "kura-svc@corp.example");
            jail.create_file("pw", "from-a-file\n")?;
            jail.set_env("KURA_LDAP_BIND_PASSWORD_FILE", "pw");
            jail.set_env("KURA_LDAP_USER_BASE", "DC=corp,DC=example");
            jail.set_env("KURA_LDAP_SYNC_INTERVAL", "5m");
            let c = Config::load(&Overrides::default()).map_err(|e| e.to_string())?;
            let l = c.ldap.expect("an [ldap] section from the environment");
            assert_eq!(l.url, ["ldaps://a.corp:636", "ldaps://b.corp:636"]);
            assert_eq!(l.sync_interval, Duration::from_secs(300));
            assert_eq!(l.settings().unwrap().bind_password, "from-a-file");
            Ok(())
        });
    }

    #[allow(clippy::result_large_err)] // figment's Jail returns figment::Error
    fn load_err(
        jail_setup: impl FnOnce(&mut figment::Jail) -> figment::error::Result<()>,
    ) -> String {
        let mut out = String::new();
        figment::Jail::expect_with(|jail| {
            jail_setup(jail)?;
            out = Config::load(&Overrides::default())
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            Ok(())
        });
        out
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail returns figment::Error
    fn unknown_settings_are_refused_with_the_nearest_one() {
        let e = load_err(|j| {
            j.create_file("kura.toml", "lisen = \"127.0.0.1:3000\"\n")
                .map(|_| ())
        });
        assert!(
            e.contains("kura.toml: lisen is not a Kura setting; did you mean listen?"),
            "{e}"
        );
        let e = load_err(|j| {
            j.create_file(
                "kura.toml",
                "[ldap]\nurl = \"ldaps://a:636\"\nbind_pasword = \"x\"\n",
            )
            .map(|_| ())
        });
        assert!(
            e.contains("ldap.bind_pasword is not a Kura setting; did you mean ldap.bind_password?"),
            "{e}"
        );
        let e = load_err(|j| {
            j.set_env("KURA_LISEN", "127.0.0.1:3000");
            Ok(())
        });
        assert!(
            e.contains("the variable KURA_LISEN is not a Kura setting; did you mean KURA_LISTEN?"),
            "{e}"
        );
        let e = load_err(|j| {
            j.set_env("KURA_LDAP_BIND_PW", "x");
            Ok(())
        });
        assert!(e.contains("KURA_LDAP_BIND_PW is not a Kura setting"), "{e}");
        let e = load_err(|j| {
            j.set_env("KURA_NOTHING_LIKE_IT", "1");
            Ok(())
        });
        assert!(
            e.contains("KURA_NOTHING_LIKE_IT is not a Kura setting (unset it"),
            "{e}"
        );
        // read elsewhere or by the test suite: not settings, not errors
        let e = load_err(|j| {
            j.set_env("KURA_LOG", "debug");
            j.set_env("KURA_TEST_ANYTHING", "x");
            Ok(())
        });
        assert_eq!(e, "");
    }

    #[test]
    #[allow(clippy::result_large_err)]
    fn values_are_checked_before_anything_runs() {
        for (file, says) in [
            (
                "listen = 3000",
                "listen \"3000\" is not an address with a port",
            ),
            ("listen = \"localhost\"", "write HOST:PORT"),
            (
                "auth_failure_window = 5",
                "auth_failure_window: \"5\" has no unit: write 5s",
            ),
            ("session_ttl = \"-5d\"", "negative"),
            ("session_ttl = \"1000y\"", "longer than 3650d"),
            (
                "public_url = \"git.corp\"",
                "public_url \"git.corp\" is not a URL",
            ),
            (
                "public_url = \"ftp://git.corp\"",
                "not an http:// or https:// URL",
            ),
            (
                "database_url = \"mysql://x\"",
                "neither SQLite nor PostgreSQL",
            ),
            ("allow_anonymous_read = \"perhaps\"", "allow_anonymous_read"),
        ] {
            let e = load_err(|j| j.create_file("kura.toml", file).map(|_| ()));
            assert!(e.contains(says), "{file}: {e}");
        }
        let e = load_err(|j| {
            j.set_env("KURA_AUTH_FAILURE_WINDOW", "5");
            Ok(())
        });
        assert!(
            e.contains("KURA_AUTH_FAILURE_WINDOW: \"5\" has no unit"),
            "{e}"
        );
        let e = load_err(|j| {
            j.set_env("KURA_LISTEN", "localhost");
            Ok(())
        });
        assert!(e.contains("listen \"localhost\" is not an address"), "{e}");
        let ok = load_err(|j| {
            j.set_env("KURA_LISTEN", "localhost:3000");
            j.set_env("KURA_PUBLIC_URL", "https://git.corp.example/");
            Ok(())
        });
        assert_eq!(ok, "");
    }

    #[test]
    fn a_database_password_apart_fills_the_url() {
        let c = Config {
            database_url: Some("postgres://kura@db.internal:5432/kura?sslmode=require".into()),
            database_password: Some("p@ss/w:rd".into()),
            ..Config::default()
        };
        assert_eq!(
            c.database_url(),
            "postgres://kura:p%40ss%2Fw%3Ard@db.internal:5432/kura?sslmode=require"
        );
        c.validate().unwrap();
        let own = Config {
            database_url: Some("postgres://kura:own@db/kura".into()),
            ..c.clone()
        };
        assert_eq!(
            own.database_url(),
            "postgres://kura:own@db/kura",
            "the URL's own wins"
        );
        let sqlite = Config {
            database_url: None,
            ..c
        };
        assert!(sqlite
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not a PostgreSQL URL"));
    }

    #[test]
    fn nets_parse() {
        assert!(parse_net("10.0.0.0/8").is_ok());
        assert!(parse_net("127.0.0.1").is_ok());
        assert!(parse_net("::1").is_ok());
        assert!(parse_net("ten").is_err());
    }
}
