//! Distinguished names compared the way directories do for our purposes: case-insensitive,
//! spaces around separators ignored; a configured group may be a full DN or just its CN.

/// Lower-cased, with spaces around `,`, `=` and `+` removed (escaped commas kept).
pub fn normalize_dn(dn: &str) -> String {
    rdns(dn)
        .iter()
        .map(|rdn| match rdn.split_once('=') {
            Some((k, v)) => format!("{}={}", k.trim().to_lowercase(), v.trim().to_lowercase()),
            None => rdn.trim().to_lowercase(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// The RDNs of a DN, split at unescaped commas.
fn rdns(dn: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut escaped = false;
    for c in dn.chars() {
        if escaped {
            cur.push(c);
            escaped = false;
        } else if c == '\\' {
            cur.push(c);
            escaped = true;
        } else if c == ',' {
            out.push(std::mem::take(&mut cur));
        } else {
            cur.push(c);
        }
    }
    out.push(cur);
    out
}

/// The value of a DN's first RDN (`payments-dev` of `CN=payments-dev,OU=Groups,...`).
pub fn first_value(dn: &str) -> String {
    let first = rdns(dn).into_iter().next().unwrap_or_default();
    match first.split_once('=') {
        Some((_, v)) => v.trim().to_string(),
        None => first.trim().to_string(),
    }
}

/// Whether `wanted` (a DN when it holds `=`, else a CN) is one of `groups` (DNs).
pub fn names_group(groups: &[String], wanted: &str) -> bool {
    let wanted = wanted.trim();
    if wanted.contains('=') {
        let w = normalize_dn(wanted);
        groups.iter().any(|g| normalize_dn(g) == w)
    } else {
        groups
            .iter()
            .any(|g| first_value(g).to_lowercase() == wanted.to_lowercase())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dns_compare_without_case_or_spaces() {
        assert_eq!(
            normalize_dn("CN=Payments Dev, OU=Groups ,DC=corp,DC=example"),
            "cn=payments dev,ou=groups,dc=corp,dc=example"
        );
        assert_eq!(normalize_dn("cn=a\\,b,dc=x"), "cn=a\\,b,dc=x");
        let groups = vec!["CN=payments-dev,OU=Groups,DC=corp,DC=example".to_string()];
        assert!(names_group(
            &groups,
            "cn=payments-dev, ou=groups, dc=corp, dc=example"
        ));
        assert!(names_group(&groups, "Payments-Dev"));
        assert!(!names_group(&groups, "payments"));
        assert!(!names_group(
            &groups,
            "CN=payments-dev,OU=Other,DC=corp,DC=example"
        ));
        assert!(!names_group(&[], "payments-dev"));
        assert_eq!(first_value("CN=a\\,b,DC=x"), "a\\,b");
    }
}
