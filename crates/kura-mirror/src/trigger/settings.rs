//! What a trigger delivers to and which pushes it wants: kept as JSON in the target's
//! `settings` column, checked when the trigger is added.

use serde::{Deserialize, Serialize};

use super::event::PushEvent;

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum TriggerKind {
    /// POST to the target URL.
    Webhook {
        #[serde(default)]
        format: WebhookFormat,
    },
    /// PutEvents on the target bus.
    Eventbridge { detail_type: String },
    /// StartPipelineExecution of the target pipeline.
    Codepipeline {
        #[serde(default)]
        variables: Vec<Variable>,
    },
}

impl TriggerKind {
    pub fn name(&self) -> &'static str {
        match self {
            TriggerKind::Webhook { .. } => "webhook",
            TriggerKind::Eventbridge { .. } => "eventbridge",
            TriggerKind::Codepipeline { .. } => "codepipeline",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum WebhookFormat {
    /// A push event close to GitHub's and GitLab's.
    #[default]
    Json,
    /// A Mattermost / Slack incoming-webhook message (`text`).
    Mattermost,
}

impl WebhookFormat {
    pub fn parse(s: &str) -> Result<WebhookFormat, String> {
        match s {
            "json" => Ok(WebhookFormat::Json),
            "mattermost" | "slack" => Ok(WebhookFormat::Mattermost),
            other => Err(format!("unknown format {other:?}: use json or mattermost")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Mattermost => "mattermost",
        }
    }
}

/// A CodePipeline variable; `value` may hold `{commit}`, `{before}`, `{ref}`, `{branch}`,
/// `{tag}`, `{pusher}` and `{repository}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Variable {
    pub name: String,
    pub value: String,
}

pub const PLACEHOLDERS: [&str; 7] = [
    "commit",
    "before",
    "ref",
    "branch",
    "tag",
    "pusher",
    "repository",
];

impl Variable {
    /// `NAME=VALUE`, with only known placeholders in VALUE.
    pub fn parse(s: &str) -> Result<Variable, String> {
        let Some((name, value)) = s.split_once('=') else {
            return Err(format!(
                "{s:?} is not NAME=VALUE: write e.g. COMMIT={{commit}}"
            ));
        };
        let name_ok = !name.is_empty()
            && name.len() <= 128
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "@-_".contains(c));
        if !name_ok {
            return Err(format!(
                "{name:?} is not a CodePipeline variable name (letters, digits, @ - _; at most 128)"
            ));
        }
        let mut rest = value;
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let Some(close) = after.find('}') else { break };
            let key = &after[..close];
            if !PLACEHOLDERS.contains(&key) {
                return Err(format!(
                    "unknown placeholder {{{key}}} in {name}: use {}",
                    PLACEHOLDERS.map(|p| format!("{{{p}}}")).join(", ")
                ));
            }
            rest = &after[close + 1..];
        }
        Ok(Variable {
            name: name.to_string(),
            value: value.to_string(),
        })
    }

    /// The value with the event's placeholders filled in (at most 1000 characters, as
    /// CodePipeline allows).
    pub fn render(&self, e: &PushEvent) -> String {
        let mut v = self.value.clone();
        for p in PLACEHOLDERS {
            let with = match p {
                "commit" => e.after.clone(),
                "before" => e.before.clone(),
                "ref" => e.ref_name.clone(),
                "branch" => e.branch().unwrap_or_default().to_string(),
                "tag" => e.tag().unwrap_or_default().to_string(),
                "pusher" => e.pusher.clone(),
                _ => e.repository.clone(),
            };
            v = v.replace(&format!("{{{p}}}"), &with);
        }
        v.chars().take(1000).collect()
    }
}

/// Which pushes a trigger wants. Branch and tag globs work as CI systems' do: with only
/// `branches` no tag push is sent, with only `tags` no branch push; `*` stays within one
/// path segment, `**` crosses them. Path globs: an event is sent when at least one changed
/// path matches `paths` (or `paths` is empty) and no `exclude_paths`; an event with no
/// changed paths (a tag, a deletion) passes `exclude_paths` alone but never `paths`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Filters {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub paths: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude_paths: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TriggerSettings {
    #[serde(flatten)]
    pub kind: TriggerKind,
    #[serde(flatten)]
    pub filters: Filters,
}

impl TriggerSettings {
    pub fn from_json(s: &str) -> Result<TriggerSettings, String> {
        serde_json::from_str(s).map_err(|e| {
            format!("unreadable trigger settings ({e}): remove the trigger and add it again")
        })
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

fn pattern(g: &str, what: &str) -> Result<glob::Pattern, String> {
    if g.is_empty() || g.chars().any(char::is_control) {
        return Err(format!("an empty or unprintable {what} glob"));
    }
    glob::Pattern::new(g).map_err(|e| {
        format!("{g:?} is not a {what} glob ({e}): write e.g. services/a/** or release/*")
    })
}

/// The same glob rule as protected branches and mirror branch filters (`*` stays within a
/// path segment, `**` crosses them).
fn any_match(globs: &[String], s: &str) -> bool {
    globs
        .iter()
        .any(|g| kura_git::policy::pattern_matches(g, s))
}

impl Filters {
    /// For people: `branches main; paths services/a/**`, or `every push`.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (what, globs) in [
            ("branches", &self.branches),
            ("tags", &self.tags),
            ("paths", &self.paths),
            ("excluding paths", &self.exclude_paths),
        ] {
            if !globs.is_empty() {
                parts.push(format!("{what} {}", globs.join(", ")));
            }
        }
        if parts.is_empty() {
            "every push".into()
        } else {
            parts.join("; ")
        }
    }

    /// Refuses globs that would never parse.
    pub fn check(&self) -> Result<(), String> {
        for g in &self.branches {
            pattern(g, "branch")?;
        }
        for g in &self.tags {
            pattern(g, "tag")?;
        }
        for g in self.paths.iter().chain(&self.exclude_paths) {
            pattern(g, "path")?;
        }
        Ok(())
    }

    /// `Err(why)` when the event is not for this trigger; `why` goes to the delivery log.
    pub fn decide(&self, e: &PushEvent) -> Result<(), String> {
        if let Some(branch) = e.branch() {
            if !self.branches.is_empty() && !any_match(&self.branches, branch) {
                return Err(format!(
                    "branch {branch} matches none of the branch filters ({})",
                    self.branches.join(", ")
                ));
            }
            if self.branches.is_empty() && !self.tags.is_empty() {
                return Err("a branch push; this trigger has tag filters only".into());
            }
        } else if let Some(tag) = e.tag() {
            if !self.tags.is_empty() && !any_match(&self.tags, tag) {
                return Err(format!(
                    "tag {tag} matches none of the tag filters ({})",
                    self.tags.join(", ")
                ));
            }
            if self.tags.is_empty() && !self.branches.is_empty() {
                return Err("a tag push; this trigger has branch filters only".into());
            }
        } else {
            return Err(format!("{} is neither a branch nor a tag", e.ref_name));
        }
        self.decide_paths(e)
    }

    /// `paths`: only events that change a matching file (so never a tag push or a deletion,
    /// which change none); `exclude_paths`: not events whose changed files are all excluded.
    fn decide_paths(&self, e: &PushEvent) -> Result<(), String> {
        if self.paths.is_empty() && self.exclude_paths.is_empty() {
            return Ok(());
        }
        if e.changed_paths_truncated {
            // Too many files to know: send rather than miss a build.
            return Ok(());
        }
        if e.changed_paths.is_empty() {
            if self.paths.is_empty() {
                return Ok(());
            }
            return Err(format!(
                "no changed paths (a tag, a deletion, or a branch created at an existing commit); this trigger wants paths {}",
                self.paths.join(", ")
            ));
        }
        let counted = e
            .changed_paths
            .iter()
            .filter(|p| self.paths.is_empty() || any_match(&self.paths, p))
            .filter(|p| !any_match(&self.exclude_paths, p))
            .count();
        if counted > 0 {
            return Ok(());
        }
        let mut why = format!(
            "none of the {} changed paths matches the path filters",
            e.changed_paths.len()
        );
        if !self.paths.is_empty() {
            why.push_str(&format!(" (paths {})", self.paths.join(", ")));
        }
        if !self.exclude_paths.is_empty() {
            why.push_str(&format!(" (excluding {})", self.exclude_paths.join(", ")));
        }
        Err(why)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(r: &str, paths: &[&str]) -> PushEvent {
        PushEvent {
            repository: "a/b".into(),
            default_branch: "main".into(),
            ref_name: r.into(),
            before: "1".repeat(40),
            after: "2".repeat(40),
            created: false,
            deleted: false,
            forced: false,
            pusher: "p".into(),
            pushed_at: 0,
            commits: vec![],
            total_commits: 0,
            changed_paths: paths.iter().map(|s| s.to_string()).collect(),
            changed_paths_truncated: false,
        }
    }

    fn f(branches: &[&str], tags: &[&str], paths: &[&str], exclude: &[&str]) -> Filters {
        let v = |x: &[&str]| x.iter().map(|s| s.to_string()).collect();
        Filters {
            branches: v(branches),
            tags: v(tags),
            paths: v(paths),
            exclude_paths: v(exclude),
        }
    }

    #[test]
    fn branch_tag_and_path_filters() {
        let main_a = event("refs/heads/main", &["services/a/x.go", "README.md"]);
        let main_b = event("refs/heads/main", &["services/b/y.go"]);
        let tag = event("refs/tags/v1.2", &[]);
        let feature = event("refs/heads/feature/x", &["services/a/x.go"]);
        let all = Filters::default();
        for e in [&main_a, &main_b, &tag, &feature] {
            assert!(all.decide(e).is_ok(), "no filters: everything");
        }
        let a = f(&[], &[], &["services/a/**"], &[]);
        assert!(a.decide(&main_a).is_ok());
        let why = a.decide(&main_b).unwrap_err();
        assert!(why.contains("none of the 1 changed paths"), "{why}");
        assert!(a.decide(&tag).unwrap_err().contains("no changed paths"));
        let main_only = f(&["main"], &[], &[], &[]);
        assert!(main_only.decide(&main_a).is_ok());
        assert!(main_only
            .decide(&feature)
            .unwrap_err()
            .contains("feature/x matches none"));
        assert!(main_only
            .decide(&tag)
            .unwrap_err()
            .contains("branch filters only"));
        assert!(
            f(&["feature/*"], &[], &[], &[]).decide(&feature).is_ok(),
            "* within a segment"
        );
        assert!(
            f(&["*"], &[], &[], &[]).decide(&feature).is_err(),
            "* does not cross /"
        );
        assert!(
            f(&["**"], &[], &[], &[]).decide(&feature).is_ok(),
            "** crosses /"
        );
        let tags = f(&[], &["v*"], &[], &[]);
        assert!(tags.decide(&tag).is_ok());
        assert!(tags
            .decide(&main_a)
            .unwrap_err()
            .contains("tag filters only"));
        assert!(f(&[], &["release-*"], &[], &[]).decide(&tag).is_err());
        let no_docs = f(&[], &[], &[], &["docs/**", "*.md"]);
        assert!(
            no_docs.decide(&main_a).is_ok(),
            "one file outside the excludes"
        );
        assert!(no_docs
            .decide(&event("refs/heads/main", &["docs/a.md", "x.md"]))
            .is_err());
        assert!(
            no_docs.decide(&tag).is_ok(),
            "excludes alone pass events without paths"
        );
        let mut many = main_b.clone();
        many.changed_paths_truncated = true;
        assert!(a.decide(&many).is_ok(), "unknown paths: sent");
        assert!(f(&[], &[], &["[x"], &[]).check().is_err());
        assert!(f(&[""], &[], &[], &[]).check().is_err());
    }

    #[test]
    fn variables_and_settings_round_trip() {
        let v = Variable::parse("COMMIT={commit}-{branch}").unwrap();
        let e = event("refs/heads/main", &[]);
        assert_eq!(v.render(&e), format!("{}-main", "2".repeat(40)));
        assert!(Variable::parse("X={nope}")
            .unwrap_err()
            .contains("unknown placeholder"));
        assert!(Variable::parse("no-equals").is_err());
        assert!(Variable::parse("bad name=1").is_err());
        let s = TriggerSettings {
            kind: TriggerKind::Webhook {
                format: WebhookFormat::Mattermost,
            },
            filters: f(&["main"], &[], &["a/**"], &[]),
        };
        assert_eq!(TriggerSettings::from_json(&s.to_json()).unwrap(), s);
        let json = s.to_json();
        assert!(
            json.contains("\"type\":\"webhook\"") && json.contains("\"format\":\"mattermost\""),
            "{json}"
        );
    }
}
