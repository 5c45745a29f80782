//! Telemetry's spans and events over a real tonic server and client on 127.0.0.1, read back
//! through a `tracing` subscriber: the fields of `rpc.server.call` and `rpc.client.call`, the retry
//! events inside the call's span, and nothing private in any of them.
//!
//! Its own test binary: the subscriber is the process's global one (the server's tasks run on the
//! runtime's threads), so no other test may run beside it.
#![cfg(all(feature = "server", feature = "retry", feature = "telemetry"))]

use clarifai_status::retry::{Policy, RetryLayer};
use clarifai_status::telemetry::Telemetry;
use clarifai_status::StatusCode;
use clarifai_status_testing::pb::status_tester_client::StatusTesterClient;
use clarifai_status_testing::pb::RaiseRequest;
use opentelemetry::metrics::MeterProvider as _;

mod common;
use common::telemetry::{attrs, channel, fast, metrics, raise, serve, settle};

const RAISE: &str = "clarifai.status.testing.v1.StatusTester/Raise";

/// Spans and events read back through a `tracing` subscriber.
mod capture {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Event, Subscriber};
    use tracing_subscriber::layer::{Context, Layer};
    use tracing_subscriber::registry::LookupSpan;

    pub(crate) type Fields = BTreeMap<String, String>;

    /// A closed span: its name and every field recorded on it.
    #[derive(Debug, Clone)]
    pub(crate) struct Span {
        pub(crate) name: String,
        pub(crate) fields: Fields,
    }

    /// An event: its fields (`message` included) and the names of the spans it was in,
    /// innermost first.
    #[derive(Debug, Clone)]
    pub(crate) struct Event_ {
        pub(crate) fields: Fields,
        pub(crate) spans: Vec<String>,
    }

    #[derive(Debug, Default, Clone)]
    pub(crate) struct Captured {
        pub(crate) spans: Arc<Mutex<Vec<Span>>>,
        pub(crate) events: Arc<Mutex<Vec<Event_>>>,
    }

    struct Values<'a>(&'a mut Fields);

    impl Visit for Values<'_> {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().into(), format!("{value:?}"));
        }
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().into(), value.into());
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            self.0.insert(field.name().into(), value.to_string());
        }
        fn record_u64(&mut self, field: &Field, value: u64) {
            self.0.insert(field.name().into(), value.to_string());
        }
    }

    /// Only the crate's spans and events (h2's and hyper's are not under test).
    fn ours(metadata: &tracing::Metadata<'_>) -> bool {
        metadata.target().starts_with("clarifai_status")
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Captured {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if !ours(attrs.metadata()) {
                return;
            }
            let mut fields = Fields::new();
            attrs.record(&mut Values(&mut fields));
            ctx.span(id).unwrap().extensions_mut().insert(fields);
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
            let span = ctx.span(id).unwrap();
            let mut extensions = span.extensions_mut();
            if let Some(fields) = extensions.get_mut::<Fields>() {
                values.record(&mut Values(fields));
            }
        }

        fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
            if !ours(event.metadata()) {
                return;
            }
            let mut fields = Fields::new();
            event.record(&mut Values(&mut fields));
            let spans = ctx
                .event_scope(event)
                .map(|scope| scope.map(|s| s.name().to_owned()).collect())
                .unwrap_or_default();
            self.events.lock().unwrap().push(Event_ { fields, spans });
        }

        fn on_close(&self, id: Id, ctx: Context<'_, S>) {
            let span = ctx.span(&id).unwrap();
            let Some(fields) = span.extensions().get::<Fields>().cloned() else {
                return;
            };
            self.spans.lock().unwrap().push(Span {
                name: span.name().to_owned(),
                fields,
            });
        }
    }
}

/// Marker strings set in every private field of the statuses the handler answers with, and in
/// their descriptions; none may appear in a span or an event.
const PRIVATE_MARKERS: [&str; 4] = [
    "MARKER-stack-trace",
    "MARKER-internal-details",
    "MARKER-redirect-url",
    "MARKER-description",
];

fn with_private_fields(mut request: RaiseRequest, req_id: &str) -> RaiseRequest {
    let status = request.status.as_mut().unwrap();
    status.req_id = req_id.into();
    status.description = PRIVATE_MARKERS[3].into();
    status.stack_trace = vec![PRIVATE_MARKERS[0].into()];
    status.internal_details = PRIVATE_MARKERS[1].into();
    status.redirect_info = Some(clarifai_status::pb::RedirectInfo {
        url: PRIVATE_MARKERS[2].into(),
        ..Default::default()
    });
    request
}

#[tokio::test]
async fn spans_carry_method_code_name_attempts_and_request_id_and_nothing_private() {
    use tracing_subscriber::layer::SubscriberExt as _;

    let captured = capture::Captured::default();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(captured.clone()))
        .unwrap();
    let (provider, _exporter) = metrics();
    let addr = serve(Telemetry::new(&provider.meter("server"))).await;
    let policy = fast(Policy::new().no_budget()).telemetry(Telemetry::new(&provider.meter("c")));
    let channel = tower::ServiceBuilder::new()
        .layer(RetryLayer::new(policy))
        .service(channel(addr).await);
    let mut client = StatusTesterClient::new(channel);
    // Busy in-body twice, then SUCCESS in-body: three attempts.
    let flaky = with_private_fields(raise("flaky", 0), "req-flaky");
    let response = client.raise(flaky).await.unwrap();
    assert_eq!(response.get_ref().status.as_ref().unwrap().code, 10000);
    // A gRPC error carrying CONN_KEY_INVALID and a request id in its `ErrorInfo`.
    let denied = with_private_fields(
        raise("error", StatusCode::ConnKeyInvalid as i32),
        "req-denied",
    );
    client.raise(denied).await.unwrap_err();
    settle(|| {
        let spans = captured.spans.lock().unwrap();
        spans.iter().filter(|s| s.name == "rpc.server.call").count() >= 4
            && spans.iter().filter(|s| s.name == "rpc.client.call").count() >= 2
    })
    .await;

    let spans = captured.spans.lock().unwrap().clone();
    let named = |name: &str| {
        spans
            .iter()
            .filter(|s| s.name == name)
            .map(|s| s.fields.clone())
            .collect::<Vec<_>>()
    };
    let fields = |pairs: &[(&str, &str)]| attrs(pairs);
    let client_spans = named("rpc.client.call");
    assert_eq!(
        client_spans,
        [
            fields(&[
                ("rpc.system.name", "grpc"),
                ("rpc.method", RAISE),
                ("rpc.response.status_code", "OK"),
                ("clarifai.status.code", "10000"),
                ("clarifai.status.name", "SUCCESS"),
                ("clarifai.attempts", "3"),
                ("clarifai.request_id", "req-flaky"),
            ]),
            fields(&[
                ("rpc.system.name", "grpc"),
                ("rpc.method", RAISE),
                ("rpc.response.status_code", "UNAUTHENTICATED"),
                ("clarifai.status.code", "11008"),
                ("clarifai.status.name", "CONN_KEY_INVALID"),
                ("clarifai.attempts", "1"),
                ("clarifai.request_id", "req-denied"),
            ]),
        ]
    );
    let server_spans = named("rpc.server.call");
    let server = |status: &str, code: &str, name: &str, id: &str| {
        fields(&[
            ("rpc.system.name", "grpc"),
            ("rpc.method", RAISE),
            ("rpc.response.status_code", status),
            ("clarifai.status.code", code),
            ("clarifai.status.name", name),
            ("clarifai.request_id", id),
        ])
    };
    let busy = server("OK", "21354", "MODEL_BUSY_PLEASE_RETRY", "req-flaky");
    assert_eq!(
        server_spans,
        [
            busy.clone(),
            busy,
            server("OK", "10000", "SUCCESS", "req-flaky"),
            server("UNAUTHENTICATED", "11008", "CONN_KEY_INVALID", "req-denied"),
        ]
    );

    // The retry events, inside the client call's span.
    let events = captured.events.lock().unwrap().clone();
    let retrying = events
        .iter()
        .filter(|e| e.fields.get("message").map(String::as_str) == Some("retrying"))
        .collect::<Vec<_>>();
    assert_eq!(retrying.len(), 2, "{events:#?}");
    for event in &retrying {
        assert_eq!(
            event.spans.first().map(String::as_str),
            Some("rpc.client.call")
        );
        assert!(event.fields.contains_key("attempt"), "{event:?}");
    }
    let not_retrying = events
        .iter()
        .find(|e| {
            e.fields
                .get("message")
                .is_some_and(|m| m.starts_with("not retrying"))
        })
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(
        not_retrying.spans.first().map(String::as_str),
        Some("rpc.client.call")
    );
    // StatusLayer's event for the error, inside the server call's span, with the method.
    let grpc_error = events
        .iter()
        .find(|e| e.fields.get("message").map(String::as_str) == Some("grpc error"))
        .unwrap_or_else(|| panic!("{events:#?}"));
    assert_eq!(grpc_error.fields["rpc.method"], RAISE);
    assert_eq!(grpc_error.fields["code"], "11008");

    // Nothing private, and no message, in any span or event.
    let everything = spans
        .iter()
        .flat_map(|s| s.fields.values())
        .chain(events.iter().flat_map(|e| e.fields.values()))
        .collect::<Vec<_>>();
    assert!(everything.len() > 40, "{everything:?}");
    for value in everything {
        for marker in PRIVATE_MARKERS {
            assert!(!value.contains(marker), "{marker} in {value}");
        }
    }
}
