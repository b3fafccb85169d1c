//! What the directory client is told, and the checks that refuse settings that cannot work
//! or would send passwords in plain text. Messages name the `ldap.*` key to fix.

use std::path::PathBuf;
use std::time::Duration;

/// Which directory: asked from the root DSE (`Auto`), or told.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Auto,
    ActiveDirectory,
    Ldap,
}

/// The default user filter on Active Directory: the login is the account name or the UPN.
pub const AD_FILTER: &str =
    "(&(objectClass=user)(|(sAMAccountName={login})(userPrincipalName={login})))";
/// The default user filter elsewhere (OpenLDAP and the like).
pub const LDAP_FILTER: &str = "(&(objectClass=inetOrgPerson)(uid={login}))";

#[derive(Clone)]
pub struct Settings {
    /// `ldaps://host:636`, or `ldap://host:389` with `starttls`; tried in turn.
    pub urls: Vec<String>,
    pub starttls: bool,
    /// PEM file of the directory's CA; none: the system's roots.
    pub ca_bundle: Option<PathBuf>,
    /// A DN, `user@realm` or `DOMAIN\user` (AD takes all three as simple-bind names).
    pub bind_dn: String,
    pub bind_password: String,
    pub user_base: String,
    pub user_filter: Option<String>,
    pub login_attribute: Option<String>,
    pub display_name_attribute: Option<String>,
    pub email_attribute: Option<String>,
    pub group_base: Option<String>,
    pub kind: Kind,
    /// For connecting and for each operation.
    pub timeout: Duration,
}

/// Like a derived Debug, with the service account's password left out.
impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("urls", &self.urls)
            .field("starttls", &self.starttls)
            .field("ca_bundle", &self.ca_bundle)
            .field("bind_dn", &self.bind_dn)
            .field("bind_password", &"<hidden>")
            .field("user_base", &self.user_base)
            .field("user_filter", &self.user_filter)
            .field("login_attribute", &self.login_attribute)
            .field("display_name_attribute", &self.display_name_attribute)
            .field("email_attribute", &self.email_attribute)
            .field("group_base", &self.group_base)
            .field("kind", &self.kind)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl Settings {
    pub fn check(&self) -> Result<(), String> {
        if self.urls.is_empty() {
            return Err("ldap.url is missing: give ldaps://HOST:636 (or ldap://HOST:389 with ldap.starttls = true)".into());
        }
        for u in &self.urls {
            let parsed = url::Url::parse(u).map_err(|e| {
                format!("ldap.url {u:?} is not a URL ({e}): write it as ldaps://HOST:636")
            })?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!(
                    "ldap.url {u:?} has no host: write it as ldaps://HOST:636"
                ));
            }
            match parsed.scheme() {
                "ldaps" if self.starttls => {
                    return Err(format!(
                        "ldap.url {u} is ldaps:// and ldap.starttls is true: use one of them (ldaps:// already encrypts)"
                    ))
                }
                "ldaps" => {}
                "ldap" if !self.starttls => {
                    return Err(format!(
                        "ldap.url {u} would send passwords in plain text: use ldaps://, or set ldap.starttls = true"
                    ))
                }
                "ldap" => {}
                other => {
                    return Err(format!(
                        "ldap.url {u}: the scheme {other}:// is not LDAP; use ldaps:// or ldap:// with ldap.starttls"
                    ))
                }
            }
        }
        if let Some(f) = &self.user_filter {
            if !f.contains("{login}") {
                return Err(format!(
                    "ldap.user_filter {f:?} has no {{login}} placeholder: e.g. (&(objectClass=user)(sAMAccountName={{login}}))"
                ));
            }
            if !balanced(f) {
                return Err(format!(
                    "ldap.user_filter {f:?} is not an LDAP filter: it must be one filter in parentheses, and its parentheses must balance"
                ));
            }
        }
        if self.bind_dn.trim().is_empty() {
            return Err(
                "ldap.bind_dn is missing: the DN (or user@domain) of a read-only service account"
                    .into(),
            );
        }
        if self.bind_password.is_empty() {
            return Err("ldap.bind_password is empty: give the service account's password (ldap.bind_password_file or KURA_LDAP_BIND_PASSWORD)".into());
        }
        if self.user_base.trim().is_empty() {
            return Err("ldap.user_base is missing: the DN under which users are searched, e.g. OU=People,DC=corp,DC=example".into());
        }
        if self.timeout.is_zero() {
            return Err("ldap.timeout must be longer than 0s".into());
        }
        Ok(())
    }
}

/// One parenthesized filter: starts with `(`, its parentheses balance, and the first one
/// closes at the end (`(a=1)(b=2)` is two filters). Escaped parentheses are `\28`/`\29` in
/// filters, so every literal one counts.
fn balanced(f: &str) -> bool {
    let f = f.trim();
    if !f.starts_with('(') {
        return false;
    }
    let mut depth = 0i32;
    for (i, c) in f.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth < 0 || (depth == 0 && i + 1 != f.len()) {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn ad() -> Settings {
        Settings {
            urls: vec!["ldaps://dc1.corp.example:636".into()],
            starttls: false,
            ca_bundle: None,
            bind_dn: "CN=kura-svc,OU=Services,DC=corp,DC=example".into(),
            bind_password: "pw".into(),
            user_base: "OU=People,DC=corp,DC=example".into(),
            user_filter: None,
            login_attribute: None,
            display_name_attribute: None,
            email_attribute: None,
            group_base: None,
            kind: Kind::Auto,
            timeout: Duration::from_secs(5),
        }
    }

    #[test]
    fn good_settings_pass() {
        ad().check().unwrap();
        let ad_told = Settings {
            urls: vec![
                "ldaps://dc1.corp.example".into(),
                "ldaps://dc2.corp.example:636".into(),
            ],
            user_filter: Some(AD_FILTER.into()),
            bind_dn: "CORP\\kura-svc".into(),
            kind: Kind::ActiveDirectory,
            ..ad()
        };
        ad_told.check().unwrap();
        let ldap = Settings {
            urls: vec!["ldap://ldap.corp:389".into()],
            starttls: true,
            user_filter: Some(LDAP_FILTER.into()),
            kind: Kind::Ldap,
            ..ad()
        };
        ldap.check().unwrap();
    }

    #[test]
    fn debug_output_hides_the_password() {
        let s = Settings {
            bind_password: "very-secret-1".into(),
            ..ad()
        };
        let d = format!("{s:?}");
        assert!(!d.contains("very-secret-1") && d.contains("bind_dn"), "{d}");
    }

    #[test]
    fn each_refusal_names_its_key() {
        let cases: Vec<(Settings, &str)> = vec![
            (
                Settings {
                    urls: vec![],
                    ..ad()
                },
                "ldap.url is missing",
            ),
            (
                Settings {
                    urls: vec!["dc1:636".into()],
                    ..ad()
                },
                "ldap.url",
            ),
            (
                Settings {
                    urls: vec!["http://dc1".into()],
                    ..ad()
                },
                "not LDAP",
            ),
            (
                Settings {
                    urls: vec!["ldap://dc1".into()],
                    ..ad()
                },
                "plain text",
            ),
            (
                Settings {
                    starttls: true,
                    ..ad()
                },
                "use one of them",
            ),
            (
                Settings {
                    user_filter: Some("(uid=alice)".into()),
                    ..ad()
                },
                "{login}",
            ),
            (
                Settings {
                    user_filter: Some("(&(uid={login})".into()),
                    ..ad()
                },
                "balance",
            ),
            (
                Settings {
                    user_filter: Some("uid={login}".into()),
                    ..ad()
                },
                "balance",
            ),
            (
                Settings {
                    bind_dn: " ".into(),
                    ..ad()
                },
                "ldap.bind_dn",
            ),
            (
                Settings {
                    bind_password: String::new(),
                    ..ad()
                },
                "ldap.bind_password",
            ),
            (
                Settings {
                    user_base: String::new(),
                    ..ad()
                },
                "ldap.user_base",
            ),
            (
                Settings {
                    timeout: Duration::ZERO,
                    ..ad()
                },
                "ldap.timeout",
            ),
            (
                Settings {
                    urls: vec!["ldaps://".into()],
                    ..ad()
                },
                "ldap.url",
            ),
            (
                Settings {
                    user_filter: Some("(uid={login}))(".into()),
                    ..ad()
                },
                "balance",
            ),
            (
                Settings {
                    user_filter: Some("(a=b)(uid={login})".into()),
                    ..ad()
                },
                "balance",
            ),
        ];
        for (s, want) in cases {
            let e = s.check().expect_err(want);
            assert!(e.contains(want), "{want:?} not in {e:?}");
        }
    }
}
