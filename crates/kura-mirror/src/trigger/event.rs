//! The event of one pushed ref update, built once from the repository with git (commits and
//! changed paths, both bounded) and kept with the delivery, and its three renderings: a JSON
//! push event close to GitHub's and GitLab's, a Mattermost/Slack message, and the `detail` of
//! an EventBridge event.

use std::process::Stdio;
use std::time::Duration;

use kura_git::RepoStore;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;

/// At most this many commits are listed (the total is counted).
pub const MAX_COMMITS: usize = 20;
/// At most this many changed paths, and this many bytes of them (EventBridge takes 256 KiB).
pub const MAX_PATHS: usize = 1000;
const MAX_PATH_BYTES: usize = 64 * 1024;
const MAX_MESSAGE: usize = 2048;
const GIT_TIMEOUT: Duration = Duration::from_secs(30);
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Commit {
    pub id: String,
    pub title: String,
    pub message: String,
    pub author_name: String,
    pub author_email: String,
    /// RFC 3339, as git prints `%aI`.
    pub timestamp: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PushEvent {
    /// `namespace/name`.
    pub repository: String,
    pub default_branch: String,
    #[serde(rename = "ref")]
    pub ref_name: String,
    pub before: String,
    pub after: String,
    pub created: bool,
    pub deleted: bool,
    pub forced: bool,
    pub pusher: String,
    /// Unix seconds of the push.
    pub pushed_at: i64,
    pub commits: Vec<Commit>,
    pub total_commits: u64,
    pub changed_paths: Vec<String>,
    pub changed_paths_truncated: bool,
}

fn is_zero(oid: &str) -> bool {
    !oid.is_empty() && oid.bytes().all(|b| b == b'0')
}

impl PushEvent {
    pub fn branch(&self) -> Option<&str> {
        self.ref_name.strip_prefix("refs/heads/")
    }
    pub fn tag(&self) -> Option<&str> {
        self.ref_name.strip_prefix("refs/tags/")
    }
    pub fn ref_type(&self) -> &'static str {
        if self.branch().is_some() {
            "branch"
        } else if self.tag().is_some() {
            "tag"
        } else {
            "other"
        }
    }
    fn short_ref(&self) -> &str {
        self.branch().or(self.tag()).unwrap_or(&self.ref_name)
    }
    fn time(&self) -> String {
        humantime::format_rfc3339_seconds(
            std::time::UNIX_EPOCH + Duration::from_secs(self.pushed_at.max(0) as u64),
        )
        .to_string()
    }
    fn commits_truncated(&self) -> bool {
        (self.commits.len() as u64) < self.total_commits
    }

    /// The webhook `json` format: GitHub's and GitLab's push-event names where they agree
    /// (`ref`, `before`, `after`, `commits`, `repository.full_name`, `pusher.name`,
    /// `total_commits_count`), plus Kura's `changed_paths`.
    pub fn webhook_json(&self, urls: &Links) -> Value {
        let (ns, name) = self
            .repository
            .split_once('/')
            .unwrap_or(("", &self.repository));
        let commit = |c: &Commit| {
            json!({
                "id": c.id,
                "title": c.title,
                "message": c.message,
                "timestamp": c.timestamp,
                "url": urls.commit(&self.repository, &c.id),
                "author": {"name": c.author_name, "email": c.author_email},
            })
        };
        let mut v = json!({
            "object_kind": "push",
            "event_name": self.ref_type_event(),
            "ref": self.ref_name,
            "ref_type": self.ref_type(),
            "before": self.before,
            "after": self.after,
            "checkout_sha": if self.deleted { Value::Null } else { json!(self.after) },
            "created": self.created,
            "deleted": self.deleted,
            "forced": self.forced,
            "pusher": {"name": self.pusher},
            "user_username": self.pusher,
            "pushed_at": self.pushed_at,
            "time": self.time(),
            "repository": {
                "full_name": self.repository,
                "namespace": ns,
                "name": name,
                "default_branch": self.default_branch,
                "clone_url": urls.clone(&self.repository),
                "html_url": urls.page(&self.repository),
            },
            "commits": self.commits.iter().map(commit).collect::<Vec<_>>(),
            "head_commit": self.commits.first().map(commit),
            "total_commits_count": self.total_commits,
            "commits_truncated": self.commits_truncated(),
            "changed_paths": self.changed_paths,
            "changed_paths_truncated": self.changed_paths_truncated,
        });
        if let Some(b) = self.branch() {
            v["branch"] = json!(b);
        }
        if let Some(t) = self.tag() {
            v["tag"] = json!(t);
        }
        v
    }

    fn ref_type_event(&self) -> &'static str {
        if self.tag().is_some() {
            "tag_push"
        } else {
            "push"
        }
    }

    /// EventBridge's `detail`: flat strings where rules match (`repository`, `ref`,
    /// `changed_paths` with prefix matching). An entry may be 256 KB: paths, then commits are
    /// dropped (and marked truncated) until the detail fits with room for the envelope.
    pub fn eventbridge_detail(&self, delivery: i64, urls: &Links) -> Value {
        const MAX_DETAIL: usize = 200 * 1024;
        let mut e = self.clone();
        loop {
            let d = e.detail_value(delivery, urls);
            let size = d.to_string().len();
            if size <= MAX_DETAIL {
                return d;
            }
            if !e.changed_paths.is_empty() {
                let keep = e.changed_paths.len() / 2;
                e.changed_paths.truncate(keep);
                e.changed_paths_truncated = true;
            } else if !e.commits.is_empty() {
                let keep = e.commits.len() / 2;
                e.commits.truncate(keep);
            } else {
                return d;
            }
        }
    }

    fn detail_value(&self, delivery: i64, urls: &Links) -> Value {
        json!({
            "delivery": delivery.to_string(),
            "repository": self.repository,
            "ref": self.ref_name,
            "ref_type": self.ref_type(),
            "branch": self.branch(),
            "tag": self.tag(),
            "before": self.before,
            "after": self.after,
            "created": self.created,
            "deleted": self.deleted,
            "forced": self.forced,
            "pusher": self.pusher,
            "time": self.time(),
            "clone_url": urls.clone(&self.repository),
            "commits": self.commits.iter().map(|c| json!({
                "id": c.id, "title": c.title, "author": c.author_name, "timestamp": c.timestamp,
            })).collect::<Vec<_>>(),
            "total_commits": self.total_commits,
            "commits_truncated": self.commits_truncated(),
            "changed_paths": self.changed_paths,
            "changed_paths_truncated": self.changed_paths_truncated,
        })
    }

    /// A Mattermost / Slack incoming-webhook message. Names and titles come from the pusher:
    /// they are escaped so that they cannot link, format or mention (`@channel`).
    pub fn mattermost(&self, urls: &Links) -> Value {
        let short = |id: &str| id.chars().take(7).collect::<String>();
        let r = plain(self.short_ref());
        let what = match (self.ref_type(), self.created, self.deleted) {
            ("tag", _, true) => format!("deleted tag {r}"),
            ("tag", _, _) => format!("pushed tag {r} ({})", short(&self.after)),
            (_, _, true) => format!("deleted branch {r}"),
            (_, true, _) => format!(
                "created branch {r} with {} commit{}",
                self.total_commits,
                if self.total_commits == 1 { "" } else { "s" }
            ),
            _ => format!(
                "pushed {} commit{} to {r}{} ({}..{})",
                self.total_commits,
                if self.total_commits == 1 { "" } else { "s" },
                if self.forced { " (forced)" } else { "" },
                short(&self.before),
                short(&self.after)
            ),
        };
        let who = plain(&self.pusher);
        let repo = plain(&self.repository);
        let mut text = match urls.page(&self.repository) {
            Some(url) => format!("{who} {what} in [{repo}]({url})"),
            None => format!("{who} {what} in {repo}"),
        };
        for c in self.commits.iter().take(10) {
            let title = plain(&c.title);
            let author = plain(&c.author_name);
            match urls.commit(&self.repository, &c.id) {
                Some(u) => {
                    text.push_str(&format!("\n- [`{}`]({u}) {title} ({author})", short(&c.id)))
                }
                None => text.push_str(&format!("\n- `{}` {title} ({author})", short(&c.id))),
            }
        }
        let listed = self.commits.len().min(10) as u64;
        if self.total_commits > listed && !self.deleted {
            text.push_str(&format!("\n- … and {} more", self.total_commits - listed));
        }
        json!({"text": text, "username": "Kura"})
    }
}

/// Text from a push (names, titles, refs) for a Markdown chat message: Markdown and Slack's
/// `<...>` syntax escaped, `@` kept from mentioning (a zero-width space after it), one line.
fn plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars().take(300) {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '@' => out.push_str("@\u{200b}"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '(' | ')' | '#' | '~' | '|' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

/// Where the repository's pages and clone URL are: asked once per event sent (the server's
/// address is known only once it listens), then [`Links`] renders every link from that.
#[derive(Clone)]
pub struct Urls {
    pub base: std::sync::Arc<dyn Fn() -> Option<String> + Send + Sync>,
}

impl Urls {
    pub fn now(&self) -> Links {
        Links {
            base: (self.base)().map(|b| b.trim_end_matches('/').to_string()),
        }
    }
}

/// The links of one rendering.
pub struct Links {
    base: Option<String>,
}

impl Links {
    fn page(&self, repo: &str) -> Option<String> {
        self.base.as_ref().map(|b| format!("{b}/{repo}"))
    }
    fn clone(&self, repo: &str) -> Option<String> {
        self.base.as_ref().map(|b| format!("{b}/{repo}.git"))
    }
    fn commit(&self, repo: &str, id: &str) -> Option<String> {
        self.page(repo).map(|p| format!("{p}/commit/{id}"))
    }
}

/// What the event is built from: the delivery's ref update and push.
pub struct Update<'a> {
    pub repo_id: i64,
    pub repository: &'a str,
    pub default_branch: &'a str,
    pub ref_name: &'a str,
    pub before: &'a str,
    pub after: &'a str,
    pub pusher: &'a str,
    pub pushed_at: i64,
}

/// Builds the event with git. Commits: those reachable from `after` and from no other ref
/// (new to the repository), or `before..after`; changed paths: `before..after`, or for a new
/// branch against where it leaves the default branch (all files for a first push).
pub async fn build(store: &RepoStore, u: &Update<'_>) -> Result<PushEvent, String> {
    let git = Git {
        store,
        repo_id: u.repo_id,
    };
    let created = is_zero(u.before);
    let deleted = is_zero(u.after);
    let mut ev = PushEvent {
        repository: u.repository.to_string(),
        default_branch: u.default_branch.to_string(),
        ref_name: u.ref_name.to_string(),
        before: u.before.to_string(),
        after: u.after.to_string(),
        created,
        deleted,
        forced: false,
        pusher: u.pusher.to_string(),
        pushed_at: u.pushed_at,
        commits: Vec::new(),
        total_commits: 0,
        changed_paths: Vec::new(),
        changed_paths_truncated: false,
    };
    if deleted {
        return Ok(ev);
    }
    let is_tag = u.ref_name.starts_with("refs/tags/");
    // A tag may name a tree or a blob (then there is no commit to list), and an old commit
    // may be gone: what git cannot answer is left out, never an error that would hold the
    // trigger's queue; unknown changed paths are marked truncated (path filters let it pass).
    let peel = [
        "rev-parse".to_string(),
        "--verify".into(),
        "--quiet".into(),
        format!("{}^{{commit}}", u.after),
    ];
    let commit = match git.run(&peel, 256).await {
        Ok((s, _)) if is_object_id(s.trim()) => s.trim().to_string(),
        _ => {
            ev.changed_paths_truncated = !is_tag;
            return Ok(ev);
        }
    };
    let range: Vec<String> = if is_tag {
        vec!["--no-walk".into(), commit.clone()]
    } else if created {
        vec![
            commit.clone(),
            "--not".into(),
            format!("--exclude={}", u.ref_name),
            "--exclude=HEAD".into(),
            "--all".into(),
        ]
    } else {
        ev.forced = !git.is_ancestor(u.before, &commit).await;
        vec![commit.clone(), format!("^{}", u.before)]
    };
    let mut log = vec![
        "log".to_string(),
        "-z".into(),
        format!("--max-count={MAX_COMMITS}"),
        "--format=%H%x1f%an%x1f%ae%x1f%aI%x1f%B".into(),
    ];
    log.extend(range.iter().cloned());
    match git.run(&log, 4 * 1024 * 1024).await {
        Ok((text, _)) => ev.commits = parse_log(&text),
        Err(e) => {
            tracing::warn!(error = %e, repo = u.repository, r#ref = u.ref_name, "cannot list the pushed commits; the event has none");
            ev.changed_paths_truncated = !is_tag;
            return Ok(ev);
        }
    }
    ev.total_commits = ev.commits.len() as u64;
    if is_tag {
        return Ok(ev);
    }
    let mut count = vec!["rev-list".to_string(), "--count".into()];
    count.extend(range.iter().cloned());
    if let Ok((n, _)) = git.run(&count, 64).await {
        ev.total_commits = n.trim().parse().unwrap_or(ev.total_commits);
    }
    let base = if !created {
        u.before.to_string()
    } else if u.ref_name != format!("refs/heads/{}", u.default_branch) {
        let default = format!("refs/heads/{}", u.default_branch);
        match git
            .run(&["merge-base".into(), default, u.after.to_string()], 256)
            .await
        {
            Ok((s, _)) if !s.trim().is_empty() => s.trim().to_string(),
            _ => EMPTY_TREE.to_string(),
        }
    } else {
        EMPTY_TREE.to_string()
    };
    let diff = [
        "diff".to_string(),
        "--name-only".into(),
        "--no-renames".into(),
        "-z".into(),
        base,
        commit,
    ];
    match git.run(&diff, MAX_PATH_BYTES).await {
        Ok((out, cut)) => {
            let mut paths: Vec<String> = out
                .split('\0')
                .filter(|p| !p.is_empty())
                .map(String::from)
                .collect();
            // A cut-off last entry may be partial.
            if cut {
                paths.pop();
            }
            ev.changed_paths_truncated = cut || paths.len() > MAX_PATHS;
            paths.truncate(MAX_PATHS);
            ev.changed_paths = paths;
        }
        // Unknown (e.g. the old commit is gone): say so; path filters then let it through.
        Err(_) => ev.changed_paths_truncated = true,
    }
    Ok(ev)
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// `git log -z` records (NUL cannot be in a commit); a record whose first field is not an
/// object id is not a commit (a message cannot forge one).
fn parse_log(text: &str) -> Vec<Commit> {
    text.split('\0')
        .filter_map(|rec| {
            let rec = rec.trim_start_matches('\n');
            let mut f = rec.splitn(5, '\x1f');
            let id = f.next()?.trim().to_string();
            if !is_object_id(&id) {
                return None;
            }
            let author_name = f.next()?.to_string();
            let author_email = f.next()?.to_string();
            let timestamp = f.next()?.to_string();
            let message: String = f
                .next()
                .unwrap_or("")
                .trim_end()
                .chars()
                .take(MAX_MESSAGE)
                .collect();
            let title = message.lines().next().unwrap_or("").to_string();
            Some(Commit {
                id,
                title,
                message,
                author_name,
                author_email,
                timestamp,
            })
        })
        .take(MAX_COMMITS)
        .collect()
}

struct Git<'a> {
    store: &'a RepoStore,
    repo_id: i64,
}

impl Git<'_> {
    fn cmd(&self, args: &[String]) -> tokio::process::Command {
        let mut cmd = self.store.git();
        cmd.arg("--git-dir")
            .arg(self.store.path_of(self.repo_id))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        cmd
    }

    /// Output up to `cap` bytes (`true` when cut there; git is then stopped).
    async fn run(&self, args: &[String], cap: usize) -> Result<(String, bool), String> {
        let what = args.first().cloned().unwrap_or_default();
        let mut child = self
            .cmd(args)
            .spawn()
            .map_err(|e| format!("cannot run git {what}: {e}"))?;
        let mut out = child.stdout.take().ok_or("no git output")?;
        let read = async {
            let mut buf = Vec::new();
            let mut limited = (&mut out).take(cap as u64 + 1);
            limited.read_to_end(&mut buf).await.map(|_| buf)
        };
        let buf = tokio::time::timeout(GIT_TIMEOUT, read)
            .await
            .map_err(|_| format!("git {what} took longer than {}s", GIT_TIMEOUT.as_secs()))?
            .map_err(|e| format!("cannot read git {what}: {e}"))?;
        let cut = buf.len() > cap;
        if cut {
            let _ = child.kill().await;
            let mut buf = buf;
            buf.truncate(cap);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), true));
        }
        let status = tokio::time::timeout(GIT_TIMEOUT, child.wait())
            .await
            .map_err(|_| format!("git {what} did not exit"))?
            .map_err(|e| format!("git {what}: {e}"))?;
        if !status.success() {
            return Err(format!("git {what} failed ({status})"));
        }
        Ok((String::from_utf8_lossy(&buf).into_owned(), false))
    }

    async fn is_ancestor(&self, a: &str, b: &str) -> bool {
        let args = [
            "merge-base".to_string(),
            "--is-ancestor".into(),
            a.into(),
            b.into(),
        ];
        let mut cmd = self.cmd(&args);
        cmd.stdout(Stdio::null());
        matches!(
            tokio::time::timeout(GIT_TIMEOUT, cmd.status()).await,
            Ok(Ok(s)) if s.success()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_text_cannot_mention_link_or_format() {
        assert_eq!(
            plain("@channel <!here> [x](http://e) *b*"),
            "@\u{200b}channel &lt;\\!here&gt; \\[x\\]\\(http://e\\) \\*b\\*"
        );
        assert_eq!(plain("a\nb"), "a b");
    }

    #[test]
    fn log_records_parse() {
        let a = "a".repeat(40);
        let d = "d".repeat(40);
        let forged = format!("{}\x1fMallory\x1fm@x\x1fT\x1ffake", "f".repeat(40));
        let text = format!("{a}\x1fAda\x1fada@x\x1f2026-01-01T00:00:00+00:00\x1fTitle line\n\nBody\n\x1e{forged}\n\0{d}\x1fBo\x1fbo@x\x1f2026-01-02T00:00:00+00:00\x1fOnly\n\0not-an-id\x1fx\x1fy\x1fz\x1fw\0");
        let c = parse_log(&text);
        assert_eq!(
            c.len(),
            2,
            "separators inside a message forge nothing: {c:?}"
        );
        assert_eq!(c[0].id, a);
        assert!(
            c[0].message.contains("Mallory"),
            "the forged record stays in the message"
        );
        assert_eq!(c[0].title, "Title line");
        assert_eq!(c[1].id, d);
        assert_eq!(c[1].author_email, "bo@x");
    }
}
