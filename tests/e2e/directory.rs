//! Sign-in with the company directory, against real directory servers on loopback: OpenLDAP
//! (StartTLS and LDAPS, nested groups, a locked user) and a Samba AD domain controller
//! (userAccountControl, the in-chain rule, `user@realm` and `DOMAIN\user`, referrals).

use std::time::Duration;

use crate::harness::*;

/// The private repository `payments/app`, which members of payments-dev may push to.
fn payments_repo(k: &Kura) -> String {
    k.cli_ok(&["group", "add", "payments"]);
    k.cli_ok(&["repo", "create", "payments/app"]);
    "payments/app.git".to_string()
}

/// `kura_directory_checks_total` from `/metrics` (`admin`: a token of a site admin).
fn directory_checks(k: &Kura, admin: &str) -> u64 {
    let r = k.req("GET", "/metrics").bearer(admin).send();
    assert_eq!(r.status, 200, "{}", r.describe());
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix("kura_directory_checks_total "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no directory counter in /metrics:\n{}", r.text()))
}

fn info_refs(k: &Kura, user: &str, password: &str) -> Resp {
    k.req("GET", "/payments/app.git/info/refs?service=git-upload-pack")
        .basic(user, password)
        .send()
}

/// The line of `kura user list` for `name`.
fn user_line(k: &Kura, name: &str) -> String {
    let list = k.cli_ok(&["user", "list"]);
    list.lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("{name} not in `kura user list`:\n{list}"))
        .to_string()
}

/// Clone and push with the directory password and with a token; the pages; a wrong, empty
/// or injected password; a local/directory name clash; what the CLI shows.
fn sign_in_and_git(k: &Kura, d: &Dir) {
    let path = payments_repo(k);
    let (login, pw) = d.new_user("dev", &["payments-dev"]);

    // git with the directory password: the first sign-in creates the user with the role
    let url = k.url_auth(&login, &pw, &path);
    let src = k.init_repo("src", &url);
    let c1 = k.commit(&src, "a.txt", "a\n", "first");
    let admin = k.token("admin", "admin");
    let checks = directory_checks(k, &admin);
    k.git_ok(&src, &["push", "-q", "origin", "main"]);
    let clone = k.clone_repo(&url, "clone");
    assert_eq!(k.rev(&clone, "HEAD"), c1);
    // a push and a clone are several requests each: the check is remembered
    assert!(
        directory_checks(k, &admin) - checks <= 1,
        "a push and a clone within a minute cost at most one directory check"
    );
    let line = user_line(k, &login);
    assert!(line.contains("directory"), "FROM says directory: {line}");
    assert_contains(&user_line(k, "admin"), "local", "the first admin is local");

    // a token of the directory user works for git too
    let tok = k.token(&login, "write");
    let tok_url = k.url_auth(&login, &tok, &path);
    let c2 = k.commit(&src, "b.txt", "b\n", "second");
    k.git_ok(&src, &["push", "-q", &tok_url, "main"]);
    assert_eq!(
        k.remote_ref(&tok_url, "refs/heads/main").as_deref(),
        Some(c2.as_str())
    );

    // wrong, empty and injected passwords or logins
    let r = info_refs(k, &login, "not-the-password");
    assert_eq!(r.status, 401, "wrong password: {}", r.describe());
    assert_contains(&r.text(), "wrong user name or password", "wrong password");
    let r = info_refs(k, &login, "");
    assert_eq!(r.status, 401, "empty password is refused: {}", r.describe());
    for injected in [
        "*",
        "*)(uid=*",
        "*)(|(objectClass=*",
        &format!("{login})(cn=*"),
    ] {
        let r = info_refs(k, injected, &pw);
        assert_eq!(
            r.status,
            401,
            "login {injected:?} matches nobody: {}",
            r.describe()
        );
    }
    let err = k.git_err(
        &k.work,
        &["ls-remote", &k.url_auth(&login, "wrong-pass", &path)],
    );
    assert_contains(&err, "wrong user name or password", "git shows why");

    // the pages: sign in with the directory password; no password form for directory users
    let mut br = Browser::new(k);
    let r = br.sign_in(&login, &pw);
    assert_eq!(r.status, 303, "web sign-in: {}", r.describe());
    let settings = br.get("/settings");
    assert_eq!(settings.status, 200, "{}", settings.describe());
    assert_contains(
        &settings.text(),
        "company directory",
        "settings explain the password",
    );
    let r = br.get("/payments/app");
    assert_eq!(
        r.status,
        200,
        "the member sees the repository: {}",
        r.describe()
    );
    let mut br2 = Browser::new(k);
    let r = br2.sign_in(&login, "not-the-password");
    assert_ne!(
        r.status,
        303,
        "a wrong password does not sign in: {}",
        r.describe()
    );

    // changing the password in Kura is refused: the directory owns it
    let err = k.cli_err_stdin(
        &["user", "passwd", &login, "--password-stdin"],
        "new-password-1\n",
    );
    assert_contains(&err, "comes from the company directory", "passwd refused");

    // a local user with the name of a directory user: reported, not merged
    let (twin, twin_pw) = d.new_user("twin", &["payments-dev"]);
    k.add_user(&twin, "local-password-1");
    let r = info_refs(k, &twin, &twin_pw);
    assert_eq!(r.status, 409, "name clash: {}", r.describe());
    assert_contains(
        &r.text(),
        "also a user in the company directory",
        "clash message",
    );
    let r = info_refs(k, &twin, "local-password-1");
    assert_ne!(
        r.status,
        401,
        "the local password still works: {}",
        r.describe()
    );

    // kura ldap test shows each step and the roles, and fails on a wrong password
    let out = k.cli_ok_stdin(&["ldap", "test", &login], &format!("{pw}\n"));
    for step in [
        "connect",
        "service bind",
        "search",
        "user bind: ok",
        "groups",
        "write in group payments",
    ] {
        assert_contains(&out, step, "kura ldap test");
    }
    let out = k
        .cli(&["ldap", "test", &login])
        .stdin("wrong\n")
        .run()
        .assert_err();
    assert_contains(
        &out.all(),
        "user bind: refused",
        "the failing step is shown",
    );
    assert!(!out.all().contains("wrong\n"), "the password is not echoed");
    // the service account's password appears nowhere
    assert!(
        !k.logs().contains(d.get("BIND_PASSWORD")),
        "no bind password in the log"
    );
    assert!(
        !k.cli_ok(&["config"]).contains(d.get("BIND_PASSWORD")),
        "kura config redacts it"
    );
}

/// Disabled in the directory, removed from a group, nested groups, the site-admin group,
/// all taking effect with `kura ldap sync`.
fn roles_follow_the_directory(k: &Kura, d: &Dir) {
    let path = payments_repo(k);
    let (dev, dev_pw) = d.new_user("dev", &["payments-dev"]);
    let (lead, lead_pw) = d.new_user("lead", &["payments-leads"]);
    let (boss, boss_pw) = d.new_user("boss", &["kura-admins"]);
    let (gone, gone_pw) = d.new_user("gone", &["payments-dev"]);

    // nested: payments-leads is a member of payments-dev
    let lead_url = k.url_auth(&lead, &lead_pw, &path);
    let src = k.init_repo("src", &lead_url);
    k.commit(&src, "a.txt", "a\n", "first");
    k.git_ok(&src, &["push", "-q", "origin", "main"]);

    // site admin through kura-admins (the API takes tokens)
    assert_eq!(
        info_refs(k, &boss, &boss_pw).status,
        200,
        "boss signs in (a site admin reads everything)"
    );
    let boss_tok = k.token(&boss, "admin");
    let r = k.req("GET", "/api/v1/users").bearer(&boss_tok).send();
    assert_eq!(
        r.status,
        200,
        "a kura-admins member is a site admin: {}",
        r.describe()
    );
    assert_contains(&user_line(k, &boss), " yes ", "ADMIN column");

    // dev signs in and keeps a token
    assert_eq!(info_refs(k, &dev, &dev_pw).status, 200);
    let dev_tok = k.token(&dev, "write");
    assert_eq!(info_refs(k, &dev, &dev_tok).status, 200);
    // gone signs in once, then the directory disables them
    assert_eq!(info_refs(k, &gone, &gone_pw).status, 200);
    let gone_tok = k.token(&gone, "read");

    d.ctl("remove-member", &["payments-dev", &dev]);
    d.ctl("remove-member", &["kura-admins", &boss]);
    d.ctl("disable", &[&gone]);
    let out = k.cli_ok(&["ldap", "sync"]);
    assert_contains(
        &out,
        &format!("{dev}: removed from payments"),
        "sync report",
    );
    assert_contains(
        &out,
        &format!("{boss}: no longer a site admin"),
        "sync report",
    );
    assert_contains(&out, &gone, "sync report names the disabled user");
    assert_contains(&out, "1 disabled", "sync summary");

    // at once, including on the remembered sign-in and the token
    let r = info_refs(k, &dev, &dev_pw);
    assert_eq!(
        r.status,
        404,
        "dev lost the role (a private repository is hidden): {}",
        r.describe()
    );
    let r = info_refs(k, &dev, &dev_tok);
    assert_eq!(r.status, 404, "dev's token lost it too: {}", r.describe());
    let r = k.req("GET", "/api/v1/users").bearer(&boss_tok).send();
    assert_eq!(r.status, 403, "no longer a site admin: {}", r.describe());
    let r = info_refs(k, &gone, &gone_pw);
    if d.kind == DirKind::Ad {
        // AD still finds the entry and says it is disabled
        assert_eq!(r.status, 403, "disabled user: {}", r.describe());
        assert_contains(&r.text(), "disabled", "says why");
    } else {
        // user_filter no longer finds the entry: an unknown login, whose password nobody checked
        assert_eq!(r.status, 401, "disabled user: {}", r.describe());
    }
    let r = info_refs(k, &gone, &gone_tok);
    assert_eq!(r.status, 403, "a disabled user's token: {}", r.describe());
    assert_contains(&user_line(k, &gone), "by directory", "kura user list");
    let err = k.cli_err(&["user", "enable", &gone]);
    assert_contains(&err, "disabled in the company directory", "enable explains");

    // back in the group: the role comes back with the next sign-in
    d.ctl("add-member", &["payments-dev", &dev]);
    let out = k.cli_ok(&["ldap", "sync"]);
    assert_contains(
        &out,
        &format!("{dev}: write in payments"),
        "sync gives the role back",
    );
    assert_eq!(info_refs(k, &dev, &dev_pw).status, 200);
}

/// Down (too slow: the server stops answering) and back; failover; an unknown CA.
fn outage_failover_and_tls(b: Backend) {
    let d = private_slapd();
    let closed = format!("ldaps://127.0.0.1:{}", free_port());
    // failover: the first URL does not answer
    let urls = [closed.clone(), d.get("LDAPS_URL").to_string()];
    let k = d.kura_with(
        Kura::builder(b).env("KURA_AUTH_MAX_FAILURES", "3"),
        &d.ldap_toml(Some(&urls), "cache_ttl = \"0s\""),
    );
    let path = payments_repo(&k);
    let (dev, dev_pw) = d.new_user("dev", &["payments-dev"]);
    let r = info_refs(&k, &dev, &dev_pw);
    assert_eq!(
        r.status,
        200,
        "failover to the second URL: {}",
        r.describe()
    );
    let tok = k.token(&dev, "read");
    wait_until(
        Duration::from_secs(20),
        "readyz names the directory",
        || k.get("/readyz").text().contains("directory: ok"),
    );

    // the directory stops answering
    d.ctl("pause", &[]);
    for _ in 0..5 {
        let r = info_refs(&k, &dev, &dev_pw);
        assert_eq!(r.status, 503, "directory down: {}", r.describe());
        assert_contains(&r.text(), "directory is unavailable", "says what is wrong");
        assert!(
            r.header("retry-after").is_some(),
            "Retry-After: {}",
            r.describe()
        );
    }
    let err = k.git_err(&k.work, &["ls-remote", &k.url_auth(&dev, &dev_pw, &path)]);
    assert_contains(&err, "directory is unavailable", "git shows the reason");
    // local users, tokens and the load balancer's check are unaffected
    let r = info_refs(&k, "admin", ADMIN_PASSWORD);
    assert_eq!(r.status, 200, "the local admin works: {}", r.describe());
    assert_eq!(info_refs(&k, &dev, &tok).status, 200, "tokens work");
    wait_until(
        Duration::from_secs(30),
        "readyz says the directory is unavailable",
        || {
            let r = k.get("/readyz");
            assert_eq!(r.status, 200, "readyz stays 200: {}", r.describe());
            r.text().contains("directory: unavailable")
        },
    );

    // back: no throttle penalty for the outage (5 attempts > KURA_AUTH_MAX_FAILURES = 3)
    d.ctl("resume", &[]);
    let r = info_refs(&k, &dev, &dev_pw);
    assert_eq!(r.status, 200, "after the outage: {}", r.describe());
    // wrong passwords do count
    let mut last = 0;
    for _ in 0..5 {
        last = info_refs(&k, &dev, "wrong-password").status;
    }
    assert_eq!(
        last, 429,
        "wrong directory passwords are throttled like local ones"
    );
    drop(k);

    // a certificate from an unknown CA is refused, and `kura ldap test` says so
    let toml = d
        .ldap_toml(None, "")
        .replace(d.get("CA"), d.get("OTHER_CA"));
    let k = d.kura_with(Kura::builder(b), &toml);
    let r = info_refs(&k, &dev, &dev_pw);
    assert_eq!(r.status, 503, "untrusted certificate: {}", r.describe());
    let out = k
        .cli(&["ldap", "test", &dev])
        .stdin(format!("{dev_pw}\n"))
        .run()
        .assert_err();
    assert_contains(&out.all(), "ldap.ca_bundle", "names the setting to fix");
}

both! {
    fn openldap_sign_in_and_git(b: Backend) {
        let d = slapd();
        let k = d.kura(b);
        sign_in_and_git(&k, &d);
    }

    fn openldap_roles_follow_the_directory(b: Backend) {
        let d = slapd();
        let k = d.kura(b);
        roles_follow_the_directory(&k, &d);
    }

    fn active_directory_sign_in_and_git(b: Backend) {
        let d = samba_ad();
        let k = d.kura(b);
        sign_in_and_git(&k, &d);
    }

    fn active_directory_roles_follow_the_directory(b: Backend) {
        let d = samba_ad();
        let k = d.kura(b);
        roles_follow_the_directory(&k, &d);
    }

    fn directory_outage_failover_and_tls(b: Backend) {
        outage_failover_and_tls(b);
    }
}

/// AD specifics: disabled by userAccountControl, `user@realm` and `DOMAIN\user` for the
/// service account and for users (one Kura user either way), referrals in search results
/// (a search of the whole domain), StartTLS.
#[test]
fn active_directory_names_and_disabled_accounts() {
    let d = samba_ad();
    for bind in [
        d.get("BIND_DN").to_string(),
        format!("kura-svc@{}", d.get("REALM").to_lowercase()),
        format!("{}\\kura-svc", d.get("DOMAIN")),
    ] {
        // base = the whole domain: AD answers with referrals next to the entries
        let toml = d
            .ldap_toml(Some(&[d.get("LDAP_URL").to_string()]), "")
            .replace(&format!("{:?}", d.get("BIND_DN")), &format!("{bind:?}"))
            .replace(
                &format!("user_base = {:?}", d.get("USER_BASE")),
                &format!("user_base = {:?}", d.get("BASE")),
            );
        let k = d.kura_with(Kura::builder(Backend::Sqlite), &toml);
        payments_repo(&k);
        let (login, pw) = d.new_user("ad", &["payments-dev"]);
        let upn = format!("{login}@{}", d.get("REALM").to_lowercase());
        let down = format!("{}\\{login}", d.get("DOMAIN"));
        for name in [login.as_str(), upn.as_str(), down.as_str()] {
            let r = info_refs(&k, name, &pw);
            assert_eq!(
                r.status,
                200,
                "bind as {bind}, sign in as {name}: {}",
                r.describe()
            );
        }
        let list = k.cli_ok(&["user", "list"]);
        assert_eq!(
            list.lines().filter(|l| l.contains("directory")).count(),
            1,
            "three forms of one login make one Kura user:\n{list}"
        );
        // dave is disabled in AD (userAccountControl ACCOUNTDISABLE)
        let r = info_refs(&k, "dave", "Dave-Pass-1");
        assert_eq!(r.status, 403, "a disabled AD account: {}", r.describe());
        assert_contains(&r.text(), "disabled", "says why");
    }
}
