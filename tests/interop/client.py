"""Reads the status test server's answers with real grpcio and grpcio-status.

Run by tests/interop_python.rs, which starts the server:

    python client.py --target 127.0.0.1:PORT --proto-dir path/to/crate/proto

Stubs are generated at runtime from the crate's protos into a temporary directory. Prints one
line per check and a final `interop: N passed, M failed`; exits non-zero on any failure.
"""

import argparse
import importlib
import importlib.resources
import json
import os
import subprocess
import sys
import tempfile
import traceback

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

# Only the crate's own packages: google/rpc comes from googleapis-common-protos (grpcio-status's
# dependency), and generating it again would register its files twice.
PROTOS = [
    "clarifai/status/meta.proto",
    "clarifai/api/status/status_code.proto",
    "clarifai/api/status/status.proto",
    "clarifai/status/testing/v1/tester.proto",
]

DOMAIN = "api.clarifai.com"
SECRETS = ["SECRET-STACK-FRAME", "SECRET-INTERNAL", "SECRET-URL"]


def generate_stubs(proto_dir, out_dir):
    # grpc_tools bundles the well-known protos (google/protobuf/descriptor.proto, ...).
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    command = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{proto_dir}",
        # The test server's own service sits with its crate, beside the core's protos.
        f"-I{os.path.join(os.path.dirname(os.path.abspath(proto_dir)), 'clarifai-status-testing', 'proto')}",
        f"-I{well_known}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        *PROTOS,
    ]
    subprocess.run(command, check=True)
    # The official SDK (`clarifai`, installed beside for tests/real_clients.rs) is a regular
    # package and would shadow namespace packages of the same name wherever they are on the path:
    # make the generated ones regular packages too, and first on the path.
    for directory, _, _ in os.walk(out_dir):
        if directory != out_dir:
            open(os.path.join(directory, "__init__.py"), "a").close()
    sys.path.insert(0, out_dir)
    status_pb2 = importlib.import_module("clarifai.api.status.status_pb2")
    tester_pb2 = importlib.import_module("clarifai.status.testing.v1.tester_pb2")
    tester_grpc = importlib.import_module("clarifai.status.testing.v1.tester_pb2_grpc")
    return status_pb2, tester_pb2, tester_grpc


class Checks:
    def __init__(self, stub, status_pb2, tester_pb2, codes):
        self.stub = stub
        self.status_pb2 = status_pb2
        self.tester_pb2 = tester_pb2
        # [{"code": 11008, "name": "CONN_KEY_INVALID", "grpc": 16, "failure": true}, ...]
        self.codes = codes

    def raise_(self, code, **fields):
        status = fields.pop("status", None) or self.status_pb2.Status(code=code)
        request = self.tester_pb2.RaiseRequest(status=status, **fields)
        return self.stub.Raise(request, timeout=10)

    def raise_error(self, code, **fields):
        try:
            response = self.raise_(code, **fields)
        except grpc.RpcError as error:
            return error
        raise AssertionError(f"expected a gRPC error, got OK: {response}")

    def details(self, error, reason, code):
        """The error's google.rpc.Status; checks it holds exactly one Clarifai ErrorInfo."""
        status = rpc_status.from_call(error)
        assert status is not None, "no grpc-status-details-bin"
        assert status.code == error.code().value[0], (status.code, error.code())
        assert status.message == error.details(), (status.message, error.details())
        infos = [d for d in status.details if d.Is(error_details_pb2.ErrorInfo.DESCRIPTOR)]
        assert len(infos) == 1, f"{len(infos)} ErrorInfo details"
        info = error_details_pb2.ErrorInfo()
        infos[0].Unpack(info)
        assert info.reason == reason, info.reason
        assert info.domain == DOMAIN, info.domain
        assert info.metadata["code"] == str(code), dict(info.metadata)
        assert trailer(error, "clarifai-status-code") == str(code)
        return status, info

    def check_failure_is_a_grpc_error(self):
        error = self.raise_error(11008)
        assert error.code() == grpc.StatusCode.UNAUTHENTICATED, error.code()
        assert error.details() == "Invalid API key or Invalid API key/application pair", error.details()
        status, _ = self.details(error, "CONN_KEY_INVALID", 11008)
        retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
        assert not retry, "RetryInfo without retry_after_ms"

    def check_retry_after_is_retry_info(self):
        error = self.raise_error(11005, retry_after_ms=1500)
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error.code()
        status, _ = self.details(error, "CONN_THROTTLED", 11005)
        retry = [d for d in status.details if d.Is(error_details_pb2.RetryInfo.DESCRIPTOR)]
        assert len(retry) == 1, f"{len(retry)} RetryInfo details"
        info = error_details_pb2.RetryInfo()
        retry[0].Unpack(info)
        delay_ms = info.retry_delay.seconds * 1000 + info.retry_delay.nanos // 1_000_000
        assert delay_ms == 1500, info.retry_delay
        assert trailer(error, "grpc-retry-pushback-ms") == "1500"

    def check_in_body_is_ok(self):
        # Calls without a key share one counter: count under a key of this check's own.
        response = self.raise_(11008, in_body=True, key="in-body")
        assert response.status.code == 11008, response.status.code
        assert response.attempt == 1, response.attempt

    def check_unknown_code_round_trips(self):
        error = self.raise_error(12345)
        assert error.code() == grpc.StatusCode.UNKNOWN, error.code()
        self.details(error, "UNKNOWN_CODE", 12345)

    def check_fail_times_then_success(self):
        for _ in range(2):
            error = self.raise_error(21354, fail_times=2, key="python")
            assert error.code() == grpc.StatusCode.UNAVAILABLE, error.code()
        response = self.raise_(21354, fail_times=2, key="python")
        assert response.status.code == 10000, response.status.code
        assert response.attempt == 3, response.attempt

    def check_any_text_size_keeps_the_code(self):
        # Default grpcio drops trailers past 8-16 KiB of metadata and reports RESOURCE_EXHAUSTED:
        # whatever the size of description and details, the right code must arrive.
        by_grpc = {c.value[0]: c for c in grpc.StatusCode}
        sizes = [6 * 1024, 10 * 1024, 1 << 20]
        for entry in self.codes:
            # Every code at 6 and 10 KiB; at 1 MB every code too, in ASCII and in 2-byte UTF-8.
            for size in sizes + [-(1 << 20)]:
                text = "x" * size if size > 0 else "\u00e9" * (-size // 2)
                status = self.status_pb2.Status(code=entry["code"], description=text, details=text)
                what = f"{entry['code']} with {abs(size)} bytes"
                if not entry["failure"]:
                    response = self.raise_(entry["code"], status=status, key=f"long-{entry['code']}")
                    assert response.status.code == entry["code"], what
                    continue
                error = self.raise_error(entry["code"], status=status)
                want = by_grpc[entry["grpc"]]
                assert error.code() == want, (what, error.code(), want)
                _, info = self.details(error, entry["name"], entry["code"])
                assert error.details().startswith(text[:100]), what
                assert "truncated from" in error.details(), what
                assert info.metadata["details"].startswith(text[:100]), what

    def check_private_fields_stay_private(self):
        status = self.status_pb2.Status(
            code=11008,
            stack_trace=[SECRETS[0]],
            internal_details=SECRETS[1],
            redirect_info=self.status_pb2.RedirectInfo(url=SECRETS[2]),
        )
        error = self.raise_error(11008, status=status)
        seen = [error.details().encode(), rpc_status.from_call(error).SerializeToString()]
        for key, value in error.trailing_metadata() or ():
            seen.append(value if isinstance(value, bytes) else value.encode())
        response = self.raise_(11008, status=status, in_body=True)
        seen.append(response.SerializeToString())
        for secret in SECRETS:
            assert not any(secret.encode() in blob for blob in seen), f"{secret} leaked"


def trailer(error, key):
    values = [v for k, v in (error.trailing_metadata() or ()) if k == key]
    assert len(values) == 1, f"{key}: {values}"
    return values[0]


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--target", required=True, help="host:port of the gRPC server")
    parser.add_argument("--proto-dir", required=True, help="the crate's proto/ directory")
    parser.add_argument(
        "--codes",
        required=True,
        help="JSON file: every code of the table with its gRPC code, name and whether it fails",
    )
    args = parser.parse_args()
    with open(args.codes, encoding="utf-8") as f:
        codes = json.load(f)

    with tempfile.TemporaryDirectory(prefix="clarifai-status-interop-") as out_dir:
        status_pb2, tester_pb2, tester_grpc = generate_stubs(args.proto_dir, out_dir)
        # The server is local: never route through a proxy from the environment.
        options = [("grpc.enable_http_proxy", 0)]
        with grpc.insecure_channel(args.target, options=options) as channel:
            checks = Checks(tester_grpc.StatusTesterStub(channel), status_pb2, tester_pb2, codes)
            names = sorted(n for n in dir(checks) if n.startswith("check_"))
            failed = 0
            for name in names:
                try:
                    getattr(checks, name)()
                    print(f"ok     {name}")
                except Exception:  # noqa: BLE001 - every failure is reported, then counted
                    failed += 1
                    print(f"FAILED {name}")
                    traceback.print_exc(file=sys.stdout)
    print(f"interop: {len(names) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
