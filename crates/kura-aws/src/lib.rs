//! AWS for Kura: the CodeCommit Git password (SigV4 over a `GIT` request, as AWS's own credential
//! helper computes it), git's credential-helper protocol around it, and CodeCommit's "ensure the
//! repository exists". Credentials always come from the default AWS chain; nothing here stores
//! or logs a secret. It must not know about Kura's database or HTTP server.
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod codecommit;
mod events;
mod sigv4;

pub use aws_config::SdkConfig;
pub use codecommit::{ensure_repository, sdk_config, Ensured};
pub use events::{put_event, start_pipeline, PipelineVariable};
pub use sigv4::{codecommit_git_credential, region_from_host, GitCredential};

use aws_credential_types::provider::ProvideCredentials;

#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    #[error("no AWS credentials: {0}; on ECS the task role provides them, elsewhere set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or AWS_PROFILE")]
    NoCredentials(String),
    #[error("no AWS region: set AWS_REGION (or use a git-codecommit.REGION host)")]
    NoRegion,
    #[error("CodeCommit unreachable: {0}")]
    Unreachable(String),
    #[error("CodeCommit refused: {0}")]
    Api(String),
    /// Another service (EventBridge, CodePipeline): the text names it and says what to do.
    #[error("{0}")]
    Service(String),
}

/// Answers one git credential-helper request (`get`) for a CodeCommit host: reads git's
/// `key=value` lines, returns the lines to print. `store`/`erase` answer nothing.
pub async fn credential_helper(
    operation: &str,
    input: &str,
    default_region: Option<&str>,
) -> Result<String, AwsError> {
    if operation != "get" {
        return Ok(String::new());
    }
    let query = kura_proto::credential_query(input);
    let path = query.path;
    let host = query.host.unwrap_or_default();
    // Without credential.UseHttpPath git sends no path; CodeCommit needs it in the signature.
    let Some(path) = path else {
        return Err(AwsError::Api(
            "git sent no repository path: set git config credential.UseHttpPath true".into(),
        ));
    };
    let region = region_from_host(&host)
        .or_else(|| default_region.map(String::from))
        .ok_or(AwsError::NoRegion)?;
    let config = sdk_config(Some(&region)).await;
    let provider = config
        .credentials_provider()
        .ok_or_else(|| AwsError::NoCredentials("no credential provider configured".into()))?;
    let creds = provider
        .provide_credentials()
        .await
        .map_err(|e| AwsError::NoCredentials(e.to_string()))?;
    let hostname = host.split(':').next().unwrap_or(&host);
    let cred = codecommit_git_credential(
        creds.access_key_id(),
        creds.secret_access_key(),
        creds.session_token(),
        &region,
        hostname,
        &format!("/{}", path.trim_start_matches('/')),
        std::time::SystemTime::now(),
    );
    Ok(format!(
        "username={}\npassword={}\n",
        cred.username, cred.password
    ))
}
