//! Every group a user is in, nested ones included: on AD one search with the in-chain
//! matching rule; elsewhere a breadth-first walk over `member`/`uniqueMember`, bounded in depth
//! and size (a cycle or a huge tree must not hang a sign-in).

use std::collections::HashSet;

use ldap3::{ldap_escape, Ldap, Scope, SearchEntry};

use crate::dn::{first_value, normalize_dn};
use crate::{op_error, DirError, Trace};

const MAX_DEPTH: usize = 8;
const MAX_GROUPS: usize = 1000;
const BATCH: usize = 20;

/// DNs of the groups found by `filter` under `base` (references skipped).
async fn group_dns(
    ldap: &mut Ldap,
    base: &str,
    filter: &str,
    timeout: std::time::Duration,
) -> Result<Vec<String>, DirError> {
    let res = ldap
        .with_timeout(timeout)
        .search(base, Scope::Subtree, filter, vec!["1.1"])
        .await
        .map_err(|e| op_error(&e, timeout))?;
    match res.1.rc {
        0 | 10 => {}
        32 => {
            return Err(DirError::Misconfigured(format!(
                "the group base {base} does not exist in the directory: check ldap.group_base"
            )))
        }
        rc => {
            return Err(DirError::Misconfigured(format!(
                "the group search under {base} failed (code {rc}: {})",
                res.1.text
            )))
        }
    }
    Ok(res
        .0
        .into_iter()
        .filter(|e| !e.is_ref())
        .map(|e| SearchEntry::construct(e).dn)
        .collect())
}

pub async fn of_user(
    ldap: &mut Ldap,
    ad: bool,
    base: &str,
    user_dn: &str,
    timeout: std::time::Duration,
    trace: &mut Trace,
) -> Result<Vec<String>, DirError> {
    let groups = if ad {
        let filter = format!("(member:1.2.840.113556.1.4.1941:={})", ldap_escape(user_dn));
        group_dns(ldap, base, &filter, timeout).await?
    } else {
        walk(ldap, base, user_dn, timeout, trace).await?
    };
    let names: Vec<String> = groups.iter().map(|g| first_value(g)).collect();
    trace.step(format!("groups: {} ({})", groups.len(), names.join(", ")));
    Ok(groups)
}

async fn walk(
    ldap: &mut Ldap,
    base: &str,
    user_dn: &str,
    timeout: std::time::Duration,
    trace: &mut Trace,
) -> Result<Vec<String>, DirError> {
    let mut seen: HashSet<String> = HashSet::from([normalize_dn(user_dn)]);
    let mut found = Vec::new();
    let mut frontier = vec![user_dn.to_string()];
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for chunk in frontier.chunks(BATCH) {
            let terms: String = chunk
                .iter()
                .map(|d| {
                    let e = ldap_escape(d.as_str());
                    format!("(member={e})(uniqueMember={e})")
                })
                .collect();
            for g in group_dns(ldap, base, &format!("(|{terms})"), timeout).await? {
                if seen.insert(normalize_dn(&g)) {
                    found.push(g.clone());
                    next.push(g);
                    if found.len() >= MAX_GROUPS {
                        trace.step(format!("groups: stopped at {MAX_GROUPS} groups"));
                        return Ok(found);
                    }
                }
            }
        }
        frontier = next;
    }
    if !frontier.is_empty() {
        trace.step(format!("groups: nesting deeper than {MAX_DEPTH} levels is not followed"));
    }
    Ok(found)
}
