//! CodeCommit's API side: make sure a repository exists. The SDK honours `AWS_ENDPOINT_URL` /
//! `AWS_ENDPOINT_URL_CODECOMMIT` and `AWS_MAX_ATTEMPTS`; TLS is rustls with ring.

use std::time::Duration;

use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_codecommit::error::SdkError;
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

fn classify<E>(e: SdkError<E, aws_sdk_codecommit::config::http::HttpResponse>, op: &str) -> AwsError
where
    E: std::error::Error + aws_sdk_codecommit::error::ProvideErrorMetadata + Send + Sync + 'static,
{
    const HINT: &str =
        "the task role needs codecommit:GetRepository and codecommit:CreateRepository";
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError::Unreachable(format!(
            "{op}: {}; check the network path to the CodeCommit API (VPC endpoint, AWS_ENDPOINT_URL)",
            root_cause(&e)
        )),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("error");
            let msg = s.err().message().unwrap_or("");
            let status = s.raw().status().as_u16();
            if status == 401 || status == 403 || code.contains("AccessDenied") {
                AwsError::Api(format!("{op}: {code}: {msg}; {HINT}"))
            } else {
                AwsError::Api(format!("{op}: {code}: {msg}"))
            }
        }
        // An answer the SDK could not parse (a proxy, or an XML error): status and error type.
        SdkError::ResponseError(r) => {
            let raw = r.raw();
            let status = raw.status().as_u16();
            let kind = raw
                .headers()
                .get("x-amzn-errortype")
                .map(|v| v.split(':').next().unwrap_or(v).to_string())
                .unwrap_or_else(|| "unreadable answer".into());
            if status == 401 || status == 403 {
                AwsError::Api(format!("{op}: HTTP {status} {kind}; {HINT}"))
            } else {
                AwsError::Api(format!("{op}: HTTP {status} {kind}"))
            }
        }
        _ => AwsError::Api(format!("{op}: {}", root_cause(&e))),
    }
}

/// The innermost error of the chain: what actually went wrong, without the SDK's wrapping.
pub(crate) fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur: &(dyn std::error::Error + 'static) = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}
