//! Push triggers on AWS: `PutEvents` on an EventBridge bus and `StartPipelineExecution` of a
//! CodePipeline pipeline, with the default credential chain (the task role). Both honour
//! `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_EVENTBRIDGE` / `AWS_ENDPOINT_URL_CODEPIPELINE`
//! (VPC endpoints, tests).

use aws_config::SdkConfig;
use aws_sdk_codepipeline::types::PipelineVariable as SdkVariable;
use aws_sdk_eventbridge::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;

use crate::codecommit::root_cause;
use crate::AwsError;

/// Puts one event on `bus` (a name or an ARN); returns the event id.
pub async fn put_event(
    config: &SdkConfig,
    bus: &str,
    source: &str,
    detail_type: &str,
    detail: &str,
) -> Result<String, AwsError> {
    let client = aws_sdk_eventbridge::Client::new(config);
    let entry = PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(source)
        .detail_type(detail_type)
        .detail(detail)
        .build();
    let out = client
        .put_events()
        .entries(entry)
        .send()
        .await
        .map_err(|e| classify(e, "EventBridge PutEvents", "events:PutEvents on the bus"))?;
    // PutEvents answers 200 with per-entry failures.
    let first = out.entries().first();
    match first {
        Some(e) if e.error_code().is_some() => Err(AwsError::Service(format!(
            "EventBridge PutEvents refused the event: {}: {}",
            e.error_code().unwrap_or(""),
            e.error_message().unwrap_or("")
        ))),
        Some(e) => Ok(e.event_id().unwrap_or("").to_string()),
        None => Err(AwsError::Service(
            "EventBridge PutEvents answered without an entry".into(),
        )),
    }
}

pub struct PipelineVariable {
    pub name: String,
    pub value: String,
}

/// Starts an execution of `pipeline` with the given pipeline-level variables; returns its id.
pub async fn start_pipeline(
    config: &SdkConfig,
    pipeline: &str,
    variables: &[PipelineVariable],
    client_token: &str,
) -> Result<String, AwsError> {
    let client = aws_sdk_codepipeline::Client::new(config);
    let mut req = client
        .start_pipeline_execution()
        .name(pipeline)
        .client_request_token(client_token);
    for v in variables {
        let var = SdkVariable::builder()
            .name(&v.name)
            .value(&v.value)
            .build()
            .map_err(|e| AwsError::Service(format!("CodePipeline variable {}: {e}", v.name)))?;
        req = req.variables(var);
    }
    let out = req.send().await.map_err(|e| {
        classify(
            e,
            "CodePipeline StartPipelineExecution",
            "codepipeline:StartPipelineExecution on the pipeline",
        )
    })?;
    Ok(out.pipeline_execution_id().unwrap_or("").to_string())
}

fn classify<E, R>(e: SdkError<E, R>, op: &str, permission: &str) -> AwsError
where
    E: std::error::Error + ProvideErrorMetadata + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    match &e {
        SdkError::DispatchFailure(_) | SdkError::TimeoutError(_) => AwsError::Service(format!(
            "{op}: unreachable: {}; check the network path to the service (VPC endpoint, AWS_ENDPOINT_URL)",
            root_cause(&e)
        )),
        SdkError::ServiceError(s) => {
            let code = s.err().code().unwrap_or("error");
            let msg = s.err().message().unwrap_or("");
            if code.contains("AccessDenied") || code.contains("Unauthorized") {
                AwsError::Service(format!("{op}: {code}: {msg}; the task role needs {permission}"))
            } else {
                AwsError::Service(format!("{op}: {code}: {msg}"))
            }
        }
        _ => AwsError::Service(format!("{op}: {}", root_cause(&e))),
    }
}
