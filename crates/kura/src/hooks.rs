//! Commands git runs: the receive hooks and credential helpers. They print for git (hooks:
//! `remote:` lines) and never log secrets.

use std::io::{Read, Write};
use std::process::ExitCode;
use std::time::Duration;

pub fn run(name: &str) -> ExitCode {
    match name {
        "pre-receive" => ExitCode::from(kura_git::hook::pre_receive() as u8),
        "post-receive" => post_receive(),
        other => {
            eprintln!("error: unknown hook {other:?}");
            ExitCode::from(2)
        }
    }
}

/// Reports the push to the server, which queues the mirrors and answers what to tell the
/// pusher. The refs are already updated, so this never fails the push.
fn post_receive() -> ExitCode {
    let (Some(url), Some(token)) = (
        std::env::var_os("KURA_HOOK_URL"),
        std::env::var_os("KURA_HOOK_TOKEN"),
    ) else {
        // Outside a push through Kura there is no session: nothing to report.
        if std::env::var_os(kura_git::hook::POLICY_ENV).is_none() {
            eprintln!("kura hook post-receive is run by git during a push through Kura; it is not meant to be run by hand");
        }
        return ExitCode::SUCCESS;
    };
    let mut input = String::new();
    let _ = std::io::stdin().read_to_string(&mut input);
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(600))
        .build();
    let endpoint = format!("{}/-/internal/post-receive", url.to_string_lossy());
    match agent
        .post(&endpoint)
        .set(
            kura_server::post_receive::TOKEN_HEADER,
            &token.to_string_lossy(),
        )
        .send_string(&input)
    {
        Ok(resp) => {
            let text = resp.into_string().unwrap_or_default();
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
        }
        Err(e) => {
            println!("Kura could not record this push in its log or queue its mirrors ({e}); the push itself succeeded; mirrors catch up at the next push or with kura mirror sync");
        }
    }
    ExitCode::SUCCESS
}

pub fn credential_helper(kind: &str, operation: &str) -> ExitCode {
    let mut input = String::new();
    if std::io::stdin().read_to_string(&mut input).is_err() {
        return ExitCode::FAILURE;
    }
    match kind {
        "codecommit" => {
            let region = ["KURA_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("kura credential-helper: cannot start: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(kura_aws::credential_helper(
                operation,
                &input,
                region.as_deref(),
            )) {
                Ok(out) => {
                    print!("{out}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("kura credential-helper codecommit: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        // Kura's own mirror pushes: the credentials are in this process's environment only.
        "env" => {
            if operation == "get" {
                if let (Ok(u), Ok(p), Ok(url)) = (
                    std::env::var("KURA_MIRROR_USERNAME"),
                    std::env::var("KURA_MIRROR_PASSWORD"),
                    std::env::var("KURA_MIRROR_URL"),
                ) {
                    // Only for the mirror's own protocol and host.
                    let (scheme, rest) = url.split_once("://").unwrap_or(("", ""));
                    let host = rest.split('/').next().unwrap_or("");
                    let asked = |k: &str| {
                        input
                            .lines()
                            .find_map(|l| l.strip_prefix(k).and_then(|v| v.strip_prefix('=')))
                            .unwrap_or("")
                            .to_string()
                    };
                    if asked("protocol") == scheme && asked("host") == host {
                        print!("username={u}\npassword={p}\n");
                    }
                }
            }
            ExitCode::SUCCESS
        }
        other => {
            eprintln!("kura credential-helper: unknown kind {other:?}; use codecommit");
            ExitCode::from(2)
        }
    }
}
