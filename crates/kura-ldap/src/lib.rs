//! The directory client: signs people in against Active Directory or OpenLDAP (search with a
//! read-only service account, then bind as the entry found), reads their groups (nested ones
//! too), and writes every step into a `Trace` for `kura ldap test`. It never reads or compares
//! password hashes, and never puts a password in a message, a trace or a log.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod conn;
mod dn;
mod groups;
mod settings;

use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ldap3::{ldap_escape, Ldap, LdapError, Scope, SearchEntry};

pub use dn::{names_group, normalize_dn};
pub use settings::{Kind, Settings, AD_FILTER, LDAP_FILTER};

/// A person as the directory describes them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Person {
    /// As the directory returned it.
    pub dn: String,
    /// The login attribute's value (sAMAccountName / uid) as stored.
    pub login: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    /// AD: userAccountControl has ACCOUNTDISABLE (0x2).
    pub disabled: bool,
    /// DNs of every group the person is in, directly or nested.
    pub groups: Vec<String>,
}

#[derive(Debug)]
pub enum SignIn {
    Ok(Person),
    /// Wrong password, unknown login, or refused before asking (empty password).
    Wrong,
    Disabled(Person),
}

#[derive(Debug, thiserror::Error)]
pub enum DirError {
    /// No URL answered in time (or TLS failed on each); names each URL and why.
    #[error("{0}")]
    Unavailable(String),
    /// The settings do not work with this directory.
    #[error("{0}")]
    Misconfigured(String),
}

/// What the client did, step by step, in words.
#[derive(Default, Debug)]
pub struct Trace {
    pub steps: Vec<String>,
}

impl Trace {
    pub fn step(&mut self, s: impl Into<String>) {
        let s = s.into();
        tracing::debug!(step = %s, "directory");
        self.steps.push(s);
    }
}

/// The longest login accepted (AD's UPNs are far shorter).
const MAX_LOGIN: usize = 256;

const KIND_UNKNOWN: u8 = 0;
const KIND_AD: u8 = 1;
const KIND_LDAP: u8 = 2;

struct Inner {
    s: Settings,
    tls: Arc<rustls::ClientConfig>,
    /// The URL that answered last: the next call starts there.
    last_good: AtomicUsize,
    /// What the root DSE said, once asked.
    detected: AtomicU8,
}

#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

pub(crate) fn op_error(e: &LdapError, timeout: Duration) -> DirError {
    DirError::Unavailable(format!("the directory stopped answering: {}", conn::describe(e, timeout)))
}

/// The attribute's first value, whatever the case of its name in the answer.
fn attr(entry: &SearchEntry, name: &str) -> Option<String> {
    entry
        .attrs
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| v.first().cloned())
        .filter(|v| !v.is_empty())
}

/// The login as the filter gets it: on AD a `DOMAIN\` prefix is dropped.
fn filter_login(login: &str, ad: bool) -> &str {
    if ad {
        login.rsplit('\\').next().unwrap_or(login)
    } else {
        login
    }
}

/// The user filter with the login escaped per RFC 4515 (`*)(uid=*` matches nobody).
fn user_filter(template: &str, login: &str) -> String {
    template.replace("{login}", &ldap_escape(login))
}

impl Directory {
    pub fn new(settings: Settings) -> Result<Directory, DirError> {
        settings.check().map_err(DirError::Misconfigured)?;
        let tls = conn::tls_config(&settings).map_err(DirError::Misconfigured)?;
        let detected = match settings.kind {
            Kind::Auto => KIND_UNKNOWN,
            Kind::ActiveDirectory => KIND_AD,
            Kind::Ldap => KIND_LDAP,
        };
        Ok(Directory {
            inner: Arc::new(Inner {
                s: settings,
                tls,
                last_good: AtomicUsize::new(0),
                detected: AtomicU8::new(detected),
            }),
        })
    }

    pub fn settings(&self) -> &Settings {
        &self.inner.s
    }

    fn timeout(&self) -> Duration {
        self.inner.s.timeout
    }

    /// A connection bound as the service account, trying each URL from the last good one.
    async fn connect(&self, trace: &mut Trace) -> Result<(Ldap, String), DirError> {
        let s = &self.inner.s;
        let n = s.urls.len();
        let start = self.inner.last_good.load(Ordering::Relaxed) % n.max(1);
        let mut failures = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let url = &s.urls[idx];
            match conn::open(url, s.starttls, &self.inner.tls, self.timeout()).await {
                Ok(mut ldap) => {
                    trace.step(format!(
                        "connect {url}: ok{}",
                        if s.starttls { " (StartTLS)" } else { "" }
                    ));
                    match self.service_bind(&mut ldap, trace).await {
                        Ok(()) => {
                            self.inner.last_good.store(idx, Ordering::Relaxed);
                            return Ok((ldap, url.clone()));
                        }
                        // A directory that accepted the connection but hangs: try the next.
                        Err(DirError::Unavailable(why)) => {
                            trace.step(format!("service bind on {url}: {why}"));
                            failures.push(format!("{url}: {why}"));
                        }
                        Err(e) => return Err(e),
                    }
                }
                Err(why) => {
                    trace.step(format!("connect {url}: failed ({why})"));
                    failures.push(format!("{url}: {why}"));
                }
            }
        }
        Err(DirError::Unavailable(format!(
            "could not reach the directory: {}",
            failures.join("; ")
        )))
    }

    async fn service_bind(&self, ldap: &mut Ldap, trace: &mut Trace) -> Result<(), DirError> {
        let s = &self.inner.s;
        let r = ldap
            .with_timeout(self.timeout())
            .simple_bind(&s.bind_dn, &s.bind_password)
            .await
            .map_err(|e| op_error(&e, self.timeout()))?;
        match r.rc {
            0 => {
                trace.step(format!("service bind as {}: ok", s.bind_dn));
                Ok(())
            }
            49 => {
                trace.step(format!("service bind as {}: refused", s.bind_dn));
                Err(DirError::Misconfigured(format!(
                    "the service account ldap.bind_dn ({}) was refused by the directory: check ldap.bind_dn and its password",
                    s.bind_dn
                )))
            }
            rc => Err(DirError::Misconfigured(format!(
                "the service account's bind failed (code {rc}: {})",
                r.text
            ))),
        }
    }

    /// Active Directory or not: told, or asked once from the root DSE.
    async fn is_ad(&self, ldap: &mut Ldap, trace: &mut Trace) -> Result<bool, DirError> {
        let known = self.inner.detected.load(Ordering::Relaxed);
        if known != KIND_UNKNOWN {
            return Ok(known == KIND_AD);
        }
        let res = ldap
            .with_timeout(self.timeout())
            .search("", Scope::Base, "(objectClass=*)", vec!["supportedCapabilities"])
            .await
            .map_err(|e| op_error(&e, self.timeout()))?;
        let ad = res.0.into_iter().filter(|e| !e.is_ref()).any(|e| {
            SearchEntry::construct(e)
                .attrs
                .iter()
                .filter(|(k, _)| k.eq_ignore_ascii_case("supportedCapabilities"))
                .flat_map(|(_, v)| v)
                .any(|c| c == "1.2.840.113556.1.4.800")
        });
        trace.step(format!(
            "directory kind: {}",
            if ad { "Active Directory" } else { "LDAP" }
        ));
        self.inner
            .detected
            .store(if ad { KIND_AD } else { KIND_LDAP }, Ordering::Relaxed);
        Ok(ad)
    }

    /// The one entry `user_filter` finds for `login`, with its groups.
    async fn find(
        &self,
        ldap: &mut Ldap,
        login: &str,
        trace: &mut Trace,
    ) -> Result<Option<Person>, DirError> {
        let s = &self.inner.s;
        let ad = self.is_ad(ldap, trace).await?;
        let template = s
            .user_filter
            .clone()
            .unwrap_or_else(|| if ad { AD_FILTER } else { LDAP_FILTER }.to_string());
        let login_attr = s
            .login_attribute
            .clone()
            .unwrap_or_else(|| if ad { "sAMAccountName" } else { "uid" }.to_string());
        let display_attrs: Vec<String> = match &s.display_name_attribute {
            Some(a) => vec![a.clone()],
            None if ad => vec!["displayName".into()],
            None => vec!["displayName".into(), "cn".into()],
        };
        let email_attr = s.email_attribute.clone().unwrap_or_else(|| "mail".into());
        let filter = user_filter(&template, filter_login(login, ad));
        let mut attrs = vec![login_attr.clone(), email_attr.clone(), "userAccountControl".into()];
        attrs.extend(display_attrs.iter().cloned());
        let res = ldap
            .with_timeout(self.timeout())
            .search(&s.user_base, Scope::Subtree, &filter, attrs)
            .await
            .map_err(|e| op_error(&e, self.timeout()))?;
        match res.1.rc {
            // 10: a referral instead of entries (a base outside the directory's naming contexts)
            0 | 10 => {}
            32 => {
                return Err(DirError::Misconfigured(format!(
                    "ldap.user_base {} does not exist in the directory",
                    s.user_base
                )))
            }
            rc => {
                return Err(DirError::Misconfigured(format!(
                    "the user search failed (code {rc}: {}); check ldap.user_filter and ldap.user_base",
                    res.1.text
                )))
            }
        }
        // Search references (AD returns some for its other partitions) are not entries.
        let entries: Vec<SearchEntry> = res
            .0
            .into_iter()
            .filter(|e| !e.is_ref())
            .map(SearchEntry::construct)
            .collect();
        let entry = match entries.len() {
            0 => {
                trace.step(format!("search {filter} under {}: nobody", s.user_base));
                return Ok(None);
            }
            1 => entries.into_iter().next().ok_or_else(|| DirError::Misconfigured("empty search result".into()))?,
            n => {
                trace.step(format!("search {filter} under {}: {n} entries", s.user_base));
                return Err(DirError::Misconfigured(format!(
                    "ldap.user_filter matched {n} entries for this login; make it match one"
                )));
            }
        };
        trace.step(format!("search {filter} under {}: found {}", s.user_base, entry.dn));
        let disabled = ad
            && attr(&entry, "userAccountControl")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|uac| uac & 0x2 != 0);
        if disabled {
            trace.step("account: disabled in the directory (userAccountControl ACCOUNTDISABLE)");
        }
        let base = s.group_base.clone().unwrap_or_else(|| s.user_base.clone());
        let groups = groups::of_user(ldap, ad, &base, &entry.dn, self.timeout(), trace).await?;
        Ok(Some(Person {
            login: attr(&entry, &login_attr).unwrap_or_else(|| filter_login(login, ad).to_string()),
            display_name: display_attrs.iter().find_map(|a| attr(&entry, a)),
            email: attr(&entry, &email_attr),
            disabled,
            groups,
            dn: entry.dn,
        }))
    }

    /// Search the user with the service account, then bind as the entry found.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        trace: &mut Trace,
    ) -> Result<SignIn, DirError> {
        // An empty password would be an anonymous bind, which directories accept.
        if password.is_empty() {
            trace.step("refused before asking the directory: the password is empty");
            return Ok(SignIn::Wrong);
        }
        if login.trim().is_empty() || login.len() > MAX_LOGIN || login.chars().any(char::is_control) {
            trace.step("refused before asking the directory: the login is empty, too long or has control characters");
            return Ok(SignIn::Wrong);
        }
        let (mut ldap, _) = self.connect(trace).await?;
        let r = self.sign_in_on(&mut ldap, login, password, trace).await;
        let _ = ldap.unbind().await;
        r
    }

    async fn sign_in_on(
        &self,
        ldap: &mut Ldap,
        login: &str,
        password: &str,
        trace: &mut Trace,
    ) -> Result<SignIn, DirError> {
        let Some(person) = self.find(ldap, login, trace).await? else {
            return Ok(SignIn::Wrong);
        };
        if person.disabled {
            return Ok(SignIn::Disabled(person));
        }
        let r = ldap
            .with_timeout(self.timeout())
            .simple_bind(&person.dn, password)
            .await
            .map_err(|e| op_error(&e, self.timeout()))?;
        match r.rc {
            0 => {
                trace.step("user bind: ok");
                Ok(SignIn::Ok(person))
            }
            rc => {
                let why = if rc == 49 { "invalid credentials".to_string() } else { format!("code {rc}") };
                let detail = if r.text.is_empty() { String::new() } else { format!(": {}", r.text) };
                trace.step(format!("user bind: refused ({why}{detail})"));
                Ok(SignIn::Wrong)
            }
        }
    }

    /// The entry of `login` without a user bind (the periodic sync); `None`: not found.
    pub async fn lookup(&self, login: &str, trace: &mut Trace) -> Result<Option<Person>, DirError> {
        let (mut ldap, _) = self.connect(trace).await?;
        let r = self.find(&mut ldap, login, trace).await;
        let _ = ldap.unbind().await;
        r
    }

    /// Connect and bind the service account; the URL that answered.
    pub async fn health(&self) -> Result<String, DirError> {
        let mut trace = Trace::default();
        let (mut ldap, url) = self.connect(&mut trace).await?;
        let _ = ldap.unbind().await;
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    fn closed_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }

    fn settings(urls: Vec<String>) -> Settings {
        Settings {
            urls,
            starttls: false,
            ca_bundle: None,
            bind_dn: "cn=svc,dc=test".into(),
            bind_password: "svc-pass".into(),
            user_base: "dc=test".into(),
            user_filter: None,
            login_attribute: None,
            display_name_attribute: None,
            email_attribute: None,
            group_base: None,
            kind: Kind::Ldap,
            timeout: Duration::from_secs(2),
        }
    }

    #[test]
    fn logins_are_escaped_into_the_filter() {
        assert_eq!(
            user_filter(LDAP_FILTER, "*)(uid=*"),
            "(&(objectClass=inetOrgPerson)(uid=\\2a\\29\\28uid=\\2a))"
        );
        assert_eq!(user_filter("(|(a={login})(b={login}))", "x"), "(|(a=x)(b=x))");
        assert_eq!(user_filter(LDAP_FILTER, "a\\b"), "(&(objectClass=inetOrgPerson)(uid=a\\5cb))");
        assert_eq!(filter_login("CORP\\alice", true), "alice");
        assert_eq!(filter_login("alice@corp.example", true), "alice@corp.example");
        assert_eq!(filter_login("CORP\\alice", false), "CORP\\alice");
    }

    #[tokio::test]
    async fn empty_password_and_bad_logins_never_reach_the_network() {
        let d = Directory::new(settings(vec![format!("ldaps://127.0.0.1:{}", closed_port())])).unwrap();
        for (login, pw) in [("alice", ""), ("", "pw"), ("a\u{0}b", "pw"), (&*"a".repeat(300), "pw")] {
            let mut t = Trace::default();
            let r = d.sign_in(login, pw, &mut t).await.unwrap();
            assert!(matches!(r, SignIn::Wrong), "{login:?}");
            assert!(t.steps.iter().all(|s| !s.starts_with("connect")), "{:?}", t.steps);
        }
    }

    #[tokio::test]
    async fn unreachable_urls_are_named_in_the_error() {
        let (a, b) = (closed_port(), closed_port());
        let urls = vec![format!("ldaps://127.0.0.1:{a}"), format!("ldaps://127.0.0.1:{b}")];
        let d = Directory::new(settings(urls)).unwrap();
        let started = Instant::now();
        let mut t = Trace::default();
        let e = d.sign_in("alice", "pw", &mut t).await.unwrap_err();
        let DirError::Unavailable(msg) = e else { panic!("{e:?}") };
        assert!(msg.contains(&a.to_string()) && msg.contains(&b.to_string()), "{msg}");
        assert_eq!(t.steps.len(), 2, "{:?}", t.steps);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(d.health().await.is_err());
    }

    #[test]
    fn a_missing_ca_bundle_is_a_configuration_error() {
        let s = Settings {
            ca_bundle: Some("/nonexistent/ca.pem".into()),
            ..settings(vec!["ldaps://127.0.0.1:636".into()])
        };
        let Err(DirError::Misconfigured(m)) = Directory::new(s) else { panic!() };
        assert!(m.contains("ldap.ca_bundle"), "{m}");
    }
}
