"""Points Clarifai's official Python SDK at the Rust V2 server of tests/clarifai-v2/examples/v2_server.rs.

Run by .ci/run with the example's binary, built beforehand:

    python v2_server_sdk.py target/debug/examples/v2_server

Starts the server on a free port of 127.0.0.1 (it prints `listening on ADDR`, then `call METHOD`
for every call it receives), points the SDK at it as a user points it at Clarifai
(`base_url="http://127.0.0.1:PORT"`, a PAT), and checks, counting the calls at the server:

- a model busy twice (the handler's `Err(Status::from(MODEL_BUSY_PLEASE_RETRY))`, in-body behind
  `ErrorToInBodyLayer`), then answered: the SDK retries, 3 `PostModelOutputs`;
- a handler's plain `Err(Status::resource_exhausted(..))`, in-body `CONN_THROTTLED` behind
  `ErrorToInBodyLayer`: the SDK retries it once (after its fixed 5 s sleep), 2 `PostModelOutputs`;
- a bad key: `ApiKeyAuth` answers `CONN_KEY_NOT_FOUND` (11009) in-body and the SDK raises, 1
  `GetModel`;
- `User(...).list_apps()`: the server's two apps, 2 `ListApps` (the SDK pages until an empty
  page).

Prints one line per check and `v2-server-sdk: N passed, M failed`; exits non-zero on a failure.
"""

import os
import subprocess
import sys
import threading
import time
import traceback
from collections import Counter

# The server is on loopback: never route to it through a proxy from the environment.
for _name in ("no_proxy", "NO_PROXY", "no_grpc_proxy"):
    os.environ[_name] = ",".join(filter(None, [os.environ.get(_name), "127.0.0.1", "localhost"]))

KEY = "s3cret"
USER, APP = "u", "a"


class Server:
    """The example server as a child process, and the calls it has printed."""

    def __init__(self, binary):
        env = dict(os.environ, V2_SERVER_KEYS=KEY)
        self.process = subprocess.Popen(
            [binary, "127.0.0.1:0"], stdout=subprocess.PIPE, text=True, env=env
        )
        first = self.process.stdout.readline().strip()
        assert first.startswith("listening on "), f"the server said {first!r}"
        self.base_url = "http://" + first.removeprefix("listening on ")
        self.calls = Counter()
        self.lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            if line.startswith("call "):
                with self.lock:
                    self.calls[line.split()[1]] += 1

    def counts(self):
        with self.lock:
            return Counter(self.calls)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


def delta(server, before, expected):
    """Waits (at most 10 s: the server prints each call before answering it, the reader thread
    may lag) until the calls since `before` are `expected`; fails with what was seen."""
    waited = 0.0
    while True:
        seen = {m: n for m, n in (server.counts() - before).items() if n}
        if seen == expected or waited >= 10:
            break
        time.sleep(0.05)
        waited += 0.05
    assert seen == expected, f"server counted {seen}, expected {expected}"
    print(f"       server counted {seen}")


def model(server, model_id, pat=KEY):
    from clarifai.client.model import Model

    return Model(model_id=model_id, user_id=USER, app_id=APP, base_url=server.base_url, pat=pat)


def predict(server, model_id):
    started = time.monotonic()
    try:
        return model(server, model_id).predict_by_bytes(b"hello", input_type="text")
    finally:
        print(f"       {model_id}: {time.monotonic() - started:.1f} s in the SDK")


def check_busy_twice_then_answered(server):
    from clarifai_grpc.grpc.api.status import status_code_pb2

    before = server.counts()
    response = predict(server, "busy-twice")
    assert response.status.code == status_code_pb2.SUCCESS, response.status
    delta(server, before, {"GetModel": 1, "PostModelOutputs": 3})


def check_handler_error_retried_once_in_body(server):
    from clarifai_grpc.grpc.api.status import status_code_pb2

    before = server.counts()
    response = predict(server, "throttled-once")
    assert response.status.code == status_code_pb2.SUCCESS, response.status
    delta(server, before, {"GetModel": 1, "PostModelOutputs": 2})


def check_bad_key_raises(server):
    before = server.counts()
    try:
        model(server, "any", pat="not-the-key")
    except Exception as error:  # noqa: BLE001 - the SDK raises a bare Exception
        print(f"       raised {type(error).__name__}: {' '.join(str(error).split())[:120]}")
        # `ApiKeyAuth` with `StaticKeys`: a key it does not know is CONN_KEY_NOT_FOUND (11009).
        assert "CONN_KEY_NOT_FOUND" in str(error), str(error)
    else:
        raise AssertionError("the SDK accepted a bad key")
    delta(server, before, {"GetModel": 1})


def check_list_apps(server):
    from clarifai.client.user import User

    before = server.counts()
    apps = list(User(user_id=USER, base_url=server.base_url, pat=KEY).list_apps())
    ids = sorted(app.id for app in apps)
    assert ids == ["main", "staging"], ids
    # The SDK pages until a page comes back empty: page 1, then page 2.
    delta(server, before, {"ListApps": 2})


CHECKS = [
    check_list_apps,
    check_bad_key_raises,
    check_busy_twice_then_answered,
    check_handler_error_retried_once_in_body,
]


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} PATH_TO_V2_SERVER_BINARY")
    server = Server(sys.argv[1])
    passed = failed = 0
    try:
        for check in CHECKS:
            name = check.__name__.removeprefix("check_")
            try:
                check(server)
            except Exception:  # noqa: BLE001 - report every check
                failed += 1
                print(f"FAIL {name}")
                traceback.print_exc()
            else:
                passed += 1
                print(f"ok   {name}")
    finally:
        server.stop()
    print(f"v2-server-sdk: {passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
