"""Writes the FileDescriptorSet of Clarifai's whole V2 service, from clarifai-grpc's own modules.

Usage: python v2_descriptors.py OUT.fds

clarifai-grpc ships no .proto files, but every generated `*_pb2` module holds its file's
compiled descriptor (`DESCRIPTOR.serialized_pb`) and its imports (`DESCRIPTOR.dependencies`).
This walks them from `clarifai_grpc.grpc.api.service_pb2` (the `clarifai.api.V2` service) and
writes every file, google/api and google/protobuf included, imports before importers, as one
serialized `google.protobuf.FileDescriptorSet`: what `protoc --include_imports
--descriptor_set_out` would write, and what `clarifai_status::build` compiles
(tests/clarifai-v2/build.rs reads it from the env var CLARIFAI_V2_DESCRIPTORS).
"""

import sys

from google.protobuf import descriptor_pb2


def files_in_dependency_order(root):
    """Every file `root` imports, transitively, each after its own imports, then `root`."""
    ordered, seen = [], set()
    # Iterative depth-first post-order: no recursion limit whatever the import depth.
    stack = [(root, False)]
    while stack:
        file, expanded = stack.pop()
        if expanded:
            ordered.append(file)
            continue
        if file.name in seen:
            continue
        seen.add(file.name)
        stack.append((file, True))
        for dependency in reversed(file.dependencies):
            if dependency.name not in seen:
                stack.append((dependency, False))
    return ordered


def main(argv):
    if len(argv) != 2:
        print("usage: v2_descriptors.py OUT.fds", file=sys.stderr)
        return 2
    # Imported here so that a missing package fails with its own clear ImportError after usage.
    from clarifai_grpc.grpc.api import service_pb2

    files = files_in_dependency_order(service_pb2.DESCRIPTOR)
    fds = descriptor_pb2.FileDescriptorSet()
    for file in files:
        fds.file.add().ParseFromString(file.serialized_pb)
    services = [s.name for f in fds.file if f.package == "clarifai.api" for s in f.service]
    if "V2" not in services:
        print("clarifai_grpc's service_pb2 declares no clarifai.api.V2", file=sys.stderr)
        return 1
    with open(argv[1], "wb") as out:
        out.write(fds.SerializeToString())
    methods = sum(len(s.method) for f in fds.file for s in f.service if s.name == "V2")
    print(f"{argv[1]}: {len(fds.file)} files, V2 with {methods} methods", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
