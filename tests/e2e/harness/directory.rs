//! The directory servers of the sign-in tests: one OpenLDAP (`KURA_TEST_SLAPD`) and one Samba
//! AD domain controller (`KURA_TEST_AD`) that `tests/run` starts once for the whole suite
//! (their state folders, with an `env` file of `KEY=value` lines), and private OpenLDAP
//! instances for tests that stop their directory.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::kura::{Kura, KuraBuilder};
use super::pg::Backend;
use super::process::{cmd, tests_dir};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirKind {
    Slapd,
    Ad,
}

pub struct Dir {
    pub kind: DirKind,
    pub state: PathBuf,
    vals: HashMap<String, String>,
    /// Private instances are stopped (and their folder removed) on drop.
    private: Option<tempfile::TempDir>,
}

fn script(kind: DirKind) -> PathBuf {
    tests_dir().join("directory").join(match kind {
        DirKind::Slapd => "slapd",
        DirKind::Ad => "samba-ad",
    })
}

fn read_env(state: &Path) -> HashMap<String, String> {
    let path = state.join("env");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {} ({e}): is the directory server running?",
            path.display()
        )
    });
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn shared(kind: DirKind, var: &str) -> Dir {
    let state = std::env::var_os(var).map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "{var} is not set: the directory tests need the shared directory server that tests/run starts; \
             run the suite with tests/run (or start it yourself: {} start DIR, then export {var}=DIR)",
            script(kind).display()
        )
    });
    Dir {
        kind,
        vals: read_env(&state),
        state,
        private: None,
    }
}

/// The suite's OpenLDAP server.
pub fn slapd() -> Dir {
    shared(DirKind::Slapd, "KURA_TEST_SLAPD")
}

/// The suite's Samba AD domain controller.
pub fn samba_ad() -> Dir {
    shared(DirKind::Ad, "KURA_TEST_AD")
}

/// An OpenLDAP server of this test alone (for pausing it).
pub fn private_slapd() -> Dir {
    let tmp = tempfile::Builder::new()
        .prefix("kura-slapd-")
        .tempdir()
        .expect("temp dir");
    let state = tmp.path().join("state");
    let s = script(DirKind::Slapd);
    cmd(text(&s), &["start", text(&state)])
        .timeout(Duration::from_secs(60))
        .run()
        .assert_ok();
    Dir {
        kind: DirKind::Slapd,
        vals: read_env(&state),
        state,
        private: Some(tmp),
    }
}

fn text(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

static SEQ: AtomicU32 = AtomicU32::new(0);

impl Dir {
    pub fn get(&self, k: &str) -> &str {
        self.vals
            .get(k)
            .unwrap_or_else(|| panic!("{} has no {k}", self.state.join("env").display()))
    }

    /// Runs a control command of the directory's script (`add-user`, `disable`, ...).
    pub fn ctl(&self, command: &str, args: &[&str]) {
        let s = script(self.kind);
        let mut all = vec![command, text(&self.state)];
        all.extend_from_slice(args);
        cmd(text(&s), &all)
            .timeout(Duration::from_secs(60))
            .run()
            .assert_ok();
    }

    /// A login no other test uses (the shared servers serve tests running at once).
    pub fn unique(&self, prefix: &str) -> String {
        format!(
            "{prefix}{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// A new directory user with a password, in these directory groups (CNs).
    pub fn new_user(&self, prefix: &str, groups: &[&str]) -> (String, String) {
        let login = self.unique(prefix);
        let password = format!("Pw-{login}-1");
        let mut args = vec![login.as_str(), password.as_str()];
        args.extend_from_slice(groups);
        self.ctl("add-user", &args);
        (login, password)
    }

    /// The `[ldap]` section for this directory (StartTLS on slapd, LDAPS on AD), `urls`
    /// first when given; `extra` lines go into the section.
    pub fn ldap_toml(&self, urls: Option<&[String]>, extra: &str) -> String {
        let default = match self.kind {
            DirKind::Slapd => vec![self.get("LDAP_URL").to_string()],
            DirKind::Ad => vec![self.get("LDAPS_URL").to_string()],
        };
        let urls = urls.map(|u| u.to_vec()).unwrap_or(default);
        let q = |s: &str| format!("{s:?}");
        let starttls = urls.iter().any(|u| u.starts_with("ldap://"));
        format!(
            "[ldap]\nurl = [{}]\nstarttls = {starttls}\nca_bundle = {}\nbind_dn = {}\nbind_password = {}\n\
             user_base = {}\nuser_filter = {}\ngroup_base = {}\nadmin_group = \"kura-admins\"\n\
             timeout = \"2s\"\n{extra}\n\
             [[ldap.group]]\ndn = {}\nkura_group = \"payments\"\nrole = \"write\"\n",
            urls.iter().map(|u| q(u)).collect::<Vec<_>>().join(", "),
            q(self.get("CA")),
            q(self.get("BIND_DN")),
            q(self.get("BIND_PASSWORD")),
            q(self.get("USER_BASE")),
            q(self.get("USER_FILTER")),
            q(self.get("GROUP_BASE")),
            q(&format!("cn=payments-dev,{}", self.get("GROUP_BASE"))),
        )
    }

    /// A Kura signing in with this directory (`toml`: the whole kura.toml).
    pub fn kura_with(&self, b: KuraBuilder, toml: &str) -> Kura {
        let mut k = b.prepare();
        let path = k.root.join("kura.toml");
        std::fs::write(&path, toml).expect("write kura.toml");
        k.set_env("KURA_CONFIG", text(&path));
        k.spawn();
        k
    }

    /// A Kura signing in with this directory, mapping payments-dev to write in `payments`.
    pub fn kura(&self, backend: Backend) -> Kura {
        self.kura_with(Kura::builder(backend), &self.ldap_toml(None, ""))
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        if self.private.is_some() {
            let s = script(self.kind);
            let _ = cmd(text(&s), &["stop", text(&self.state)])
                .timeout(Duration::from_secs(30))
                .run();
        }
    }
}
