//! The CLI's wording of operation errors: the operation says what happened, this adds which
//! command or flag helps.

use kura_server::OpsError;

fn advice(e: &OpsError) -> Option<String> {
    use OpsError::*;
    Some(match e {
        UserNotFound(_) => "see kura user list".into(),
        GroupNotFound(name) => format!("create it with kura group add {name}"),
        NotAGroup(_) => "create a group with kura group add NAME".into(),
        NamespaceNotFound(_) => "create it first (kura user add / kura group add)".into(),
        RepoNotFound(_) => "see kura repo list".into(),
        TokenNotFound(_) => "see kura token list USER".into(),
        NotAMember { group, .. } => format!("see kura group member add {group} USER --role ROLE"),
        NoGrant { .. } => "change group roles with kura group member add".into(),
        NoProtection { repo, .. } => format!("see kura repo show {repo}"),
        MirrorNotFound { repo, .. } | AmbiguousMirror { repo, .. } => {
            format!("see kura mirror list {repo}")
        }
        NoMirror(repo) => {
            format!("add one with kura mirror add {repo} codecommit://REGION/REPOSITORY")
        }
        TriggerNotFound(_) => "see kura trigger list".into(),
        DeliveryNotFound(_) => "see kura trigger deliveries NS/NAME (or --server)".into(),
        InvalidExpiry => "give --expires-in a duration such as 90d or 12h".into(),
        Database(_) => "kura config shows which database_url is used".into(),
        _ => return None,
    })
}

/// Adds the CLI's advice to an operation error inside `e`, if there is one.
pub fn worded(e: anyhow::Error) -> anyhow::Error {
    match e.downcast_ref::<OpsError>().and_then(advice) {
        Some(a) => anyhow::anyhow!("{e}; {a}"),
        None => e,
    }
}
