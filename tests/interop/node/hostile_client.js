// Reads what the crate's server layers answer to hostile handlers, with a default grpc-js client.
//
// Run by tests/hostile_interop.rs, which starts the server:
//
//     node hostile_client.js --target 127.0.0.1:PORT --cases a,b,c
//
// For each case, one call of StatusTester/Raise with metadata `x-hostile-case: <case>` on one
// client with grpc-js's default options, and one JSON line on stdout: the gRPC code, the
// `clarifai-status-code` trailer, the in-body status code of an OK answer, the message's length.
// The Rust test asserts on these lines; this script only reads.
'use strict';

const grpc = require('@grpc/grpc-js');

const METHOD = '/clarifai.status.testing.v1.StatusTester/Raise';

function arg(name) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`--${name} is required`);
  return process.argv[at + 1];
}

function varint(data, at) {
  let value = 0n;
  let shift = 0n;
  for (;;) {
    const byte = data[at++];
    value |= BigInt(byte & 0x7f) << shift;
    shift += 7n;
    if (!(byte & 0x80)) return [value, at];
  }
}

// RaiseResponse.status.code (field 1, then field 1), read without generated stubs.
function inBodyCode(message) {
  let at = 0;
  while (at < message.length) {
    let key;
    [key, at] = varint(message, at);
    const wire = Number(key & 7n);
    if (wire === 2) {
      let length;
      [length, at] = varint(message, at);
      const inner = message.subarray(at, at + Number(length));
      at += Number(length);
      if (key >> 3n === 1n) {
        let i = 0;
        while (i < inner.length) {
          let k;
          [k, i] = varint(inner, i);
          if (k === 0x08n) {
            const [code] = varint(inner, i);
            return Number(BigInt.asIntN(64, code));
          }
          if ((k & 7n) === 2n) {
            let n;
            [n, i] = varint(inner, i);
            i += Number(n);
          } else if ((k & 7n) === 0n) {
            [, i] = varint(inner, i);
          } else {
            return null;
          }
        }
        return 0;
      }
    } else if (wire === 0) {
      [, at] = varint(message, at);
    } else {
      return null;
    }
  }
  return null;
}

function call(client, kase) {
  return new Promise((resolve) => {
    const metadata = new grpc.Metadata();
    metadata.set('x-hostile-case', kase);
    const line = { case: kase, client: 'grpc-js' };
    let trailers = null;
    const deadline = new Date(Date.now() + 30000);
    const request = client.makeUnaryRequest(
      METHOD,
      (b) => b,
      (b) => b,
      Buffer.alloc(0),
      metadata,
      { deadline },
      (error, message) => {
        if (error) {
          line.grpc_code = error.code;
          line.message_len = (error.details || '').length;
          line.message_head = (error.details || '').slice(0, 120);
          trailers = error.metadata;
        } else {
          line.grpc_code = 0;
          line.in_body_code = inBodyCode(message);
        }
        setImmediate(() => {
          const value = trailers ? trailers.get('clarifai-status-code') : [];
          line.clarifai_code = value.length ? Number(String(value[0])) : null;
          resolve(line);
        });
      },
    );
    request.on('status', (status) => {
      trailers = status.metadata;
    });
  });
}

async function main() {
  const client = new grpc.Client(arg('target'), grpc.credentials.createInsecure());
  for (const kase of arg('cases').split(',')) {
    console.log(JSON.stringify(await call(client, kase)));
  }
  client.close();
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
