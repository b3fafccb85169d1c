//! CodeCommit's API side: make sure a repository exists. The SDK honours `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_CODECOMMIT` and `AWS_MAX_ATTEMPTS`; TLS is rustls with ring.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_codecommit::error::{DisplayErrorContext, SdkError};
use aws_smithy_http_client::tls::{rustls_provider::CryptoMode, Provider};

use crate::AwsError;

/// The default chain (environment, profile, ECS task role, instance metadata), with `region`
/// when the environment names none.
pub async fn sdk_config(region: Option<&str>) -> SdkConfig {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(Provider::Rustls(CryptoMode::Ring))
        .build_https();
    let mut loader = aws_config::defaults(BehaviorVersion::latest())
        .http_client(http)
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(30))
                .build(),
        );
    if let Some(r) = region {
        loader = loader.region(Region::new(r.to_string()));
    }
    loader.load().await
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ensured {
    Existed,
    Created,
}

/// `GetRepository`, then `CreateRepository` when it does not exist (idempotent: a concurrent
/// creation counts as existing).
pub async fn ensure_repository(config: &SdkConfig, name: &str) -> Result<Ensured, AwsError> {
    let client = aws_sdk_codecommit::Client::new(config);
    match client.get_repository().repository_name(name).send().await {
        Ok(_) => return Ok(Ensured::Existed),
        Err(SdkError::ServiceError(e)) if e.err().is_repository_does_not_exist_exception() => {}
        Err(e) => return Err(classify(e, "GetRepository")),
    }
    match client
        .create_repository()
        .repository_name(name)
        .repository_description("Mirrored from Kura")
        .send()
        .await
    {
        Ok(_) => Ok(Ensured::Created),
        Err(SdkError::ServiceError(e)) if e.err().is_repository_name_exists_exception() => {
            Ok(Ensured::Existed)
        }
        Err(e) => Err(classify(e, "CreateRepository")),
    }
}

fn classify<E, R>(e: SdkError<E, R>, op: &str) -> AwsError
where
    E: std::error::Error + aws_sdk_codecommit::error::ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError::Unreachable(format!(
            "{op}: {}; check the network path to the CodeCommit API (VPC endpoint, AWS_ENDPOINT_URL)",
            DisplayErrorContext(&e)
        )),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("error");
            let msg = s.err().message().unwrap_or("");
            if code.contains("AccessDenied") || code.contains("UnrecognizedClient") {
                AwsError::Api(format!(
                    "{op}: {code}: {msg}; the task role needs codecommit:GetRepository and codecommit:CreateRepository"
                ))
            } else {
                AwsError::Api(format!("{op}: {code}: {msg}"))
            }
        }
        _ => AwsError::Api(format!("{op}: {}", DisplayErrorContext(&e))),
    }
}
