"""Drives Clarifai's own Python clients against the status test server's V2 stand-in.

Run by tests/real_clients.rs, which starts the server with gRPC and HTTP on 127.0.0.1:

    python clarifai_clients.py --grpc 127.0.0.1:GRPC_PORT --http 127.0.0.1:HTTP_PORT

Three clients nobody here wrote, each pointed at the server as a user would point it at Clarifai:

- clarifai-grpc's `V2Stub` over `ClarifaiChannel.get_insecure_grpc_channel` (unary,
  server-streaming and bidirectional methods; in-body statuses, and real gRPC errors read with
  grpcio-status when a scenario says `in_body=false`);
- the official SDK, `Model(...).predict_by_bytes(...)` and `User(...).list_apps()`, whose only
  configurable header is its key: the scenario rides in the PAT (`raise;<pairs>`);
- clarifai-grpc's JSON channel against the REST side.

Every check asserts on the server's own call counts (`GET /v2/_tester/calls`), each scenario with
an `id=` pair of its own so counters never mix: run it against a fresh server. Prints one line
per check and a final `clarifai-clients: N passed, M failed`; exits non-zero on any failure.
"""

import argparse
import json
import os
import sys
import time
import traceback
import urllib.request

# The server is on loopback: never route to it through a proxy from the environment (grpc core
# and requests both read these when a channel or session is made).
for _name in ("no_proxy", "NO_PROXY", "no_grpc_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))

import grpc  # noqa: E402
from google.rpc import error_details_pb2  # noqa: E402
from grpc_status import rpc_status  # noqa: E402

from clarifai_grpc.channel.clarifai_channel import ClarifaiChannel  # noqa: E402
from clarifai_grpc.grpc.api import resources_pb2, service_pb2, service_pb2_grpc  # noqa: E402
from clarifai_grpc.grpc.api.status import status_code_pb2  # noqa: E402

DOMAIN = "api.clarifai.com"
RAISE_HEADER = "x-clarifai-status-raise"
# The crate's table, for the codes used here (`clarifai-status explain <code>`).
# Every code's description, from the crate's table (passed by tests/real_clients.rs in
# --descriptions): what the clients must read back, with no second table kept here.
DESCRIPTIONS = {}
SUCCESS = status_code_pb2.SUCCESS
USER, APP, MODEL = "u", "a", "m"
PREDICT_PATH = f"/v2/users/{USER}/apps/{APP}/models/{MODEL}/outputs"


class Server:
    """The server under test: its gRPC target and its call counters."""

    def __init__(self, grpc_target, http_target):
        self.grpc_target = grpc_target
        self.host, self.grpc_port = grpc_target.rsplit(":", 1)
        self.http_base = f"http://{http_target}"
        # No proxy, whatever the environment says.
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def calls(self):
        """Every counter: {(key, method): count}."""
        with self.opener.open(f"{self.http_base}/v2/_tester/calls", timeout=10) as response:
            assert response.status == 200, response.status
            body = json.load(response)
        return {(c["key"], c["method"]): c["count"] for c in body["calls"]}

    def count(self, key, method):
        return self.calls().get((key, method), 0)

    def counts(self, key):
        """The counters of one scenario key: {method: count}."""
        return {m: n for (k, m), n in self.calls().items() if k == key}


def v2_stub(server):
    """A V2Stub over clarifai-grpc's insecure channel (with its UNAVAILABLE retry config).

    Made together: `V2Stub` reads a module-wide deserializer that each `get_*_channel` call sets.
    """
    channel = ClarifaiChannel.get_insecure_grpc_channel(
        base=server.host, port=int(server.grpc_port)
    )
    return service_pb2_grpc.V2Stub(channel)


def json_stub(server):
    channel = ClarifaiChannel.get_json_channel(base_url=server.http_base)
    return service_pb2_grpc.V2Stub(channel)


def user_app():
    return resources_pb2.UserAppIDSet(user_id=USER, app_id=APP)


def predict_request():
    text = resources_pb2.Data(text=resources_pb2.Text(raw="hello"))
    return service_pb2.PostModelOutputsRequest(
        user_app_id=user_app(), model_id=MODEL, inputs=[resources_pb2.Input(data=text)]
    )


def get_model_request():
    return service_pb2.GetModelRequest(user_app_id=user_app(), model_id=MODEL)


def list_apps_request():
    return service_pb2.ListAppsRequest()


def metadata(pairs):
    """The scenario `pairs` in `x-clarifai-status-raise`; none without pairs."""
    return () if pairs is None else ((RAISE_HEADER, pairs),)


def key(api_key):
    """Metadata holding only an API key, as clarifai-grpc's examples pass it."""
    return (("authorization", f"Key {api_key}"),)


def assert_status(status, code, what=""):
    assert status.code == code, f"{what} code {status.code}, expected {code}: {status}"
    assert status.description == DESCRIPTIONS[code], f"{what} description {status.description!r}"


def assert_counts(server, key, expected):
    seen = server.counts(key)
    assert seen == expected, f"calls under {key!r}: {seen}, expected {expected}"


def trailer(error, key):
    values = [v for k, v in (error.trailing_metadata() or ()) if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def assert_grpc_error(error, grpc_code, code):
    """A real gRPC error carrying Clarifai `code` as the crate's wire contract says."""
    assert error.code() == grpc_code, error.code()
    assert error.details() == DESCRIPTIONS[code], error.details()
    status = rpc_status.from_call(error)
    assert status is not None, "no grpc-status-details-bin"
    infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
    assert len(infos) == 1, f"{len(infos)} ErrorInfo details"
    info = error_details_pb2.ErrorInfo()
    infos[0].Unpack(info)
    # The reason is the name in Clarifai's own enum, as shipped in clarifai-grpc.
    assert info.reason == status_code_pb2.StatusCode.Name(code), info.reason
    assert info.domain == DOMAIN, info.domain
    assert info.metadata["code"] == str(code), dict(info.metadata)
    header = trailer(error, "clarifai-status-code")
    assert header == str(code), f"clarifai-status-code {header!r}"


def expect_rpc_error(call):
    try:
        response = call()
    except grpc.RpcError as error:
        return error
    raise AssertionError(f"expected a gRPC error, got OK: {response}")


class GrpcChecks:
    """clarifai-grpc's V2Stub over its insecure gRPC channel."""

    UNARY = {
        "PostModelOutputs": predict_request,
        "GetModel": get_model_request,
        "ListApps": list_apps_request,
    }

    def __init__(self, server):
        self.server = server
        self.stub = v2_stub(server)

    def call(self, method, pairs=None, timeout=10):
        """One unary call; the scenario, if any, in `x-clarifai-status-raise`."""
        request = self.UNARY[method]()
        return getattr(self.stub, method)(request, metadata=metadata(pairs), timeout=timeout)

    def stream(self, method, pairs=None):
        """Every message of a streaming call (server-streaming or bidirectional)."""
        if method == "StreamModelOutputs":
            request = iter([predict_request(), predict_request()])
        else:
            request = predict_request()
        return list(getattr(self.stub, method)(request, metadata=metadata(pairs), timeout=10))

    def check_unary_default_is_success(self):
        for method in self.UNARY:
            before = self.server.count("", method)
            assert_status(self.call(method).status, SUCCESS, method)
            after = self.server.count("", method)
            assert after == before + 1, f"{method}: calls without a scenario {before} -> {after}"

    def check_unary_scenario_from_metadata_in_body(self):
        pairs = "code=21200;id=grpc-unary"
        for method in self.UNARY:
            assert_status(self.call(method, pairs).status, 21200, method)
        assert_counts(self.server, pairs, {"PostModelOutputs": 1, "GetModel": 1, "ListApps": 1})

    def check_code_by_name_any_case(self):
        pairs = "code=model_busy_PLEASE_retry;id=grpc-name"
        assert_status(self.call("PostModelOutputs", pairs).status, 21354)
        assert_counts(self.server, pairs, {"PostModelOutputs": 1})

    def check_methods_limits_the_scenario(self):
        pairs = "code=21200;methods=PostModelOutputs;id=grpc-methods"
        assert_status(self.call("GetModel", pairs).status, SUCCESS)
        assert_status(self.call("PostModelOutputs", pairs).status, 21200)
        assert_counts(self.server, pairs, {"GetModel": 1, "PostModelOutputs": 1})

    def check_fail_times_then_success_in_body(self):
        pairs = "code=21354;fail_times=2;id=grpc-fail-times"
        codes = [self.call("PostModelOutputs", pairs).status.code for _ in range(3)]
        assert codes == [21354, 21354, SUCCESS], codes
        assert_counts(self.server, pairs, {"PostModelOutputs": 3})

    def check_server_streaming_yields_one_message(self):
        pairs = "code=21354;id=grpc-server-stream"
        responses = self.stream("GenerateModelOutputs", pairs)
        assert len(responses) == 1, f"{len(responses)} messages"
        assert_status(responses[0].status, 21354)
        assert_counts(self.server, pairs, {"GenerateModelOutputs": 1})

    def check_bidirectional_stream_yields_one_message(self):
        pairs = "code=21200;id=grpc-bidi"
        responses = self.stream("StreamModelOutputs", pairs)
        assert len(responses) == 1, f"{len(responses)} messages"
        assert_status(responses[0].status, 21200)
        assert_counts(self.server, pairs, {"StreamModelOutputs": 1})

    def check_streams_default_to_success(self):
        for method in ("GenerateModelOutputs", "StreamModelOutputs"):
            before = self.server.count("", method)
            codes = [r.status.code for r in self.stream(method)]
            assert codes == [SUCCESS], f"{method}: {codes}"
            after = self.server.count("", method)
            assert after == before + 1, f"{method}: calls without a scenario {before} -> {after}"

    def check_not_in_body_is_a_grpc_error_with_error_info(self):
        pairs = "code=11008;in_body=false;id=grpc-unauthenticated"
        error = expect_rpc_error(lambda: self.call("PostModelOutputs", pairs))
        assert_grpc_error(error, grpc.StatusCode.UNAUTHENTICATED, 11008)
        # clarifai-grpc's channel retries UNAVAILABLE only: one call.
        assert_counts(self.server, pairs, {"PostModelOutputs": 1})

    def check_unavailable_is_retried_by_the_channel_config(self):
        # 21354 maps to UNAVAILABLE, which clarifai-grpc's service config retries: 5 attempts.
        pairs = "code=21354;in_body=false;id=grpc-unavailable"
        error = expect_rpc_error(lambda: self.call("PostModelOutputs", pairs, timeout=20))
        assert_grpc_error(error, grpc.StatusCode.UNAVAILABLE, 21354)
        assert_counts(self.server, pairs, {"PostModelOutputs": 5})

    def check_channel_retries_wait_for_the_servers_pushback(self):
        # grpcio honours `grpc-retry-pushback-ms` between the service config's 5 attempts.
        pairs = "code=21354;in_body=false;retry_after_ms=100;id=grpc-pushback"
        started = time.monotonic()
        error = expect_rpc_error(lambda: self.call("PostModelOutputs", pairs, timeout=20))
        elapsed = time.monotonic() - started
        assert_grpc_error(error, grpc.StatusCode.UNAVAILABLE, 21354)
        assert trailer(error, "grpc-retry-pushback-ms") == "100"
        assert_counts(self.server, pairs, {"PostModelOutputs": 5})
        assert elapsed >= 0.4, f"5 attempts in {elapsed:.3f} s: the 4 pushbacks were not waited"
        print(f"       5 attempts in {elapsed:.2f} s")

    def check_delay_meets_the_clients_deadline(self):
        late = "delay_ms=300;id=grpc-delay-late"
        error = expect_rpc_error(lambda: self.call("GetModel", late, timeout=0.1))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED, error.code()
        pairs = "delay_ms=300;id=grpc-delay"
        started = time.monotonic()
        status = self.call("GetModel", pairs).status
        elapsed = time.monotonic() - started
        assert_status(status, SUCCESS)
        assert elapsed >= 0.3, f"answered after {elapsed:.3f} s"
        assert_counts(self.server, pairs, {"GetModel": 1})

    def check_over_size_metadata_answers_40033_and_the_next_call_succeeds_at_once(self):
        # Over the server's 16 KiB header list limit, up to 256 KiB: 40033 (RESOURCE_EXHAUSTED,
        # not retried), never UNAVAILABLE, and a call started at once after it on the same
        # channel (nothing awaited in between) is answered as usual.
        for size in (20_000, 100_000, 256 * 1024):
            pairs = f"code=11008;in_body=false;id=grpc-over-size-{size}"
            padded = metadata(pairs) + (("x-padding", "p" * size),)
            over = self.stub.PostModelOutputs.future(predict_request(), metadata=padded, timeout=10)
            following = self.stub.GetModel.future(self.UNARY["GetModel"](), timeout=10)
            error = expect_rpc_error(over.result)
            assert_grpc_error(error, grpc.StatusCode.RESOURCE_EXHAUSTED, 40033)
            assert_status(following.result().status, SUCCESS, f"right after {size} bytes")
            # Refused before the service: never counted as a call.
            assert_counts(self.server, pairs, {})
            print(f"       {size} bytes of metadata -> 40033 RESOURCE_EXHAUSTED; the next call: SUCCESS")

    def check_malformed_code_answers_invalid_request(self):
        self._malformed("code=nope;id=grpc-malformed", ["code", "nope"])

    def check_unknown_pair_answers_invalid_request(self):
        self._malformed("colour=blue;id=grpc-unknown-pair", ["colour"])

    def _malformed(self, pairs, named):
        status = self.call("PostModelOutputs", pairs).status
        assert_status(status, 11102)
        assert all(word in status.details for word in named), (
            f"details {status.details!r} do not name {named}"
        )
        print(f"       {pairs!r} -> 11102, details {status.details!r}")


class SdkChecks:
    """The official SDK: `Model(...).predict_by_bytes(...)`, the scenario in its PAT."""

    def __init__(self, server):
        self.server = server
        from clarifai.client.model import Model

        self.model_class = Model

    def model(self, pairs):
        return self.model_class(
            model_id=MODEL,
            user_id=USER,
            app_id=APP,
            base_url=f"http://{self.server.grpc_target}",
            pat=f"raise;{pairs}",
        )

    def predict(self, pairs):
        started = time.monotonic()
        try:
            return self.model(pairs).predict_by_bytes(b"hello", input_type="text")
        finally:
            print(f"       {pairs!r}: {time.monotonic() - started:.1f} s in the SDK")

    def check_sdk_busy_twice_then_answered(self):
        pairs = "code=21354;fail_times=2;methods=PostModelOutputs;id=busy"
        response = self.predict(pairs)
        assert response.status.code == SUCCESS, response.status
        assert_counts(self.server, pairs, {"GetModel": 1, "PostModelOutputs": 3})

    def check_sdk_bad_key_raises_after_one_call(self):
        pairs = "code=11008;methods=PostModelOutputs;id=badkey"
        try:
            response = self.predict(pairs)
        except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception
            print(f"       raised {type(error).__name__}: {' '.join(str(error).split())[:120]}")
            assert "CONN_KEY_INVALID" in str(error), str(error)
        else:
            raise AssertionError(f"the SDK returned {response.status}")
        assert_counts(self.server, pairs, {"GetModel": 1, "PostModelOutputs": 1})

    def check_sdk_bad_key_on_get_model_fails_the_constructor(self):
        pairs = "code=11008;methods=GetModel;id=badkey-ctor"
        try:
            self.model(pairs)
        except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception
            print(f"       raised {type(error).__name__}: {' '.join(str(error).split())[:120]}")
            assert "CONN_KEY_INVALID" in str(error), str(error)
        else:
            raise AssertionError("the constructor did not raise")
        assert_counts(self.server, pairs, {"GetModel": 1})

    def check_sdk_user_list_apps(self):
        from clarifai.client.user import User

        base_url = f"http://{self.server.grpc_target}"
        pairs = "id=sdk-user"
        apps = list(User(user_id=USER, base_url=base_url, pat=f"raise;{pairs}").list_apps())
        assert apps == [], apps
        assert_counts(self.server, pairs, {"ListApps": 1})
        pairs = "code=21200;id=sdk-user-failure"
        try:
            apps = list(User(user_id=USER, base_url=base_url, pat=f"raise;{pairs}").list_apps())
        except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception
            assert "MODEL_DOES_NOT_EXIST" in str(error), str(error)
        else:
            raise AssertionError(f"list_apps returned {apps}")
        assert_counts(self.server, pairs, {"ListApps": 1})

    def check_sdk_throttled_once_then_answered(self):
        # The SDK sleeps a fixed 5 s after CONN_THROTTLED: one throttle keeps the run short.
        pairs = "code=11005;fail_times=1;methods=PostModelOutputs;id=thr"
        response = self.predict(pairs)
        assert response.status.code == SUCCESS, response.status
        assert_counts(self.server, pairs, {"GetModel": 1, "PostModelOutputs": 2})


class JsonChecks:
    """clarifai-grpc's JSON channel against the REST side (scenario in the key)."""

    def __init__(self, server):
        self.server = server
        self.stub = json_stub(server)

    def check_json_default_is_success(self):
        method = f"POST {PREDICT_PATH}"
        before = self.server.count("", method)
        # The JSON channel insists on a one-word key: one without `raise;` carries no scenario.
        response = self.stub.PostModelOutputs(predict_request(), metadata=key("plain"))
        assert_status(response.status, SUCCESS)
        after = self.server.count("", method)
        assert after == before + 1, f"{method}: calls without a scenario {before} -> {after}"

    def check_json_scenario_from_the_key_in_body(self):
        pairs = "code=21200;id=json-scenario"
        md = key(f"raise;{pairs}")
        assert_status(self.stub.PostModelOutputs(predict_request(), metadata=md).status, 21200)
        assert_status(self.stub.ListApps(list_apps_request(), metadata=md).status, 21200)
        seen = self.server.counts(pairs)
        print(f"       calls under {pairs!r}: {seen}")
        assert seen == {f"POST {PREDICT_PATH}": 1, "GET /v2/users/me/apps": 1}, seen

    def check_json_fail_times_then_success(self):
        pairs = "code=11005;fail_times=1;id=json-fail-times"
        md = key(f"raise;{pairs}")
        codes = [
            self.stub.PostModelOutputs(predict_request(), metadata=md).status.code for _ in range(2)
        ]
        assert codes == [11005, SUCCESS], codes
        assert_counts(self.server, pairs, {f"POST {PREDICT_PATH}": 2})


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--grpc", required=True, help="host:port of the server's gRPC side")
    parser.add_argument("--http", required=True, help="host:port of the server's HTTP side")
    parser.add_argument(
        "--descriptions", required=True, help="JSON object: each code's number to its description"
    )
    args = parser.parse_args()
    DESCRIPTIONS.update({int(code): text for code, text in json.loads(args.descriptions).items()})

    server = Server(args.grpc, args.http)
    started = time.monotonic()
    passed = failed = 0
    # In this order: the SDK's sleeps come last, after every cheap check has spoken.
    for group in (GrpcChecks, JsonChecks, SdkChecks):
        try:
            checks = group(server)
        except Exception:  # noqa: BLE001 - a group that cannot start is one failure
            failed += 1
            print(f"FAILED {group.__name__} (setup)")
            traceback.print_exc(file=sys.stdout)
            continue
        names = [n for n in vars(group) if n.startswith("check_")]
        for name in names:
            check_started = time.monotonic()
            try:
                getattr(checks, name)()
                passed += 1
                print(f"ok     {name} ({time.monotonic() - check_started:.2f} s)", flush=True)
            except Exception:  # noqa: BLE001 - every failure is reported, then counted
                failed += 1
                print(f"FAILED {name} ({time.monotonic() - check_started:.2f} s)", flush=True)
                traceback.print_exc(file=sys.stdout)
    if failed:
        print("calls seen by the server:")
        try:
            for (key, method), count in sorted(server.calls().items()):
                print(f"  {count:3} {method:45} {key!r}")
        except Exception as error:  # noqa: BLE001 - the summary must still print
            print(f"  (cannot read the counters: {error})")
    print(f"total {time.monotonic() - started:.1f} s")
    print(f"clarifai-clients: {passed} passed, {failed} failed", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
