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

use ldap3::{ldap_escape, LdapError, Scope, SearchEntry};

use conn::Conn;

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
/// LDAP_CAP_ACTIVE_DIRECTORY_OID in the root DSE's supportedCapabilities.
const AD_CAPABILITY: &str = "1.2.840.113556.1.4.800";

const KIND_UNKNOWN: u8 = 0;
const KIND_AD: u8 = 1;
const KIND_LDAP: u8 = 2;

struct Inner {
    s: Settings,
    tls: Arc<rustls::ClientConfig>,
    /// The URL that answered last: the next call starts there.
    last_good: AtomicUsize,
    /// Told, or what the root DSE said once asked.
    kind: AtomicU8,
}

#[derive(Clone)]
pub struct Directory {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Directory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Directory")
            .field("urls", &self.inner.s.urls)
            .finish_non_exhaustive()
    }
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

/// A login worth asking the directory about: not empty, not huge, no control characters.
fn usable(login: &str) -> bool {
    !login.trim().is_empty() && login.len() <= MAX_LOGIN && !login.chars().any(char::is_control)
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

/// Names for the result codes a bind is likely to get.
fn rc_name(rc: u32) -> String {
    match rc {
        19 => "constraint violation".into(),
        48 => "inappropriate authentication".into(),
        49 => "invalid credentials".into(),
        50 => "insufficient access rights".into(),
        51 => "busy".into(),
        52 => "unavailable".into(),
        53 => "unwilling to perform".into(),
        rc => format!("code {rc}"),
    }
}

/// What AD's `data NNN` in a refused bind's message means.
fn ad_reason(text: &str) -> Option<(String, &'static str)> {
    let at = text.find("data ")?;
    let code: String = text[at + 5..]
        .chars()
        .take_while(char::is_ascii_hexdigit)
        .collect();
    let why = match code.to_ascii_lowercase().as_str() {
        "525" => "no such user",
        "52e" => "wrong password",
        "530" => "not allowed to sign in at this time",
        "531" => "not allowed to sign in from this workstation",
        "532" => "the password has expired",
        "533" => "the account is disabled",
        "701" => "the account has expired",
        "773" => "the password must be changed",
        "775" => "the account is locked out",
        _ => return None,
    };
    Some((code, why))
}

/// Why a bind was refused, for the trace: the code, AD's reason, the server's text.
fn bind_refusal(rc: u32, text: &str) -> String {
    let mut why = rc_name(rc);
    if let Some((code, reason)) = ad_reason(text) {
        why.push_str(&format!("; AD data {code}: {reason}"));
    } else if !text.trim().is_empty() {
        why.push_str(&format!(": {}", text.trim()));
    }
    why
}

impl Directory {
    /// Checks the settings and loads the TLS configuration (the `ca_bundle` PEM); errors are
    /// `Misconfigured` and name the setting. Makes no connection.
    pub fn new(settings: Settings) -> Result<Directory, DirError> {
        settings.check().map_err(DirError::Misconfigured)?;
        Self::build(settings)
    }

    fn build(settings: Settings) -> Result<Directory, DirError> {
        let tls = conn::tls_config(&settings).map_err(DirError::Misconfigured)?;
        let kind = match settings.kind {
            Kind::Auto => KIND_UNKNOWN,
            Kind::ActiveDirectory => KIND_AD,
            Kind::Ldap => KIND_LDAP,
        };
        Ok(Directory {
            inner: Arc::new(Inner {
                s: settings,
                tls,
                last_good: AtomicUsize::new(0),
                kind: AtomicU8::new(kind),
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
    async fn connect(&self, trace: &mut Trace) -> Result<Conn, DirError> {
        let s = &self.inner.s;
        let n = s.urls.len();
        let start = self.inner.last_good.load(Ordering::Relaxed) % n.max(1);
        let mut failures = Vec::new();
        for i in 0..n {
            let idx = (start + i) % n;
            let url = &s.urls[idx];
            match conn::open(url, s.starttls, &self.inner.tls, self.timeout()).await {
                Ok(ldap) => {
                    trace.step(format!("connect {url}: ok"));
                    if s.starttls && url.starts_with("ldap://") {
                        trace.step("StartTLS: ok");
                    }
                    let mut c = Conn {
                        ldap,
                        url: url.clone(),
                        timeout: self.timeout(),
                    };
                    match self.service_bind(&mut c, trace).await {
                        Ok(()) => {
                            self.inner.last_good.store(idx, Ordering::Relaxed);
                            return Ok(c);
                        }
                        // Connected but not answering (or busy): the next URL may do better.
                        Err(DirError::Unavailable(why)) => {
                            c.close().await;
                            failures.push(why);
                        }
                        Err(e) => {
                            c.close().await;
                            return Err(e);
                        }
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

    async fn service_bind(&self, c: &mut Conn, trace: &mut Trace) -> Result<(), DirError> {
        let s = &self.inner.s;
        let r = c
            .ldap
            .with_timeout(c.timeout)
            .simple_bind(&s.bind_dn, &s.bind_password)
            .await;
        let r = match r {
            Ok(r) => r,
            Err(e) => {
                let err = c.op_error("the service bind", &e);
                trace.step(format!("service bind as {}: {err}", s.bind_dn));
                return Err(err);
            }
        };
        match r.rc {
            0 => {
                trace.step(format!("service bind as {}: ok", s.bind_dn));
                Ok(())
            }
            rc => {
                trace.step(format!(
                    "service bind as {}: refused ({})",
                    s.bind_dn,
                    bind_refusal(rc, &r.text)
                ));
                Err(match rc {
                    49 => DirError::Misconfigured(format!(
                        "the service account ldap.bind_dn ({}) was refused by the directory: check ldap.bind_dn and the password",
                        s.bind_dn
                    )),
                    51 | 52 => DirError::Unavailable(format!(
                        "{}: the directory is {} (code {rc})",
                        c.url,
                        rc_name(rc)
                    )),
                    _ => DirError::Misconfigured(format!(
                        "the service account ldap.bind_dn ({}) could not bind: {}",
                        s.bind_dn,
                        bind_refusal(rc, &r.text)
                    )),
                })
            }
        }
    }

    /// Active Directory or not: told, or asked once from the root DSE.
    async fn is_ad(&self, c: &mut Conn, trace: &mut Trace) -> Result<bool, DirError> {
        let mut kind = self.inner.kind.load(Ordering::Relaxed);
        if kind == KIND_UNKNOWN {
            let res = c
                .ldap
                .with_timeout(c.timeout)
                .search(
                    "",
                    Scope::Base,
                    "(objectClass=*)",
                    vec!["supportedCapabilities", "defaultNamingContext"],
                )
                .await
                .map_err(|e| c.op_error("reading the root DSE", &e))?;
            let ad = res.0.into_iter().filter(|e| !e.is_ref()).any(|e| {
                SearchEntry::construct(e)
                    .attrs
                    .iter()
                    .filter(|(k, _)| k.eq_ignore_ascii_case("supportedCapabilities"))
                    .flat_map(|(_, v)| v)
                    .any(|c| c == AD_CAPABILITY)
            });
            kind = if ad { KIND_AD } else { KIND_LDAP };
            if res.1.rc == 0 {
                self.inner.kind.store(kind, Ordering::Relaxed);
            } else {
                // Not remembered: the next call asks again.
                trace.step(format!(
                    "root DSE: {} (set ldap.kind to say which directory this is)",
                    rc_name(res.1.rc)
                ));
            }
        }
        let ad = kind == KIND_AD;
        trace.step(format!(
            "directory kind: {}",
            if ad { "Active Directory" } else { "LDAP" }
        ));
        Ok(ad)
    }

    /// The one entry `user_filter` finds for `login` (groups not yet read).
    async fn find(
        &self,
        c: &mut Conn,
        login: &str,
        ad: bool,
        trace: &mut Trace,
    ) -> Result<Option<Person>, DirError> {
        let s = &self.inner.s;
        let template = s
            .user_filter
            .as_deref()
            .unwrap_or(if ad { AD_FILTER } else { LDAP_FILTER });
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
        let filter = user_filter(template, login);
        let mut attrs = vec![login_attr.clone()];
        attrs.extend(display_attrs.iter().cloned());
        attrs.push(email_attr.clone());
        if ad {
            attrs.push("userAccountControl".into());
        }
        let res = c
            .ldap
            .with_timeout(c.timeout)
            .search(&s.user_base, Scope::Subtree, &filter, attrs)
            .await
            .map_err(|e| match e {
                LdapError::FilterParsing => DirError::Misconfigured(format!(
                    "ldap.user_filter {template:?} is not a valid LDAP filter"
                )),
                e => c.op_error("the user search", &e),
            })?;
        match res.1.rc {
            // 10: a referral instead of entries; 4: a size limit (more than one entry anyway).
            0 | 4 | 10 => {}
            32 => {
                return Err(DirError::Misconfigured(format!(
                    "ldap.user_base {} does not exist in the directory",
                    s.user_base
                )))
            }
            rc => {
                return Err(DirError::Misconfigured(format!(
                    "the user search under ldap.user_base failed ({}{}); check ldap.user_filter and ldap.user_base",
                    rc_name(rc),
                    if res.1.text.is_empty() { String::new() } else { format!(": {}", res.1.text) }
                )))
            }
        }
        // Search references (AD returns some for its other partitions) are not entries.
        let mut entries: Vec<SearchEntry> = res
            .0
            .into_iter()
            .filter(|e| !e.is_ref() && !e.is_intermediate())
            .map(SearchEntry::construct)
            .collect();
        let entry = match entries.len() {
            0 => {
                trace.step(format!("search {filter} under {}: nobody", s.user_base));
                return Ok(None);
            }
            1 => entries.remove(0),
            n => {
                trace.step(format!(
                    "search {filter} under {}: {n} entries",
                    s.user_base
                ));
                return Err(DirError::Misconfigured(format!(
                    "ldap.user_filter matched {n} entries for this login; make it match one"
                )));
            }
        };
        trace.step(format!(
            "search {filter} under {}: found {}",
            s.user_base, entry.dn
        ));
        let disabled = ad
            && attr(&entry, "userAccountControl")
                .and_then(|v| v.trim().parse::<i64>().ok())
                .is_some_and(|uac| uac & 0x2 != 0);
        if disabled {
            trace.step("account: disabled in the directory (userAccountControl ACCOUNTDISABLE)");
        }
        Ok(Some(Person {
            login: attr(&entry, &login_attr).unwrap_or_else(|| login.to_string()),
            display_name: display_attrs.iter().find_map(|a| attr(&entry, a)),
            email: attr(&entry, &email_attr),
            disabled,
            groups: Vec::new(),
            dn: entry.dn,
        }))
    }

    /// Fills in `person.groups`; the connection must be bound as the service account.
    async fn read_groups(
        &self,
        c: &mut Conn,
        ad: bool,
        person: &mut Person,
        trace: &mut Trace,
    ) -> Result<(), DirError> {
        let s = &self.inner.s;
        let (base, key) = match &s.group_base {
            Some(b) => (b.as_str(), "ldap.group_base"),
            None => (s.user_base.as_str(), "ldap.user_base"),
        };
        person.groups = groups::of_user(c, ad, base, key, &person.dn, trace).await?;
        Ok(())
    }

    /// Search the user with the service account, then bind as the entry found.
    pub async fn sign_in(
        &self,
        login: &str,
        password: &str,
        trace: &mut Trace,
    ) -> Result<SignIn, DirError> {
        // An empty password is an anonymous bind, which directories accept.
        if password.is_empty() {
            trace.step("refused before asking the directory: the password is empty");
            return Ok(SignIn::Wrong);
        }
        if !usable(login) {
            trace.step("refused before asking the directory: the login is empty, too long or has control characters");
            return Ok(SignIn::Wrong);
        }
        let mut c = self.connect(trace).await?;
        let r = self.sign_in_on(&mut c, login, password, trace).await;
        c.close().await;
        r
    }

    async fn sign_in_on(
        &self,
        c: &mut Conn,
        login: &str,
        password: &str,
        trace: &mut Trace,
    ) -> Result<SignIn, DirError> {
        let ad = self.is_ad(c, trace).await?;
        let login = filter_login(login, ad);
        if login.is_empty() {
            trace.step("refused: nothing after the DOMAIN\\ prefix");
            return Ok(SignIn::Wrong);
        }
        let Some(mut person) = self.find(c, login, ad, trace).await? else {
            return Ok(SignIn::Wrong);
        };
        if person.disabled {
            // No user bind: AD refuses disabled accounts anyway; the groups are for the record.
            self.read_groups(c, ad, &mut person, trace).await?;
            return Ok(SignIn::Disabled(person));
        }
        let r = c
            .ldap
            .with_timeout(c.timeout)
            .simple_bind(&person.dn, password)
            .await
            .map_err(|e| c.op_error("the user bind", &e))?;
        match r.rc {
            0 => trace.step("user bind: ok"),
            51 | 52 => {
                trace.step(format!("user bind: {}", bind_refusal(r.rc, &r.text)));
                return Err(DirError::Unavailable(format!(
                    "{}: the directory is {} (code {})",
                    c.url,
                    rc_name(r.rc),
                    r.rc
                )));
            }
            rc => {
                trace.step(format!(
                    "user bind: refused ({})",
                    bind_refusal(rc, &r.text)
                ));
                tracing::debug!(rc, text = %r.text, dn = %person.dn, "directory refused the user bind");
                return Ok(SignIn::Wrong);
            }
        }
        // The person may not be allowed to search groups: back to the service account.
        self.service_bind(c, trace).await?;
        self.read_groups(c, ad, &mut person, trace).await?;
        Ok(SignIn::Ok(person))
    }

    /// The entry of `login` without a user bind (the periodic sync); `None`: not found.
    pub async fn lookup(&self, login: &str, trace: &mut Trace) -> Result<Option<Person>, DirError> {
        if !usable(login) {
            trace.step("not asked: the login is empty, too long or has control characters");
            return Ok(None);
        }
        let mut c = self.connect(trace).await?;
        let r = self.lookup_on(&mut c, login, trace).await;
        c.close().await;
        r
    }

    async fn lookup_on(
        &self,
        c: &mut Conn,
        login: &str,
        trace: &mut Trace,
    ) -> Result<Option<Person>, DirError> {
        let ad = self.is_ad(c, trace).await?;
        let login = filter_login(login, ad);
        if login.is_empty() {
            return Ok(None);
        }
        let Some(mut person) = self.find(c, login, ad, trace).await? else {
            return Ok(None);
        };
        self.read_groups(c, ad, &mut person, trace).await?;
        Ok(Some(person))
    }

    /// Connect and bind the service account; the URL that answered.
    pub async fn health(&self) -> Result<String, DirError> {
        let mut trace = Trace::default();
        let c = self.connect(&mut trace).await?;
        let url = c.url.clone();
        c.close().await;
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
        assert_eq!(
            user_filter("(|(a={login})(b={login}))", "x"),
            "(|(a=x)(b=x))"
        );
        assert_eq!(
            user_filter(LDAP_FILTER, "a\\b"),
            "(&(objectClass=inetOrgPerson)(uid=a\\5cb))"
        );
        assert_eq!(filter_login("CORP\\alice", true), "alice");
        assert_eq!(
            filter_login("alice@corp.example", true),
            "alice@corp.example"
        );
        assert_eq!(filter_login("CORP\\alice", false), "CORP\\alice");
    }

    #[tokio::test]
    async fn empty_password_and_bad_logins_never_reach_the_network() {
        let d = Directory::new(settings(vec![format!(
            "ldaps://127.0.0.1:{}",
            closed_port()
        )]))
        .unwrap();
        for (login, pw) in [
            ("alice", ""),
            ("", "pw"),
            ("a\u{0}b", "pw"),
            (&*"a".repeat(300), "pw"),
        ] {
            let mut t = Trace::default();
            let r = d.sign_in(login, pw, &mut t).await.unwrap();
            assert!(matches!(r, SignIn::Wrong), "{login:?}");
            assert!(
                t.steps.iter().all(|s| !s.starts_with("connect")),
                "{:?}",
                t.steps
            );
        }
    }

    #[tokio::test]
    async fn unreachable_urls_are_named_in_the_error() {
        let (a, b) = (closed_port(), closed_port());
        let urls = vec![
            format!("ldaps://127.0.0.1:{a}"),
            format!("ldaps://127.0.0.1:{b}"),
        ];
        let d = Directory::new(settings(urls)).unwrap();
        let started = Instant::now();
        let mut t = Trace::default();
        let e = d.sign_in("alice", "pw", &mut t).await.unwrap_err();
        let DirError::Unavailable(msg) = e else {
            panic!("{e:?}")
        };
        assert!(
            msg.contains(&a.to_string()) && msg.contains(&b.to_string()),
            "{msg}"
        );
        assert_eq!(t.steps.len(), 2, "{:?}", t.steps);
        assert!(started.elapsed() < Duration::from_secs(10));
        assert!(d.health().await.is_err());
    }

    #[test]
    fn refused_binds_explain_ad_data_codes() {
        let text = "80090308: LdapErr: DSID-0C09041C, comment: AcceptSecurityContext error, data 773, v4563";
        assert_eq!(
            bind_refusal(49, text),
            "invalid credentials; AD data 773: the password must be changed"
        );
        assert_eq!(
            bind_refusal(53, "unwilling"),
            "unwilling to perform: unwilling"
        );
        assert_eq!(bind_refusal(49, ""), "invalid credentials");
        assert!(!usable(""));
        assert!(!usable("   "));
        assert!(!usable("al\nice"));
        assert!(usable("CORP\\alice"));
    }

    /// A loopback LDAP server answering each bind with the next of `rcs` (the last one
    /// repeating); `None` accepts and never answers. Counts connections.
    async fn fake_ldap(rcs: Option<Vec<u8>>) -> (String, Arc<AtomicUsize>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("ldap://127.0.0.1:{}", l.local_addr().unwrap().port());
        let conns = Arc::new(AtomicUsize::new(0));
        let counter = conns.clone();
        tokio::spawn(async move {
            let binds = Arc::new(AtomicUsize::new(0));
            loop {
                let Ok((mut s, _)) = l.accept().await else {
                    return;
                };
                counter.fetch_add(1, Ordering::SeqCst);
                let (rcs, binds) = (rcs.clone(), binds.clone());
                tokio::spawn(async move {
                    let Some(rcs) = rcs else {
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        drop(s);
                        return;
                    };
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 4096];
                    loop {
                        match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                        while let Some((len, id, op)) = ber_message(&buf) {
                            buf.drain(..len);
                            if op != 0x60 {
                                return; // unbind, or anything this fake does not speak
                            }
                            let k = binds.fetch_add(1, Ordering::SeqCst).min(rcs.len() - 1);
                            let mut out = vec![0x30, (id.len() + 9) as u8];
                            out.extend_from_slice(&id);
                            out.extend_from_slice(&[
                                0x61, 0x07, 0x0a, 0x01, rcs[k], 0x04, 0x00, 0x04, 0x00,
                            ]);
                            if s.write_all(&out).await.is_err() {
                                return;
                            }
                        }
                    }
                });
            }
        });
        (url, conns)
    }

    /// One whole LDAPMessage at the start of `buf`: its length, messageID TLV and op tag.
    fn ber_message(buf: &[u8]) -> Option<(usize, Vec<u8>, u8)> {
        if buf.len() < 2 {
            return None;
        }
        let (len, hdr) = if buf[1] < 0x80 {
            (buf[1] as usize, 2)
        } else {
            let k = (buf[1] & 0x7f) as usize;
            let bytes = buf.get(2..2 + k)?;
            (
                bytes.iter().fold(0usize, |a, &b| (a << 8) | b as usize),
                2 + k,
            )
        };
        let body = buf.get(hdr..hdr + len)?;
        let id_len = body[1] as usize;
        Some((hdr + len, body[..2 + id_len].to_vec(), body[2 + id_len]))
    }

    fn plain(urls: Vec<String>, timeout: Duration) -> Directory {
        // ldap:// without StartTLS: check() refuses it, the fakes speak no TLS.
        Directory::build(Settings {
            timeout,
            ..settings(urls)
        })
        .unwrap()
    }

    #[tokio::test]
    async fn failover_starts_at_the_url_that_answered_last() {
        let dead = format!("ldaps://127.0.0.1:{}", closed_port());
        let (good, conns) = fake_ldap(Some(vec![0])).await;
        let d = plain(vec![dead.clone(), good.clone()], Duration::from_secs(2));
        assert_eq!(d.health().await.unwrap(), good);
        assert_eq!(d.inner.last_good.load(Ordering::SeqCst), 1);
        let mut t = Trace::default();
        let c = d.connect(&mut t).await.unwrap();
        c.close().await;
        assert_eq!(t.steps[0], format!("connect {good}: ok"), "{:?}", t.steps);
        assert!(t.steps.iter().all(|s| !s.contains(&dead)), "{:?}", t.steps);
        assert_eq!(conns.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_busy_directory_passes_to_the_next_url() {
        let (busy, _) = fake_ldap(Some(vec![51])).await;
        let (good, _) = fake_ldap(Some(vec![0])).await;
        let d = plain(vec![busy, good.clone()], Duration::from_secs(2));
        assert_eq!(d.health().await.unwrap(), good);
    }

    #[tokio::test]
    async fn a_refused_service_account_is_a_configuration_error() {
        let (refusing, _) = fake_ldap(Some(vec![49])).await;
        let (good, good_conns) = fake_ldap(Some(vec![0])).await;
        let d = plain(vec![refusing, good], Duration::from_secs(2));
        let mut t = Trace::default();
        let e = d.sign_in("alice", "alice-pw", &mut t).await.unwrap_err();
        let DirError::Misconfigured(m) = e else {
            panic!("{e:?}")
        };
        assert!(m.contains("ldap.bind_dn") && !m.contains("svc-pass"), "{m}");
        // The same account would be refused by the other servers too.
        assert_eq!(good_conns.load(Ordering::SeqCst), 0);
        let all = t.steps.join("\n");
        assert!(all.contains("refused (invalid credentials)"), "{all}");
        assert!(
            !all.contains("svc-pass") && !all.contains("alice-pw"),
            "{all}"
        );
    }

    #[tokio::test]
    async fn a_directory_that_never_answers_times_out() {
        let (silent, _) = fake_ldap(None).await;
        let d = plain(vec![silent.clone()], Duration::from_millis(300));
        let started = Instant::now();
        let e = d.lookup("alice", &mut Trace::default()).await.unwrap_err();
        let DirError::Unavailable(m) = e else {
            panic!("{e:?}")
        };
        assert!(
            m.contains(&silent) && m.contains("timed out after 0.3s"),
            "{m}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_missing_ca_bundle_is_a_configuration_error() {
        let s = Settings {
            ca_bundle: Some("/nonexistent/ca.pem".into()),
            ..settings(vec!["ldaps://127.0.0.1:636".into()])
        };
        let Err(DirError::Misconfigured(m)) = Directory::new(s) else {
            panic!()
        };
        assert!(m.contains("ldap.ca_bundle"), "{m}");
    }
}
