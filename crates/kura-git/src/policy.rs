//! The push policy the pre-receive hook enforces: protected branches, the default branch, the
//! ref namespaces that may be pushed, and pushes that raced another push. Pure logic over a
//! `RepoView`, so it is tested without git.

use serde::{Deserialize, Serialize};

/// Everything the hook needs to know, computed by the server for this push.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PushPolicy {
    /// `namespace/name`, for messages.
    pub repo: String,
    pub pusher: String,
    /// The pusher has the `admin` role on this repository.
    pub pusher_is_admin: bool,
    pub default_branch: String,
    pub protected: Vec<ProtectedBranch>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProtectedBranch {
    pub pattern: String,
    /// Who may push; empty means repository admins.
    pub allow_push: Vec<String>,
}

/// One line of pre-receive input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefUpdate {
    pub old: String,
    pub new: String,
    pub name: String,
}

impl RefUpdate {
    pub fn parse(line: &str) -> Option<RefUpdate> {
        let mut it = line.split_whitespace();
        let (old, new, name) = (it.next()?, it.next()?, it.next()?);
        Some(RefUpdate {
            old: old.to_string(),
            new: new.to_string(),
            name: name.to_string(),
        })
    }
    fn is_create(&self) -> bool {
        is_zero(&self.old)
    }
    fn is_delete(&self) -> bool {
        is_zero(&self.new)
    }
}

pub fn is_zero(oid: &str) -> bool {
    !oid.is_empty() && oid.bytes().all(|b| b == b'0')
}

/// What the policy needs to read from the repository.
pub trait RepoView {
    /// The ref's current value, `None` when it does not exist.
    fn current(&self, name: &str) -> Option<String>;
    /// Whether `new` contains `old` (a fast-forward).
    fn is_ancestor(&self, old: &str, new: &str) -> bool;
}

/// Whether the glob `pattern` matches `branch`; `*` does not cross `/`.
pub fn pattern_matches(pattern: &str, branch: &str) -> bool {
    let opts = glob::MatchOptions {
        case_sensitive: true,
        require_literal_separator: true,
        require_literal_leading_dot: false,
    };
    match glob::Pattern::new(pattern) {
        Ok(p) => p.matches_with(branch, opts),
        Err(_) => pattern == branch,
    }
}

/// Checks every update; returns one message per refused ref (empty: accept the push).
pub fn check(policy: &PushPolicy, updates: &[RefUpdate], view: &impl RepoView) -> Vec<String> {
    updates
        .iter()
        .filter_map(|u| check_one(policy, u, view))
        .collect()
}

fn check_one(policy: &PushPolicy, u: &RefUpdate, view: &impl RepoView) -> Option<String> {
    let branch = u.name.strip_prefix("refs/heads/");
    if branch.is_none() && !u.name.starts_with("refs/tags/") {
        return Some(format!(
            "{}: only branches (refs/heads/*) and tags (refs/tags/*) can be pushed to Kura",
            u.name
        ));
    }
    let current = view.current(&u.name);
    let expected = if u.is_create() {
        None
    } else {
        Some(u.old.as_str())
    };
    if current.as_deref() != expected {
        return Some(format!(
            "{}: was updated by another push while yours was in flight (non-fast-forward); \
             fetch, merge or rebase, then push again",
            u.name
        ));
    }
    let branch = branch?;
    if u.is_delete() && branch == policy.default_branch {
        return Some(format!(
            "branch {branch}: cannot delete the default branch of {}; make another branch the \
             default first (a repository admin: kura repo set {} --default-branch BRANCH)",
            policy.repo, policy.repo
        ));
    }
    let rules: Vec<&ProtectedBranch> = policy
        .protected
        .iter()
        .filter(|p| pattern_matches(&p.pattern, branch))
        .collect();
    if rules.is_empty() {
        return None;
    }
    if u.is_delete() {
        return Some(format!(
            "branch {branch} is protected: it cannot be deleted (rule {:?})",
            rules[0].pattern
        ));
    }
    if !u.is_create() && !view.is_ancestor(&u.old, &u.new) {
        return Some(format!(
            "branch {branch} is protected: force-push is not allowed; fetch, merge or rebase, \
             then push again"
        ));
    }
    for rule in rules {
        let allowed = if rule.allow_push.is_empty() {
            policy.pusher_is_admin
        } else {
            rule.allow_push
                .iter()
                .any(|n| n.eq_ignore_ascii_case(&policy.pusher))
        };
        if !allowed {
            let who = if rule.allow_push.is_empty() {
                "repository admins".to_string()
            } else {
                rule.allow_push.join(", ")
            };
            return Some(format!(
                "branch {branch} is protected: only {who} may push to it (you are {})",
                policy.pusher
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    struct View {
        refs: HashMap<String, String>,
        ancestors: Vec<(String, String)>,
    }
    impl RepoView for View {
        fn current(&self, name: &str) -> Option<String> {
            self.refs.get(name).cloned()
        }
        fn is_ancestor(&self, old: &str, new: &str) -> bool {
            self.ancestors.iter().any(|(o, n)| o == old && n == new)
        }
    }

    const Z: &str = "0000000000000000000000000000000000000000";

    fn policy(pusher: &str, admin: bool, rules: &[(&str, &[&str])]) -> PushPolicy {
        PushPolicy {
            repo: "team/app".into(),
            pusher: pusher.into(),
            pusher_is_admin: admin,
            default_branch: "main".into(),
            protected: rules
                .iter()
                .map(|(p, a)| ProtectedBranch {
                    pattern: p.to_string(),
                    allow_push: a.iter().map(|s| s.to_string()).collect(),
                })
                .collect(),
        }
    }

    fn view() -> View {
        View {
            refs: [
                ("refs/heads/main".to_string(), "a".repeat(40)),
                ("refs/heads/release/1.0".to_string(), "c".repeat(40)),
                ("refs/heads/dev".to_string(), "d".repeat(40)),
            ]
            .into_iter()
            .collect(),
            ancestors: vec![("a".repeat(40), "b".repeat(40))],
        }
    }

    fn up(old: &str, new: &str, name: &str) -> RefUpdate {
        RefUpdate {
            old: old.into(),
            new: new.into(),
            name: name.into(),
        }
    }

    #[test]
    fn globs_do_not_cross_slashes() {
        assert!(pattern_matches("release/*", "release/1.0"));
        assert!(!pattern_matches("release/*", "release/1.0/x"));
        assert!(!pattern_matches("release/*", "feature/x"));
        assert!(pattern_matches("main", "main"));
        assert!(!pattern_matches("main", "main2"));
    }

    #[test]
    fn protected_branch_rules() {
        let v = view();
        let a = "a".repeat(40);
        let b = "b".repeat(40);
        let e = "e".repeat(40);
        let p = policy("alice", false, &[("main", &["alice"]), ("release/*", &[])]);
        // fast-forward by an allowed user
        assert!(check(&p, &[up(&a, &b, "refs/heads/main")], &v).is_empty());
        // force-push
        let r = check(&p, &[up(&a, &e, "refs/heads/main")], &v);
        assert!(
            r[0].contains("is protected: force-push is not allowed"),
            "{r:?}"
        );
        // delete protected (and default) branch
        let r = check(&p, &[up(&"c".repeat(40), Z, "refs/heads/release/1.0")], &v);
        assert!(r[0].contains("is protected: it cannot be deleted"), "{r:?}");
        // release/* without allow-list: admins only
        let r = check(
            &p,
            &[up(
                &"c".repeat(40),
                &"f".repeat(40),
                "refs/heads/release/1.0",
            )],
            &View {
                ancestors: vec![("c".repeat(40), "f".repeat(40))],
                ..view()
            },
        );
        assert!(r[0].contains("only repository admins may push"), "{r:?}");
        // someone else on main
        let p2 = policy("bob", true, &[("main", &["alice"])]);
        let r = check(&p2, &[up(&a, &b, "refs/heads/main")], &v);
        assert!(r[0].contains("only alice may push to it"), "{r:?}");
        // unprotected branch: force-push fine
        assert!(check(&p, &[up(&"d".repeat(40), &e, "refs/heads/dev")], &v).is_empty());
    }

    #[test]
    fn default_branch_stale_and_namespaces() {
        let v = view();
        let p = policy("alice", true, &[]);
        let r = check(&p, &[up(&"a".repeat(40), Z, "refs/heads/main")], &v);
        assert!(r[0].contains("cannot delete the default branch"), "{r:?}");
        let r = check(
            &p,
            &[up(&"9".repeat(40), &"b".repeat(40), "refs/heads/main")],
            &v,
        );
        assert!(r[0].contains("updated by another push"), "{r:?}");
        let r = check(&p, &[up(Z, &"b".repeat(40), "refs/heads/dev")], &v);
        assert!(r[0].contains("updated by another push"), "{r:?}");
        let r = check(&p, &[up(Z, &"b".repeat(40), "refs/notes/x")], &v);
        assert!(r[0].contains("only branches"), "{r:?}");
        assert!(check(&p, &[up(Z, &"b".repeat(40), "refs/tags/v1")], &v).is_empty());
    }
}
