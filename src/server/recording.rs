//! The server side: what `StatusLayer` records per call, when a [`Telemetry`] is set.

use std::time::Instant;

use super::status::Stamped;
use crate::mapping::grpc_code_name;
use crate::peek::{self, Peeked};
use crate::telemetry::{code_number, Seconds, Telemetry};
use crate::Code;

/// A request extension: the call's errors will be answered in-body by `ErrorToInBodyLayer`,
/// outside `StatusLayer`, so the client sees `OK`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AnsweredInBody;

/// One call's recording: made when the call comes in, finished when its status leaves (or the
/// response is dropped first: `CANCELLED`).
#[derive(Debug)]
pub(crate) struct Tap {
    call: Option<Call>,
}

#[derive(Debug)]
struct Call {
    telemetry: Telemetry,
    path: http::uri::PathAndQuery,
    start: Instant,
    in_body_answer: bool,
    span: tracing::Span,
    /// The first message's bytes while its status code is not known yet (at most 1 KiB).
    first: Option<Vec<u8>>,
    /// The first message's in-body code, once read; `Err(())` once known unreadable.
    in_body: Option<Result<Code, ()>>,
}

impl Tap {
    /// No recording.
    pub(crate) fn off() -> Tap {
        Tap { call: None }
    }

    pub(crate) fn start<B>(telemetry: Option<&Telemetry>, request: &http::Request<B>) -> Tap {
        let Some(telemetry) = telemetry else {
            return Tap::off();
        };
        let path = request
            .uri()
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| http::uri::PathAndQuery::from_static("/"));
        let span = tracing::info_span!(
            target: "clarifai_status",
            "rpc.server.call",
            "rpc.system.name" = "grpc",
            "rpc.method" = telemetry.method_text(path.path()),
            "rpc.response.status_code" = tracing::field::Empty,
            "clarifai.status.code" = tracing::field::Empty,
            "clarifai.status.name" = tracing::field::Empty,
            "clarifai.request_id" = tracing::field::Empty,
        );
        Tap {
            call: Some(Call {
                telemetry: telemetry.clone(),
                path,
                start: Instant::now(),
                in_body_answer: request.extensions().get::<AnsweredInBody>().is_some(),
                span,
                first: None,
                in_body: None,
            }),
        }
    }

    /// The span the inner service runs in.
    pub(crate) fn span(&self) -> Option<&tracing::Span> {
        self.call.as_ref().map(|call| &call.span)
    }

    /// The method value for the `grpc error` event.
    pub(crate) fn method(&self) -> Option<String> {
        let call = self.call.as_ref()?;
        Some(call.telemetry.method_text(call.path.path()))
    }

    /// The request id of a gRPC error (its Clarifai `ErrorInfo`'s `req_id`), in the span only
    /// (bounded; never a metric attribute). Read only when the call is recorded, on errors.
    pub(crate) fn error_request_id(&self, headers: &http::HeaderMap) {
        let Some(call) = self.call.as_ref() else {
            return;
        };
        if let Some(id) = crate::telemetry::error_request_id(headers) {
            call.span.record("clarifai.request_id", id.as_str());
        }
    }

    /// The response headers left: a Trailers-Only status ends the call.
    pub(crate) fn headers(&mut self, status: Option<tonic::Code>, stamped: Option<Stamped>) {
        if self.call.is_none() {
            return;
        }
        if let Some(grpc) = status {
            self.finish(grpc, stamped);
        }
    }

    /// A data frame passed: read the first message's status code from it, if still needed.
    pub(crate) fn data(&mut self, data: &[u8]) {
        let Some(call) = self.call.as_mut() else {
            return;
        };
        if call.in_body.is_some() || data.is_empty() {
            return;
        }
        // The request id goes to the span only: not read when no subscriber records the span.
        let want_id = !call.span.is_disabled();
        let (peeked, id) = match call.first.as_mut() {
            None => match peek::read(data) {
                Peeked::More => {
                    let mut first = Vec::with_capacity(64);
                    first.extend_from_slice(&data[..data.len().min(peek::PEEK_LIMIT)]);
                    call.first = Some(first);
                    (Peeked::More, None)
                }
                Peeked::Code(code) => (
                    Peeked::Code(code),
                    want_id.then(|| peek::request_id(data)).flatten(),
                ),
                Peeked::Not => (Peeked::Not, None),
            },
            Some(first) => {
                let room = peek::PEEK_LIMIT.saturating_sub(first.len());
                first.extend_from_slice(&data[..data.len().min(room)]);
                match peek::read(first) {
                    Peeked::More if first.len() >= peek::PEEK_LIMIT => (Peeked::Not, None),
                    Peeked::Code(code) => (
                        Peeked::Code(code),
                        want_id.then(|| peek::request_id(first)).flatten(),
                    ),
                    other => (other, None),
                }
            }
        };
        // In the span only: never a metric attribute.
        if let Some(id) = id {
            call.span.record("clarifai.request_id", id);
        }
        match peeked {
            Peeked::More => {}
            Peeked::Code(code) => {
                call.in_body = Some(Ok(Code::new(code)));
                call.first = None;
            }
            Peeked::Not => {
                call.in_body = Some(Err(()));
                call.first = None;
            }
        }
    }

    /// The trailers left, with their status.
    pub(crate) fn trailers(&mut self, status: Option<tonic::Code>, stamped: Option<Stamped>) {
        if self.call.is_some() {
            self.finish(status.unwrap_or(tonic::Code::Unknown), stamped);
        }
    }

    /// The body ended without trailers.
    pub(crate) fn end(&mut self) {
        if self.call.is_some() {
            self.finish(tonic::Code::Unknown, None);
        }
    }

    fn finish(&mut self, grpc: tonic::Code, stamped: Option<Stamped>) {
        let Some(call) = self.call.take() else {
            return;
        };
        let elapsed = call.start.elapsed().as_secs_f64();
        let (grpc, code, carried) = match stamped {
            Some(s) => (s.grpc, Some(s.code), s.carried),
            None => {
                let in_body = match call.in_body {
                    Some(Ok(code)) => Some(code),
                    _ => None,
                };
                (grpc, in_body, false)
            }
        };
        // A method the service does not have: tonic's router answers UNIMPLEMENTED with no
        // Clarifai code. Not recorded as itself, and not counted toward the cap.
        let method = if grpc == tonic::Code::Unimplemented && !carried {
            call.telemetry.other_method()
        } else {
            call.telemetry.method(call.path.path())
        };
        // An error `ErrorToInBodyLayer` answers in-body reaches the client as OK.
        let seen = if grpc != tonic::Code::Ok && call.in_body_answer {
            tonic::Code::Ok
        } else {
            grpc
        };
        if !call.span.is_disabled() {
            call.span
                .record("rpc.response.status_code", grpc_code_name(seen));
            if let Some(code) = code {
                call.span.record("clarifai.status.code", code_number(code));
                call.span.record("clarifai.status.name", code.name());
            }
        }
        method.outcome(seen, code).seconds(
            call.telemetry.instruments(),
            Seconds::ServerCall,
            elapsed,
        );
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        if self.call.is_some() {
            self.finish(tonic::Code::Cancelled, None);
        }
    }
}
