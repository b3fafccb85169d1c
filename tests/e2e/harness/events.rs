//! Push-trigger AWS fixtures against moto: EventBridge rules that copy matching events into an
//! SQS queue (so a test can read what Kura put), and CodePipeline pipelines and executions.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::aws::{venv_python, Moto, AWS_KEY_ID, AWS_SECRET};
use super::process::cmd;

/// Python run before every snippet: `A` is the snippet's arguments, `c(service)` a boto3 client
/// for moto as the test's AWS identity, `out(v)` prints the answer (as the last stdout line).
const PRELUDE: &str = "\
import json, sys
import boto3
A = json.loads(sys.argv[1])
_C = json.loads(sys.argv[2])
def c(service):
    return boto3.client(service, region_name='us-east-1', endpoint_url=_C['endpoint'],
                        aws_access_key_id=_C['key'], aws_secret_access_key=_C['secret'])
def out(v):
    print()
    print(json.dumps(v, default=str))
";

/// Runs a boto3 snippet against moto (arguments as JSON in `A`, not pasted into the code, so
/// any name is safe); returns what it passed to `out`. Panics with its output if it failed.
fn boto(moto: &Moto, args: &Value, code: &str) -> Value {
    let script = format!("{PRELUDE}{code}");
    let conf = json!({ "endpoint": moto.endpoint(), "key": AWS_KEY_ID, "secret": AWS_SECRET });
    let out = cmd(
        venv_python().to_str().expect("utf-8 path"),
        &["-c", &script, &args.to_string(), &conf.to_string()],
    )
    .env("AWS_EC2_METADATA_DISABLED", "true")
    .timeout(Duration::from_secs(60))
    .run();
    let out = out.assert_ok();
    let last = out.stdout.lines().rev().find(|l| !l.trim().is_empty());
    last.and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_else(|| panic!("no JSON answer from the boto3 snippet:\n{}", out.all()))
}

/// A name no other call (in any test process) has used: moto is often shared by a test's steps.
fn unique(prefix: &str) -> String {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|t| t.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{prefix}-{}-{}-{nanos}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

/// Routes the events on `bus` (created unless `default`) that match `pattern` to a new SQS
/// queue; returns its URL, for [`queue_messages`] and [`wait_queue`].
pub fn events_to_queue(moto: &Moto, bus: &str, pattern: &Value) -> String {
    let name = unique("kura-e2e");
    let args = json!({ "bus": bus, "pattern": pattern, "name": name });
    let url = boto(
        moto,
        &args,
        "\
ev, sqs = c('events'), c('sqs')
bus = A['bus']
if bus != 'default':
    try:
        ev.create_event_bus(Name=bus)
    except ev.exceptions.ResourceAlreadyExistsException:
        pass
q = sqs.create_queue(QueueName=A['name'])['QueueUrl']
arn = sqs.get_queue_attributes(QueueUrl=q, AttributeNames=['QueueArn'])['Attributes']['QueueArn']
sqs.set_queue_attributes(QueueUrl=q, Attributes={'Policy': json.dumps({
    'Version': '2012-10-17',
    'Statement': [{'Effect': 'Allow', 'Principal': {'Service': 'events.amazonaws.com'},
                   'Action': 'sqs:SendMessage', 'Resource': arn}]})})
ev.put_rule(Name=A['name'], EventBusName=bus, EventPattern=json.dumps(A['pattern']),
            State='ENABLED')
r = ev.put_targets(Rule=A['name'], EventBusName=bus, Targets=[{'Id': 'queue', 'Arn': arn}])
assert r.get('FailedEntryCount', 0) == 0, r
out(q)
",
    );
    url.as_str()
        .unwrap_or_else(|| panic!("queue URL is not a string: {url}"))
        .to_string()
}

/// Receives and deletes every message now in the queue; each body parsed as JSON (from
/// EventBridge, the whole event: `source`, `detail-type`, `detail`, ...).
pub fn queue_messages(moto: &Moto, queue_url: &str) -> Vec<Value> {
    let got = boto(
        moto,
        &json!({ "url": queue_url }),
        "\
sqs = c('sqs')
bodies = []
while True:
    ms = sqs.receive_message(QueueUrl=A['url'], MaxNumberOfMessages=10,
                             WaitTimeSeconds=0).get('Messages', [])
    if not ms:
        break
    for m in ms:
        try:
            bodies.append(json.loads(m['Body']))
        except ValueError:
            bodies.append(m['Body'])
        sqs.delete_message(QueueUrl=A['url'], ReceiptHandle=m['ReceiptHandle'])
out(bodies)
",
    );
    match got {
        Value::Array(v) => v,
        other => panic!("unexpected answer from the queue snippet: {other}"),
    }
}

/// Polls the queue until `n` messages (in all) arrived; returns them, or panics with what did
/// after `timeout`.
#[track_caller]
pub fn wait_queue(moto: &Moto, queue_url: &str, n: usize, timeout: Duration) -> Vec<Value> {
    let start = Instant::now();
    let mut got = Vec::new();
    loop {
        got.extend(queue_messages(moto, queue_url));
        if got.len() >= n {
            return got;
        }
        if start.elapsed() > timeout {
            panic!(
                "expected at least {n} events in {queue_url} within {timeout:?}, got {}:\n{}",
                got.len(),
                serde_json::to_string_pretty(&got).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// The pipeline variables [`create_pipeline`] declares (default value `none`).
pub const PIPELINE_VARIABLES: [&str; 3] = ["COMMIT", "BRANCH", "PUSHER"];

/// A V2 pipeline `name` with the variables [`PIPELINE_VARIABLES`]: an S3 source stage and a
/// manual approval (moto wants two stages and a role CodePipeline may assume; both made here).
pub fn create_pipeline(moto: &Moto, name: &str) {
    create_pipeline_with_variables(moto, name, &PIPELINE_VARIABLES);
}

/// Like [`create_pipeline`], declaring `variables` instead.
pub fn create_pipeline_with_variables(moto: &Moto, name: &str, variables: &[&str]) {
    let args = json!({ "name": name, "variables": variables });
    boto(
        moto,
        &args,
        "\
iam, s3, cp = c('iam'), c('s3'), c('codepipeline')
role = 'kura-e2e-codepipeline'
try:
    arn = iam.get_role(RoleName=role)['Role']['Arn']
except iam.exceptions.NoSuchEntityException:
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=json.dumps({
        'Version': '2012-10-17',
        'Statement': [{'Effect': 'Allow', 'Principal': {'Service': 'codepipeline.amazonaws.com'},
                       'Action': 'sts:AssumeRole'}]}))['Role']['Arn']
bucket = 'kura-e2e-pipeline-artifacts'
try:
    s3.create_bucket(Bucket=bucket)
except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
    pass
cp.create_pipeline(pipeline={
    'name': A['name'],
    'roleArn': arn,
    'artifactStore': {'type': 'S3', 'location': bucket},
    'pipelineType': 'V2',
    'executionMode': 'QUEUED',
    'variables': [{'name': v, 'defaultValue': 'none', 'description': 'set by Kura'}
                  for v in A['variables']],
    'stages': [
        {'name': 'Source', 'actions': [{
            'name': 'Source',
            'actionTypeId': {'category': 'Source', 'owner': 'AWS', 'provider': 'S3',
                             'version': '1'},
            'configuration': {'S3Bucket': bucket, 'S3ObjectKey': 'source.zip',
                              'PollForSourceChanges': 'false'},
            'outputArtifacts': [{'name': 'SourceOutput'}],
        }]},
        {'name': 'Approve', 'actions': [{
            'name': 'Approve',
            'actionTypeId': {'category': 'Approval', 'owner': 'AWS', 'provider': 'Manual',
                             'version': '1'},
        }]},
    ],
})
out(True)
",
    );
}

/// Every execution of pipeline `name`, oldest first: GetPipelineExecution's dict
/// (`pipelineExecutionId`, `status`, `variables` as `[{name, resolvedValue}]`, `trigger`, ...)
/// plus the summary's fields it lacks (`startTime`, `lastUpdateTime`).
pub fn pipeline_executions(moto: &Moto, name: &str) -> Vec<Value> {
    let got = boto(
        moto,
        &json!({ "name": name }),
        "\
cp = c('codepipeline')
execs = []
kw = {}
while True:
    r = cp.list_pipeline_executions(pipelineName=A['name'], **kw)
    for s in r.get('pipelineExecutionSummaries', []):
        e = cp.get_pipeline_execution(pipelineName=A['name'],
                                      pipelineExecutionId=s['pipelineExecutionId'])
        e = e['pipelineExecution']
        for k, v in s.items():
            e.setdefault(k, v)
        execs.append(e)
    if not r.get('nextToken'):
        break
    kw = {'nextToken': r['nextToken']}
execs.reverse()  # the API lists the newest first
out(execs)
",
    );
    match got {
        Value::Array(v) => v,
        other => panic!("unexpected answer from the pipeline snippet: {other}"),
    }
}

/// Polls until pipeline `name` has at least `n` executions; returns them (oldest first), or
/// panics with what it has after `timeout`.
#[track_caller]
pub fn wait_pipeline_executions(
    moto: &Moto,
    name: &str,
    n: usize,
    timeout: Duration,
) -> Vec<Value> {
    let start = Instant::now();
    loop {
        let got = pipeline_executions(moto, name);
        if got.len() >= n {
            return got;
        }
        if start.elapsed() > timeout {
            panic!(
                "expected at least {n} executions of pipeline {name} within {timeout:?}, got {}:\n{}",
                got.len(),
                serde_json::to_string_pretty(&got).unwrap_or_default()
            );
        }
        thread::sleep(Duration::from_millis(200));
    }
}

/// An execution's variables as (name, value) pairs (moto and AWS answer `resolvedValue`).
pub fn execution_variables(execution: &Value) -> Vec<(String, String)> {
    execution["variables"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .map(|v| {
                    let value = v.get("resolvedValue").or_else(|| v.get("value"));
                    (
                        v["name"].as_str().unwrap_or_default().to_string(),
                        value
                            .and_then(Value::as_str)
                            .unwrap_or_default()
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}
