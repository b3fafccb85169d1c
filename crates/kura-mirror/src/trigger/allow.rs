//! Which addresses webhooks may reach (`trigger_allowed_targets`): host names (`jenkins.corp`,
//! `*.corp.example`), addresses and networks (`10.1.0.0/16`), or `*`. Checked when a trigger is
//! added and again for the address each delivery actually connects to, so a name that later
//! resolves elsewhere is refused. Instance and task metadata addresses are always refused.

use std::net::IpAddr;

use ipnet::IpNet;

#[derive(Debug, Clone, Default)]
pub struct AllowList {
    nets: Vec<IpNet>,
    /// Lower-cased names; `*.suffix` matches any name under the suffix.
    hosts: Vec<String>,
    any: bool,
}

impl AllowList {
    /// Parses the configured entries; the error names the entry and the forms accepted.
    pub fn parse(entries: &[String]) -> Result<AllowList, String> {
        let mut list = AllowList::default();
        for raw in entries {
            let e = raw.trim();
            if e.is_empty() {
                continue;
            }
            if e == "*" {
                list.any = true;
            } else if let Ok(net) = e.parse::<IpNet>() {
                list.nets.push(net);
            } else if let Ok(ip) = e.parse::<IpAddr>() {
                list.nets.push(IpNet::from(ip));
            } else if valid_host_pattern(e) {
                list.hosts.push(e.to_ascii_lowercase());
            } else {
                return Err(format!(
                    "trigger_allowed_targets: {e:?} is not a host name (jenkins.corp.example, *.corp.example), an address or a network (10.1.0.0/16), or *"
                ));
            }
        }
        Ok(list)
    }

    pub fn is_empty(&self) -> bool {
        !self.any && self.nets.is_empty() && self.hosts.is_empty()
    }

    /// Whether the host name itself is listed (then any address it resolves to is allowed,
    /// except the metadata ones).
    pub fn host_listed(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        self.any
            || self.hosts.iter().any(|p| match p.strip_prefix("*.") {
                Some(suffix) => host.len() > suffix.len() && host.ends_with(&format!(".{suffix}")),
                None => *p == host,
            })
    }

    /// Whether a connection to `ip` for a URL naming `host` is allowed.
    /// Refusals name the address only when the URL did (a repository admin must not learn
    /// what internal names resolve to).
    pub fn permits(&self, host: &str, ip: IpAddr) -> Result<(), String> {
        let literal = host == ip.to_string() || host.trim_matches(['[', ']']) == ip.to_string();
        if let Some(why) = always_refused(ip) {
            return Err(if literal {
                format!("{ip} is {why}; Kura never sends triggers there")
            } else {
                format!("{host} resolves to {why}; Kura never sends triggers there")
            });
        }
        if self.host_listed(host) || self.nets.iter().any(|n| n.contains(&ip)) {
            return Ok(());
        }
        if self.is_empty() {
            return Err(
                "no webhook target is allowed yet: a site admin sets trigger_allowed_targets (KURA_TRIGGER_ALLOWED_TARGETS), e.g. jenkins.corp.example,10.1.0.0/16"
                    .to_string(),
            );
        }
        if literal {
            Err(format!(
                "{ip} is not in trigger_allowed_targets (KURA_TRIGGER_ALLOWED_TARGETS); a site admin can add it"
            ))
        } else {
            Err(format!(
                "{host} resolves to an address that trigger_allowed_targets (KURA_TRIGGER_ALLOWED_TARGETS) does not allow; a site admin can add the host or its network"
            ))
        }
    }
}

/// Metadata and other addresses no webhook may reach, whatever the list says.
fn always_refused(ip: IpAddr) -> Option<&'static str> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    match ip {
        IpAddr::V4(v4) => {
            if v4.is_link_local() {
                // 169.254.169.254 (EC2 metadata), 169.254.170.2 (ECS task metadata and credentials)
                Some("a link-local (instance or task metadata) address")
            } else if v4.is_unspecified() || v4.is_broadcast() || v4.is_multicast() {
                Some("not a host address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let seg = v6.segments();
            if seg[0] == 0xfd00 && seg[1] == 0x0ec2 {
                Some("an instance metadata address (fd00:ec2::/32)")
            } else if (seg[0] & 0xffc0) == 0xfe80 {
                Some("a link-local address")
            } else if v6.is_unspecified() || v6.is_multicast() {
                Some("not a host address")
            } else {
                None
            }
        }
    }
}

fn valid_host_pattern(e: &str) -> bool {
    let name = e.strip_prefix("*.").unwrap_or(e);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !l.starts_with('-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(entries: &[&str]) -> AllowList {
        AllowList::parse(&entries.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn names_networks_and_metadata() {
        let l = list(&[
            "jenkins.corp.example",
            "*.build.example",
            "10.1.0.0/16",
            "127.0.0.1",
        ]);
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(
            l.permits("jenkins.corp.example", ip("10.9.9.9")).is_ok(),
            "listed name"
        );
        assert!(
            l.permits("JENKINS.corp.example.", ip("10.9.9.9")).is_ok(),
            "case and root dot"
        );
        assert!(
            l.permits("ci.build.example", ip("192.168.1.1")).is_ok(),
            "wildcard"
        );
        assert!(
            l.permits("build.example", ip("192.168.1.1")).is_err(),
            "wildcard needs a label"
        );
        assert!(
            l.permits("other.example", ip("10.1.2.3")).is_ok(),
            "address in a network"
        );
        let e = l.permits("other.example", ip("10.2.0.1")).unwrap_err();
        assert!(
            e.contains("other.example resolves to an address that") && !e.contains("10.2"),
            "{e}"
        );
        assert!(
            l.permits("127.0.0.1", ip("127.0.0.1")).is_ok(),
            "single address"
        );
        let e = l
            .permits("jenkins.corp.example", ip("169.254.169.254"))
            .unwrap_err();
        assert!(e.contains("metadata"), "{e}");
        assert!(
            l.permits("x", ip("169.254.170.2")).is_err(),
            "ECS task metadata"
        );
        assert!(
            l.permits("x", ip("fd00:ec2::254")).is_err(),
            "IPv6 metadata"
        );
        assert!(
            l.permits("x", ip("::ffff:169.254.169.254")).is_err(),
            "mapped metadata"
        );
        let any = list(&["*"]);
        assert!(any.permits("a.b", ip("8.8.8.8")).is_ok());
        assert!(
            any.permits("a.b", ip("169.254.169.254")).is_err(),
            "* still excludes metadata"
        );
        let none = list(&[]);
        assert!(none
            .permits("a", ip("10.0.0.1"))
            .unwrap_err()
            .contains("KURA_TRIGGER_ALLOWED_TARGETS"));
        assert!(AllowList::parse(&["http://x".into()]).is_err());
        assert!(AllowList::parse(&["10.0.0.0/33".into()]).is_err());
    }
}
