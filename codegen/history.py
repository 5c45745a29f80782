#!/usr/bin/env python3
"""Rebuilds tests/data/clarifai-history.tsv: every (number, name) of Clarifai's StatusCode enum in
every clarifai-grpc release from 6.x on, and in the pinned clarifai-nodejs-grpc.

Usage (from the repository's root; Python 3 standard library only):

    mkdir -p /tmp/wheels
    # every release from 6.0.0 on, one after the other
    for v in $(pip index versions clarifai-grpc | sed -n 's/Available versions: //p' | tr -d , \
               | tr ' ' '\n' | grep -E '^([6-9]|1[0-9])\.'); do
        pip download --quiet --no-deps --only-binary=:all: -d /tmp/wheels clarifai-grpc==$v
    done
    npm pack clarifai-nodejs-grpc@11.11.0 && tar xzf clarifai-nodejs-grpc-11.11.0.tgz
    python3 codegen/history.py /tmp/wheels package/proto/clarifai/api/status/status_code_pb.js \
        > tests/data/clarifai-history.tsv

Each wheel's enum is read by the generator (`cargo run -p clarifai-status-codegen -- enum`),
which decodes the descriptor the wheel embeds; the Node package's by the object literal of its
generated `status_code_pb.js`. Nothing of Clarifai's is copied into the repository but these
numbers and names.
"""

import os
import re
import subprocess
import sys


def release_of(wheel):
    return wheel.split("-")[1]


def key(release):
    return tuple(int(p) for p in release.split("."))


def node_enum(path):
    text = open(path, encoding="utf-8").read()
    body = text.split("proto.clarifai.api.status.StatusCode = {", 1)[1].split("};", 1)[0]
    return {(int(n), name) for name, n in re.findall(r"^\s*([A-Z0-9_]+): (\d+),?$", body, re.M)}


def main():
    wheels_dir, node_js = sys.argv[1], sys.argv[2]
    wheels = sorted(
        (w for w in os.listdir(wheels_dir) if w.startswith("clarifai_grpc-") and w.endswith(".whl")),
        key=lambda w: key(release_of(w)),
    )
    wheels = [w for w in wheels if key(release_of(w)) >= (6, 0, 0)]
    releases = [release_of(w) for w in wheels]
    seen = {}  # (number, name) -> [first, last]
    for wheel in wheels:
        out = subprocess.run(
            ["cargo", "run", "--quiet", "-p", "clarifai-status-codegen", "--", "enum",
             os.path.join(wheels_dir, wheel)],
            check=True, capture_output=True, text=True,
        ).stdout
        release = release_of(wheel)
        for line in out.splitlines():
            number, name, _ = line.split("\t")
            span = seen.setdefault((int(number), name), [release, release])
            span[1] = release
    node = node_enum(node_js)
    print("# Every (number, name) of Clarifai's StatusCode enum in the clarifai-grpc wheels on PyPI,")
    print(f"# {releases[0]} to {releases[-1]} ({len(releases)} releases), and in the pinned clarifai-nodejs-grpc.")
    print("# Rebuilt by codegen/history.py. Columns: number, name, first and last release that has the")
    print("# name for the number, gone_in (the release after `last`; empty if the newest has it), node")
    print("# (yes if clarifai-nodejs-grpc 11.11.0 has it).")
    print("number\tname\tfirst\tlast\tgone_in\tnode")
    for (number, name) in sorted(seen.keys() | node):
        first, last = seen.get((number, name), ("", ""))
        gone = ""
        if last and last != releases[-1]:
            gone = releases[releases.index(last) + 1]
        in_node = "yes" if (number, name) in node else "no"
        print(f"{number}\t{name}\t{first}\t{last}\t{gone}\t{in_node}")


if __name__ == "__main__":
    main()
