//! Every group a user is in, nested ones included: on AD one search with the in-chain
//! matching rule; elsewhere a breadth-first walk over `member`/`uniqueMember`, bounded in depth
//! and size (a cycle or a huge tree must not hang a sign-in).

use std::collections::HashSet;

use ldap3::{ldap_escape, Scope, SearchEntry};

use crate::conn::Conn;
use crate::dn::{first_value, normalize_dn};
use crate::{DirError, Trace};

const MAX_DEPTH: usize = 8;
const MAX_GROUPS: usize = 1000;
const BATCH: usize = 20;
/// LDAP_MATCHING_RULE_IN_CHAIN: AD follows nested membership itself.
const IN_CHAIN: &str = "1.2.840.113556.1.4.1941";

/// DNs of the groups found by `filter` under `base` (references skipped).
async fn group_dns(
    c: &mut Conn,
    base: &str,
    key: &str,
    filter: &str,
    trace: &mut Trace,
) -> Result<Vec<String>, DirError> {
    let res = c
        .ldap
        .with_timeout(c.timeout)
        .search(base, Scope::Subtree, filter, vec!["1.1"])
        .await
        .map_err(|e| c.op_error("the group search", &e))?;
    match res.1.rc {
        // 10: a referral; ignored like search references.
        0 | 10 => {}
        4 => trace.step("groups: the directory's size limit cut the list short"),
        32 => {
            return Err(DirError::Misconfigured(format!(
                "{key} {base} does not exist in the directory (groups are searched under it)"
            )))
        }
        rc => {
            return Err(DirError::Misconfigured(format!(
                "the group search under {key} {base} failed (code {rc}{})",
                if res.1.text.is_empty() {
                    String::new()
                } else {
                    format!(": {}", res.1.text)
                }
            )))
        }
    }
    Ok(res
        .0
        .into_iter()
        .filter(|e| !e.is_ref() && !e.is_intermediate())
        .map(|e| SearchEntry::construct(e).dn)
        .collect())
}

/// The groups of `user_dn`, de-duplicated by normalized DN.
pub async fn of_user(
    c: &mut Conn,
    ad: bool,
    base: &str,
    key: &str,
    user_dn: &str,
    trace: &mut Trace,
) -> Result<Vec<String>, DirError> {
    let groups = if ad {
        let filter = format!("(member:{IN_CHAIN}:={})", ldap_escape(user_dn));
        let mut seen = HashSet::new();
        let mut all = group_dns(c, base, key, &filter, trace).await?;
        all.retain(|g| seen.insert(normalize_dn(g)));
        all
    } else {
        walk(c, base, key, user_dn, trace).await?
    };
    let names: Vec<String> = groups.iter().map(|g| first_value(g)).collect();
    if names.is_empty() {
        trace.step("groups: 0");
    } else {
        trace.step(format!("groups: {} ({})", groups.len(), names.join(", ")));
    }
    Ok(groups)
}

/// The OR filter for groups holding any of `dns` as `member` or `uniqueMember`.
pub(crate) fn members_filter(dns: &[String]) -> String {
    let terms: String = dns
        .iter()
        .map(|d| {
            let e = ldap_escape(d.as_str());
            format!("(member={e})(uniqueMember={e})")
        })
        .collect();
    format!("(|{terms})")
}

async fn walk(
    c: &mut Conn,
    base: &str,
    key: &str,
    user_dn: &str,
    trace: &mut Trace,
) -> Result<Vec<String>, DirError> {
    // The user's own DN counts as seen: a group that (wrongly) names itself stops here too.
    let mut seen: HashSet<String> = HashSet::from([normalize_dn(user_dn)]);
    let mut found = Vec::new();
    let mut frontier = vec![user_dn.to_string()];
    for _ in 0..MAX_DEPTH {
        if frontier.is_empty() {
            break;
        }
        let mut next = Vec::new();
        for chunk in frontier.chunks(BATCH) {
            for g in group_dns(c, base, key, &members_filter(chunk), trace).await? {
                if seen.insert(normalize_dn(&g)) {
                    found.push(g.clone());
                    next.push(g);
                    if found.len() >= MAX_GROUPS {
                        trace.step(format!(
                            "groups: stopped at {MAX_GROUPS} groups (the bound)"
                        ));
                        return Ok(found);
                    }
                }
            }
        }
        frontier = next;
    }
    if !frontier.is_empty() {
        trace.step(format!(
            "groups: nesting deeper than {MAX_DEPTH} levels is not followed (the bound)"
        ));
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_filters_escape_dns() {
        let dns = vec![
            "uid=a,dc=x".to_string(),
            "cn=Smith\\, J (ops),dc=x".to_string(),
        ];
        assert_eq!(
            members_filter(&dns),
            "(|(member=uid=a,dc=x)(uniqueMember=uid=a,dc=x)\
             (member=cn=Smith\\5c, J \\28ops\\29,dc=x)(uniqueMember=cn=Smith\\5c, J \\28ops\\29,dc=x))"
        );
    }
}
