//! What a run pushes, as a pure function of the two sides' refs, so the mirroring rules can be
//! tested without git or a remote.

use std::collections::BTreeMap;

/// `refname -> oid`.
pub type Refs = BTreeMap<String, String>;

/// What the mirror is configured to carry.
#[derive(Debug, Clone, Copy, Default)]
pub struct Rules<'a> {
    /// Branch globs (none = all branches); tags are always mirrored.
    pub branches: &'a [String],
    /// Never overwrite a remote ref that is not behind ours, and delete nothing.
    pub keep_divergent: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Plan {
    /// `ref:ref` to create or update, `:ref` to delete, in `git push` order.
    pub refspecs: Vec<String>,
    /// One `--force-with-lease=REF:OID-SEEN` per refspec (empty OID: must not exist yet).
    pub leases: Vec<String>,
    /// The remote's refs within the filters once the push went through.
    pub expected: Refs,
    /// Summary pieces: `main 1a2b3c4`, `feature deleted`.
    pub changed: Vec<String>,
    /// Short names left on the remote because they are its default branch.
    pub kept: Vec<String>,
    /// Full names of diverged remote refs left alone (keep-divergent).
    pub diverged: Vec<String>,
}

/// Decides the push that makes the remote (`remote`, HEAD at `remote_head`) carry `local`
/// within `rules`. `is_ancestor(old, new)`: whether commit `old` is behind `new`; asked only
/// with keep-divergent, for refs that differ.
pub fn plan(
    local: &Refs,
    remote: &Refs,
    remote_head: Option<&str>,
    rules: Rules<'_>,
    is_ancestor: impl Fn(&str, &str) -> bool,
) -> Plan {
    let local = filter(rules.branches, local);
    let remote = filter(rules.branches, remote);
    let mut p = Plan {
        expected: local.clone(),
        ..Plan::default()
    };
    for (name, oid) in &local {
        let seen = remote.get(name);
        match seen {
            Some(r) if r == oid => continue,
            Some(r) if rules.keep_divergent && !is_ancestor(r, oid) => {
                p.expected.insert(name.clone(), r.clone());
                p.diverged.push(name.clone());
                continue;
            }
            _ => {}
        }
        // Each update is conditional on the remote ref still being what we saw (never a
        // blind force): a stale run, or a push to the remote meanwhile, fails instead of
        // overwriting newer state, and the next run starts from the new state.
        p.refspecs.push(format!("{name}:{name}"));
        p.leases.push(format!(
            "--force-with-lease={name}:{}",
            seen.map(String::as_str).unwrap_or("")
        ));
        p.changed
            .push(format!("{} {}", short_name(name), &oid[..oid.len().min(7)]));
    }
    for (name, oid) in &remote {
        if local.contains_key(name) {
            continue;
        }
        if rules.keep_divergent {
            p.expected.insert(name.clone(), oid.clone());
        } else if remote_head == Some(name.as_str()) {
            // Remotes (CodeCommit among them) refuse to delete their default branch.
            p.expected.insert(name.clone(), oid.clone());
            p.kept.push(short_name(name).to_string());
        } else {
            p.refspecs.push(format!(":{name}"));
            p.leases.push(format!("--force-with-lease={name}:{oid}"));
            p.changed.push(format!("{} deleted", short_name(name)));
        }
    }
    p
}

impl Plan {
    /// e.g. `main 1a2b3c4, v1.0 89abcde` or `up to date`, plus any branch kept.
    pub fn summary(&self) -> String {
        let changed = &self.changed;
        let mut summary = if changed.is_empty() {
            "up to date".to_string()
        } else if changed.len() > 3 {
            format!("{} and {} more", changed[..3].join(", "), changed.len() - 3)
        } else {
            changed.join(", ")
        };
        if !self.kept.is_empty() {
            summary.push_str(&format!(
                "; kept {} on the remote: it is the remote's default branch, change that there to remove it",
                self.kept.join(", ")
            ));
        }
        summary
    }

    /// `git push` arguments, or `None` when there is nothing to push.
    pub fn push_args(&self, url: &str) -> Option<Vec<String>> {
        if self.refspecs.is_empty() {
            return None;
        }
        let mut args = vec!["push".to_string(), "--porcelain".to_string()];
        args.extend(self.leases.iter().cloned());
        args.push(url.to_string());
        args.extend(self.refspecs.iter().cloned());
        Some(args)
    }
}

/// Heads limited to the branch globs (none = all); tags always; nothing else.
pub fn filter(branches: &[String], refs: &Refs) -> Refs {
    refs.iter()
        .filter(|(name, _)| {
            if let Some(branch) = name.strip_prefix("refs/heads/") {
                branches.is_empty()
                    || branches
                        .iter()
                        .any(|g| kura_git::policy::pattern_matches(g, branch))
            } else {
                name.starts_with("refs/tags/")
            }
        })
        .map(|(n, o)| (n.clone(), o.clone()))
        .collect()
}

fn short_name(name: &str) -> &str {
    name.strip_prefix("refs/heads/")
        .or_else(|| name.strip_prefix("refs/tags/"))
        .unwrap_or(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "aaaaaaa1111111111111111111111111111111111";
    const B: &str = "bbbbbbb2222222222222222222222222222222222";
    const C: &str = "ccccccc3333333333333333333333333333333333";

    fn refs(list: &[(&str, &str)]) -> Refs {
        list.iter()
            .map(|(n, o)| (n.to_string(), o.to_string()))
            .collect()
    }

    /// A history where A is behind B (fast-forward) and C diverged from both.
    fn ancestry(old: &str, new: &str) -> bool {
        old == A && new == B
    }

    struct Case {
        name: &'static str,
        local: &'static [(&'static str, &'static str)],
        remote: &'static [(&'static str, &'static str)],
        head: Option<&'static str>,
        branches: &'static [&'static str],
        keep_divergent: bool,
        refspecs: &'static [&'static str],
        leases: &'static [&'static str],
        expected: &'static [(&'static str, &'static str)],
        summary: &'static str,
    }

    const MAIN: &str = "refs/heads/main";
    const FEATURE: &str = "refs/heads/feature";
    const TAG: &str = "refs/tags/v1.0";

    #[test]
    fn plans_like_the_policy_table() {
        let cases = [
            Case {
                name: "up to date",
                local: &[(MAIN, A), (TAG, C)],
                remote: &[(MAIN, A), (TAG, C)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: false,
                refspecs: &[],
                leases: &[],
                expected: &[(MAIN, A), (TAG, C)],
                summary: "up to date",
            },
            Case {
                name: "new branch: the lease says it must not exist yet",
                local: &[(MAIN, A), (FEATURE, B)],
                remote: &[(MAIN, A)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: false,
                refspecs: &["refs/heads/feature:refs/heads/feature"],
                leases: &["--force-with-lease=refs/heads/feature:"],
                expected: &[(MAIN, A), (FEATURE, B)],
                summary: "feature bbbbbbb",
            },
            Case {
                name: "updated branch: forced, guarded by the oid seen",
                local: &[(MAIN, C)],
                remote: &[(MAIN, A)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: false,
                refspecs: &["refs/heads/main:refs/heads/main"],
                leases: &["--force-with-lease=refs/heads/main:aaaaaaa1111111111111111111111111111111111"],
                expected: &[(MAIN, C)],
                summary: "main ccccccc",
            },
            Case {
                name: "deleted branch: deleted remotely, lease = old oid",
                local: &[(MAIN, A)],
                remote: &[(MAIN, A), (FEATURE, B)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: false,
                refspecs: &[":refs/heads/feature"],
                leases: &["--force-with-lease=refs/heads/feature:bbbbbbb2222222222222222222222222222222222"],
                expected: &[(MAIN, A)],
                summary: "feature deleted",
            },
            Case {
                name: "the remote's default branch is never deleted",
                local: &[(FEATURE, B)],
                remote: &[(MAIN, A), (FEATURE, B)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: false,
                refspecs: &[],
                leases: &[],
                expected: &[(MAIN, A), (FEATURE, B)],
                summary: "up to date; kept main on the remote: it is the remote's default branch, change that there to remove it",
            },
            Case {
                name: "keep-divergent keeps a diverged ref and deletes nothing",
                local: &[(MAIN, B)],
                remote: &[(MAIN, C), (FEATURE, A)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: true,
                refspecs: &[],
                leases: &[],
                expected: &[(MAIN, C), (FEATURE, A)],
                summary: "up to date",
            },
            Case {
                name: "keep-divergent still fast-forwards",
                local: &[(MAIN, B)],
                remote: &[(MAIN, A)],
                head: Some(MAIN),
                branches: &[],
                keep_divergent: true,
                refspecs: &["refs/heads/main:refs/heads/main"],
                leases: &["--force-with-lease=refs/heads/main:aaaaaaa1111111111111111111111111111111111"],
                expected: &[(MAIN, B)],
                summary: "main bbbbbbb",
            },
            Case {
                name: "tags are mirrored, also with branch filters",
                local: &[(MAIN, A), (TAG, C)],
                remote: &[(MAIN, A)],
                head: None,
                branches: &["release/*"],
                keep_divergent: false,
                refspecs: &["refs/tags/v1.0:refs/tags/v1.0"],
                leases: &["--force-with-lease=refs/tags/v1.0:"],
                expected: &[(TAG, C)],
                summary: "v1.0 ccccccc",
            },
            Case {
                name: "branch filters: other branches neither pushed nor deleted",
                local: &[(MAIN, B), ("refs/heads/release/1", A), ("refs/notes/x", A)],
                remote: &[(MAIN, A), ("refs/heads/release/0", C), ("refs/heads/topic", C)],
                head: Some("refs/heads/topic"),
                branches: &["release/*"],
                keep_divergent: false,
                refspecs: &["refs/heads/release/1:refs/heads/release/1", ":refs/heads/release/0"],
                leases: &["--force-with-lease=refs/heads/release/1:", "--force-with-lease=refs/heads/release/0:ccccccc3333333333333333333333333333333333"],
                expected: &[("refs/heads/release/1", A)],
                summary: "release/1 aaaaaaa, release/0 deleted",
            },
            Case {
                name: "more than three changes are summed up",
                local: &[("refs/heads/a", A), ("refs/heads/b", A), ("refs/heads/c", A), ("refs/heads/d", A), (TAG, B)],
                remote: &[],
                head: None,
                branches: &[],
                keep_divergent: false,
                refspecs: &["refs/heads/a:refs/heads/a", "refs/heads/b:refs/heads/b", "refs/heads/c:refs/heads/c", "refs/heads/d:refs/heads/d", "refs/tags/v1.0:refs/tags/v1.0"],
                leases: &["--force-with-lease=refs/heads/a:", "--force-with-lease=refs/heads/b:", "--force-with-lease=refs/heads/c:", "--force-with-lease=refs/heads/d:", "--force-with-lease=refs/tags/v1.0:"],
                expected: &[("refs/heads/a", A), ("refs/heads/b", A), ("refs/heads/c", A), ("refs/heads/d", A), (TAG, B)],
                summary: "a aaaaaaa, b aaaaaaa, c aaaaaaa and 2 more",
            },
        ];
        for c in cases {
            let branches: Vec<String> = c.branches.iter().map(|b| b.to_string()).collect();
            let rules = Rules {
                branches: &branches,
                keep_divergent: c.keep_divergent,
            };
            let p = plan(&refs(c.local), &refs(c.remote), c.head, rules, ancestry);
            assert_eq!(p.refspecs, c.refspecs, "{}: refspecs", c.name);
            assert_eq!(p.leases, c.leases, "{}: leases", c.name);
            assert_eq!(p.expected, refs(c.expected), "{}: expected", c.name);
            assert_eq!(p.summary(), c.summary, "{}: summary", c.name);
        }
    }

    #[test]
    fn ancestry_is_asked_only_with_keep_divergent_and_a_difference() {
        let local = refs(&[(MAIN, B), (FEATURE, A)]);
        let remote = refs(&[(MAIN, C), (FEATURE, A)]);
        let asked = std::cell::RefCell::new(Vec::new());
        let ask = |old: &str, new: &str| {
            asked.borrow_mut().push((old.to_string(), new.to_string()));
            false
        };
        let p = plan(&local, &remote, None, Rules::default(), ask);
        assert!(asked.borrow().is_empty());
        assert_eq!(p.refspecs, ["refs/heads/main:refs/heads/main"]);
        let rules = Rules {
            keep_divergent: true,
            ..Rules::default()
        };
        let p = plan(&local, &remote, None, rules, ask);
        assert_eq!(*asked.borrow(), [(C.to_string(), B.to_string())]);
        assert_eq!(p.diverged, [MAIN]);
        assert!(p.push_args("https://h/x.git").is_none());
    }

    #[test]
    fn push_arguments_put_leases_before_the_url() {
        let p = plan(
            &refs(&[(MAIN, B)]),
            &refs(&[(MAIN, A), (FEATURE, C)]),
            Some(MAIN),
            Rules::default(),
            ancestry,
        );
        assert_eq!(
            p.push_args("https://h/x.git").unwrap(),
            [
                "push",
                "--porcelain",
                "--force-with-lease=refs/heads/main:aaaaaaa1111111111111111111111111111111111",
                "--force-with-lease=refs/heads/feature:ccccccc3333333333333333333333333333333333",
                "https://h/x.git",
                "refs/heads/main:refs/heads/main",
                ":refs/heads/feature",
            ]
        );
    }
}
