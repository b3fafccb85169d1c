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
/// path segment, `**` crosses them. Path globs apply to branch pushes: an event is sent when
/// at least one changed path matches `paths` (or `paths` is empty) and no `exclude_paths`.
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
        serde_json::from_str(s).map_err(|e| format!("unreadable trigger settings: {e}"))
    }
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }
}

const GLOB: glob::MatchOptions = glob::MatchOptions {
    case_sensitive: true,
    require_literal_separator: true,
    require_literal_leading_dot: false,
};

fn pattern(g: &str, what: &str) -> Result<glob::Pattern, String> {
    if g.is_empty() || g.chars().any(char::is_control) {
        return Err(format!("an empty or unprintable {what} glob"));
    }
    glob::Pattern::new(g)
        .map_err(|e| format!("{g:?} is not a {what} glob ({e}): write e.g. services/a/** or release/*"))
}

fn any_match(globs: &[String], s: &str) -> bool {
    globs
        .iter()
        .filter_map(|g| glob::Pattern::new(g).ok())
        .any(|p| p.matches_with(s, GLOB))
}

impl Filters {
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
            if self.paths.is_empty() && self.exclude_paths.is_empty() {
                return Ok(());
            }
            if e.changed_paths_truncated {
                // Too many files to know: send rather than miss a build.
                return Ok(());
            }
            let counted = e
                .changed_paths
                .iter()
                .filter(|p| self.paths.is_empty() || any_match(&self.paths, p))
                .filter(|p| !any_match(&self.exclude_paths, p))
                .count();
            if counted == 0 {
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
                return Err(why);
            }
            return Ok(());
        }
        if let Some(tag) = e.tag() {
            if !self.tags.is_empty() && !any_match(&self.tags, tag) {
                return Err(format!(
                    "tag {tag} matches none of the tag filters ({})",
                    self.tags.join(", ")
                ));
            }
            if self.tags.is_empty() && !self.branches.is_empty() {
                return Err("a tag push; this trigger has branch filters only".into());
            }
            return Ok(());
        }
        Err(format!("{} is neither a branch nor a tag", e.ref_name))
    }
}
