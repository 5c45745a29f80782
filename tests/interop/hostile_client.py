"""Reads what the crate's server layers answer to hostile handlers, with a default grpcio client.

Run by tests/hostile_interop.rs, which starts the server:

    python hostile_client.py --target 127.0.0.1:PORT --cases a,b,c

For each case, one call of StatusTester/Raise with metadata `x-hostile-case: <case>` on one
channel with grpcio's default options, and one JSON line on stdout with what the client read:
the gRPC code, the `clarifai-status-code` trailer, the code in the Clarifai ErrorInfo of
`grpc-status-details-bin`, the in-body status code of an OK answer, and the message's length.
The Rust test asserts on these lines; this script only reads.
"""

import argparse
import json
import sys

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

METHOD = "/clarifai.status.testing.v1.StatusTester/Raise"
DOMAIN = "api.clarifai.com"


def varint(data, at):
    value, shift = 0, 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def in_body_code(message):
    """RaiseResponse.status.code (field 1, then field 1), read without generated stubs."""
    at = 0
    while at < len(message):
        key, at = varint(message, at)
        field, wire = key >> 3, key & 7
        if wire == 2:
            length, at = varint(message, at)
            inner = message[at : at + length]
            at += length
            if field == 1:
                i = 0
                while i < len(inner):
                    k, i = varint(inner, i)
                    if k == 0x08:
                        code, i = varint(inner, i)
                        return code - (1 << 64) if code >= 1 << 63 else code
                    if k & 7 == 2:
                        n, i = varint(inner, i)
                        i += n
                    elif k & 7 == 0:
                        _, i = varint(inner, i)
                    else:
                        return None
                return 0
        elif wire == 0:
            _, at = varint(message, at)
        else:
            return None
    return None


def error_info_code(call):
    try:
        status = rpc_status.from_call(call)
    except ValueError:
        # grpcio-status refuses details whose code differs from the call's: no ErrorInfo read.
        return None
    if status is None:
        return None
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            if info.domain == DOMAIN and "code" in info.metadata:
                return int(info.metadata["code"])
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--target", required=True)
    parser.add_argument("--cases", required=True)
    args = parser.parse_args()
    channel = grpc.insecure_channel(args.target)
    raise_ = channel.unary_unary(
        METHOD, request_serializer=lambda b: b, response_deserializer=lambda b: b
    )
    for case in args.cases.split(","):
        line = {"case": case, "client": "grpcio"}
        try:
            message, call = raise_.with_call(
                b"", metadata=[("x-hostile-case", case)], timeout=30
            )
            line.update(grpc_code=0, in_body_code=in_body_code(message))
            trailers = dict(call.trailing_metadata() or ())
        except grpc.RpcError as error:
            line.update(
                grpc_code=error.code().value[0],
                message_len=len(error.details() or ""),
                message_head=(error.details() or "")[:120],
                error_info_code=error_info_code(error),
            )
            trailers = dict(error.trailing_metadata() or ())
        code = trailers.get("clarifai-status-code")
        line["clarifai_code"] = int(code) if code is not None else None
        print(json.dumps(line), flush=True)
    channel.close()


if __name__ == "__main__":
    sys.exit(main())
