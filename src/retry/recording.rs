//! The client side: what `RetryLayer`, `retry::call` and `retry::poll` record per call and per
//! attempt, when their policy has a [`Telemetry`].

use std::sync::Arc;
use std::time::Duration;

use opentelemetry::KeyValue;
use tokio::time::Instant;

use crate::grpc::{self, ClarifaiStatusExt as _};
use crate::mapping::{grpc_code_from_http, grpc_code_name};
use crate::response::HasStatus;
use crate::telemetry::{code_attributes, code_number, InBodyCode, Method, Seconds, Telemetry};
use crate::Code;

/// What a call or an attempt ended with: the gRPC code the client read, and the Clarifai code
/// it carried or had in its body, if one was read.
pub(crate) type Outcome = (tonic::Code, Option<Code>);

/// One client call's recording. Finished when dropped: a call dropped with an attempt in flight
/// ends that attempt as `CANCELLED`.
#[derive(Debug)]
pub(crate) struct CallTap {
    call: Option<Call>,
}

#[derive(Debug)]
struct Call {
    telemetry: Telemetry,
    method: Arc<Method>,
    start: Instant,
    attempt_start: Option<Instant>,
    last_end: Option<Instant>,
    attempts: u64,
    delay: Duration,
    outcome: Outcome,
    /// The outcome of the response the layer read the first message of, until used.
    read: Option<Outcome>,
    span: tracing::Span,
}

impl CallTap {
    pub(crate) fn off() -> CallTap {
        CallTap { call: None }
    }

    /// A call to `path` (`None`: not known, recorded as `_OTHER`).
    pub(crate) fn start(telemetry: Option<&Telemetry>, path: Option<&str>) -> CallTap {
        let Some(telemetry) = telemetry else {
            return CallTap::off();
        };
        let method = method_of(telemetry, path);
        let span = span(&method);
        CallTap::with_span(telemetry, method, span)
    }

    /// A typed call's recording, in the span [`instrument`] runs it in (the current one).
    pub(crate) fn current(telemetry: Option<&Telemetry>, path: Option<&str>) -> CallTap {
        let Some(telemetry) = telemetry else {
            return CallTap::off();
        };
        let method = method_of(telemetry, path);
        CallTap::with_span(telemetry, method, tracing::Span::current())
    }

    fn with_span(telemetry: &Telemetry, method: Arc<Method>, span: tracing::Span) -> CallTap {
        CallTap {
            call: Some(Call {
                telemetry: telemetry.clone(),
                method,
                start: Instant::now(),
                attempt_start: None,
                last_end: None,
                attempts: 0,
                delay: Duration::ZERO,
                outcome: (tonic::Code::Ok, None),
                read: None,
                span,
            }),
        }
    }

    /// The layer read the first message of the attempt's response (peeked only when its headers
    /// carry no error): the attempt's outcome is `OK` with the code read, if any.
    pub(crate) fn read(&mut self, code: Option<Code>) {
        if let Some(call) = self.call.as_mut() {
            call.read = Some((tonic::Code::Ok, code));
        }
    }

    /// The outcome [`read`](CallTap::read) left, once.
    pub(crate) fn take_read(&mut self) -> Option<Outcome> {
        self.call.as_mut()?.read.take()
    }

    /// Whether the call is recorded.
    pub(crate) fn is_on(&self) -> bool {
        self.call.is_some()
    }

    pub(crate) fn span(&self) -> Option<&tracing::Span> {
        self.call.as_ref().map(|call| &call.span)
    }

    /// Whether a request id would be recorded: the call is, and a subscriber records its span
    /// (the id goes to the span only, so it is not read otherwise).
    pub(crate) fn wants_request_id(&self) -> bool {
        self.call
            .as_ref()
            .is_some_and(|call| !call.span.is_disabled())
    }

    pub(crate) fn attempt_started(&mut self) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        // The first attempt starts with the call (one clock read fewer).
        let now = if call.attempts == 0 {
            call.start
        } else {
            Instant::now()
        };
        if let Some(end) = call.last_end.take() {
            call.delay += now.saturating_duration_since(end);
        }
        call.attempt_start = Some(now);
        call.attempts += 1;
        call.method.attempt_started(call.telemetry.instruments());
    }

    /// The attempt in flight ended with `outcome`.
    pub(crate) fn attempt_ended(&mut self, outcome: Outcome) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if let Some(elapsed) = call.end_attempt(outcome) {
            call.method.outcome(outcome.0, outcome.1).seconds(
                call.telemetry.instruments(),
                Seconds::Attempt,
                elapsed,
            );
        }
    }

    /// The request id of the attempt's status, in the span only (bounded; never a metric
    /// attribute).
    pub(crate) fn request_id(&mut self, id: &str) {
        if let (Some(call), Some(id)) =
            (self.call.as_ref(), crate::telemetry::bounded_request_id(id))
        {
            call.span.record("clarifai.request_id", id);
        }
    }

    /// The call ends with the attempt in flight, if any, ending with `outcome`.
    pub(crate) fn finish(&mut self, outcome: Outcome) {
        let Some(mut call) = self.call.take() else {
            return;
        };
        // When the attempt in flight ends here, the call ends when it does (one clock read).
        let attempt = call.end_attempt(outcome);
        if attempt.is_none() {
            call.outcome = outcome;
        }
        let (grpc_code, code) = call.outcome;
        if !call.span.is_disabled() {
            call.span
                .record("rpc.response.status_code", grpc_code_name(grpc_code));
            call.span.record("clarifai.attempts", call.attempts);
            if let Some(code) = code {
                call.span.record("clarifai.status.code", code_number(code));
                call.span.record("clarifai.status.name", code.name());
            }
        }
        let instruments = call.telemetry.instruments();
        let elapsed = call
            .last_end
            .filter(|_| attempt.is_some())
            .unwrap_or_else(Instant::now)
            .saturating_duration_since(call.start)
            .as_secs_f64();
        // One lookup for everything the call's outcome records.
        let recording = call.method.outcome(grpc_code, code);
        if let Some(attempt) = attempt {
            recording.seconds(instruments, Seconds::Attempt, attempt);
        }
        recording.seconds(instruments, Seconds::ClientCall, elapsed);
        if call.attempts > 1 {
            recording.retries(instruments, call.attempts - 1);
            recording.seconds(instruments, Seconds::RetryDelay, call.delay.as_secs_f64());
        }
    }
}

impl Call {
    /// Ends the attempt in flight, if any, with `outcome`: its duration.
    fn end_attempt(&mut self, outcome: Outcome) -> Option<f64> {
        let start = self.attempt_start.take()?;
        let now = Instant::now();
        self.last_end = Some(now);
        self.outcome = outcome;
        Some(now.saturating_duration_since(start).as_secs_f64())
    }
}

impl Drop for CallTap {
    fn drop(&mut self) {
        if self.call.is_some() {
            let outcome = match self.call.as_ref() {
                Some(call) if call.attempt_start.is_none() => call.outcome,
                _ => (tonic::Code::Cancelled, None),
            };
            self.finish(outcome);
        }
    }
}

/// The method a call to `path` is recorded as (`None`: not known, `_OTHER`).
fn method_of(telemetry: &Telemetry, path: Option<&str>) -> Arc<Method> {
    path.map_or_else(|| telemetry.other_method(), |p| telemetry.method(p))
}

/// What a response the layer passes on says: its gRPC status (headers), the Clarifai code it
/// carries, or the in-body code the layer read.
pub(crate) fn of_response<B>(response: &http::Response<B>) -> Outcome {
    let headers = response.headers();
    if let Some(grpc_code) = grpc::read_grpc_code(headers) {
        let code = (grpc_code != tonic::Code::Ok)
            .then(|| grpc::read_code(headers))
            .flatten();
        return (grpc_code, code);
    }
    if response.status() != http::StatusCode::OK {
        return (grpc_code_from_http(response.status()), None);
    }
    let in_body = response.extensions().get::<InBodyCode>().map(|c| c.0);
    (tonic::Code::Ok, in_body)
}

/// What an error the layer returns says (tonic reads it as a `tonic::Status`).
pub(crate) fn of_error(error: &(dyn std::error::Error + Send + Sync + 'static)) -> Outcome {
    match error.downcast_ref::<tonic::Status>() {
        Some(status) => of_status(status),
        None => (tonic::Code::Unknown, None),
    }
}

pub(crate) fn of_status(status: &tonic::Status) -> Outcome {
    (status.code(), status.carried_clarifai_code())
}

/// What a typed call's result says, and its request id.
pub(crate) fn of_result<R: HasStatus>(
    result: &Result<tonic::Response<R>, tonic::Status>,
    want_id: bool,
) -> (Outcome, Option<String>) {
    match result {
        Ok(response) => {
            let status = response.get_ref().status();
            (
                (tonic::Code::Ok, response.get_ref().status_code()),
                status.filter(|_| want_id).map(|s| s.req_id.clone()),
            )
        }
        Err(status) => {
            let outcome = of_status(status);
            let id = outcome
                .1
                .filter(|_| want_id)
                .map(|_| status.to_clarifai_status().req_id);
            (outcome, id)
        }
    }
}

impl Telemetry {
    /// The budget refused a retry (`budget`), or the server's pushback stopped one
    /// (`pushback`).
    pub(crate) fn retry_stopped(
        &self,
        reason: &'static str,
        path: Option<&str>,
        code: Option<Code>,
    ) {
        let method = method_of(self, path);
        let mut attributes = [
            KeyValue::new(crate::telemetry::GRPC_METHOD, method.value().clone()),
            KeyValue::new(crate::telemetry::STOP_REASON, reason),
            KeyValue::new(crate::telemetry::CLARIFAI_CODE, 0i64),
            KeyValue::new(crate::telemetry::CLARIFAI_NAME, ""),
        ];
        let n = match code {
            Some(code) => {
                let [a, b] = code_attributes(code);
                attributes[2] = a;
                attributes[3] = b;
                4
            }
            None => 2,
        };
        self.instruments().retry_stopped.add(1, &attributes[..n]);
    }
}

impl CallTap {
    /// The attempt in flight of a typed call ended with `result`.
    pub(crate) fn attempt_result<R: HasStatus>(
        &mut self,
        result: &Result<tonic::Response<R>, tonic::Status>,
    ) {
        if self.call.is_none() {
            return;
        }
        let (outcome, id) = of_result(result, self.wants_request_id());
        if let Some(id) = id {
            self.request_id(&id);
        }
        self.attempt_ended(outcome);
    }
}

/// Runs a typed call (`retry::call`) in its span, when its policy records.
pub(crate) fn instrument<F: std::future::Future>(
    policy: &super::Policy,
    method: Option<&str>,
    future: F,
) -> tracing::instrument::Instrumented<F> {
    use tracing::Instrument as _;
    let span = match policy.telemetry_ref() {
        Some(telemetry) => span(&method_of(telemetry, method)),
        None => tracing::Span::none(),
    };
    future.instrument(span)
}

/// A client call's span, its outcome's fields recorded when it ends.
fn span(method: &Method) -> tracing::Span {
    tracing::info_span!(
        target: "clarifai_status",
        "rpc.client.call",
        "rpc.system.name" = "grpc",
        "rpc.method" = %method.value().as_str(),
        "rpc.response.status_code" = tracing::field::Empty,
        "clarifai.status.code" = tracing::field::Empty,
        "clarifai.status.name" = tracing::field::Empty,
        "clarifai.attempts" = tracing::field::Empty,
        "clarifai.request_id" = tracing::field::Empty,
    )
}
