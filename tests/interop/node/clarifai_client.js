// Drives Clarifai's own generated Node.js V2 client (clarifai-nodejs-grpc) against the status
// test server's V2 stand-in.
//
// Run by tests/real_clients_node.rs, which starts the server with gRPC and HTTP on 127.0.0.1:
//
//     node clarifai_client.js --grpc 127.0.0.1:GRPC_PORT --http 127.0.0.1:HTTP_PORT
//
// The client is the package's static `V2Client` with insecure credentials (its `ClarifaiStub`
// always uses TLS or Clarifai's own host), the scenario in metadata `x-clarifai-status-raise`.
// Checks: in-body statuses on unary, server-streaming and bidirectional methods; `in_body=false`
// as a real gRPC error (code, `clarifai-status-code`, and the `google.rpc.Status` /
// `google.rpc.ErrorInfo` of `grpc-status-details-bin`, decoded with google-protobuf's
// BinaryReader, which clarifai-nodejs-grpc already depends on); a delay against the client's
// deadline; over-size metadata followed by a normal call on the same channel; and every call
// counted by the server (`GET /v2/_tester/calls`), each scenario with an `id=` of its own: run it
// against a fresh server. Prints one line per check and a final `clarifai-node: N passed, M
// failed`; exits non-zero on any failure.
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { createRequire } = require('module');

const services = require('clarifai-nodejs-grpc/proto/clarifai/api/service_grpc_pb');
const service = require('clarifai-nodejs-grpc/proto/clarifai/api/service_pb');
const resources = require('clarifai-nodejs-grpc/proto/clarifai/api/resources_pb');
const { StatusCode } = require('clarifai-nodejs-grpc/proto/clarifai/api/status/status_code_pb');

// The grpc-js and google-protobuf that clarifai-nodejs-grpc itself loads (not whatever NODE_PATH
// finds first): credentials and metadata must come from the client's own grpc-js.
const packageRequire = createRequire(
  require.resolve('clarifai-nodejs-grpc/proto/clarifai/api/service_grpc_pb'),
);
const grpc = packageRequire('@grpc/grpc-js');
const { BinaryReader } = packageRequire('google-protobuf');

const RAISE_HEADER = 'x-clarifai-status-raise';
const DOMAIN = 'api.clarifai.com';
const ERROR_INFO_TYPE = 'type.googleapis.com/google.rpc.ErrorInfo';
const SUCCESS = StatusCode.SUCCESS;
const CODE_NAMES = Object.fromEntries(Object.entries(StatusCode).map(([name, n]) => [n, name]));
const USER = 'u';
const APP = 'a';
const MODEL = 'm';

function arg(name) {
  const at = process.argv.indexOf(`--${name}`);
  if (at < 0 || at + 1 >= process.argv.length) throw new Error(`--${name} is required`);
  return process.argv[at + 1];
}

function fail(message) {
  throw new Error(message);
}

function assertEqual(actual, expected, what) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) fail(`${what}: got ${a}, expected ${e}`);
}

// Which grpc-js copies are loaded, by directory and version: the V2 client's must be 1.14.x,
// and the only one.
function loadedGrpcJs() {
  const roots = new Set();
  for (const file of Object.keys(require.cache)) {
    const at = file.lastIndexOf(`${path.sep}@grpc${path.sep}grpc-js${path.sep}`);
    if (at >= 0) roots.add(file.slice(0, at) + `${path.sep}@grpc${path.sep}grpc-js`);
  }
  return [...roots].map((root) => ({
    root,
    version: JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version,
  }));
}

class Server {
  constructor(grpcTarget, httpTarget) {
    this.grpcTarget = grpcTarget;
    this.httpTarget = httpTarget;
  }

  // Every counter: Map of `key\u0000method` to count.
  calls() {
    return new Promise((resolve, reject) => {
      const [host, port] = [
        this.httpTarget.slice(0, this.httpTarget.lastIndexOf(':')),
        Number(this.httpTarget.slice(this.httpTarget.lastIndexOf(':') + 1)),
      ];
      const request = http.get({ host, port, path: '/v2/_tester/calls', timeout: 10000 }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (chunk) => {
          body += chunk;
        });
        res.on('end', () => {
          if (res.statusCode !== 200) {
            reject(new Error(`/v2/_tester/calls: HTTP ${res.statusCode}: ${body}`));
            return;
          }
          const counts = new Map();
          for (const c of JSON.parse(body).calls) counts.set(`${c.key}\u0000${c.method}`, c.count);
          resolve(counts);
        });
      });
      request.on('timeout', () => request.destroy(new Error('/v2/_tester/calls: timed out')));
      request.on('error', reject);
    });
  }

  // The counters of one scenario key: { method: count }.
  async counts(key) {
    const out = {};
    for (const [k, n] of await this.calls()) {
      const [scenario, method] = k.split('\u0000');
      if (scenario === key) out[method] = n;
    }
    return sorted(out);
  }
}

function sorted(object) {
  return Object.fromEntries(Object.entries(object).sort(([a], [b]) => (a < b ? -1 : 1)));
}

// What the script sent, to compare with the server's counters at the end (check 6).
const SENT = new Map();
// Keys asserted in their own check only: the call right after over-size metadata reaches the
// server or not depending on a server fix under way, and must not fail check 6 as well.
const SENT_ELSEWHERE = new Set();

function sent(key, method, n = 1) {
  const k = `${key}\u0000${method}`;
  SENT.set(k, (SENT.get(k) || 0) + n);
}

async function assertCounts(server, key, expected) {
  assertEqual(await server.counts(key), sorted(expected), `calls under ${JSON.stringify(key)}`);
}

function newClient(server) {
  return new services.V2Client(server.grpcTarget, grpc.credentials.createInsecure());
}

function metadata(pairs, extra = {}) {
  const md = new grpc.Metadata();
  if (pairs !== null) md.set(RAISE_HEADER, pairs);
  for (const [name, value] of Object.entries(extra)) md.set(name, value);
  return md;
}

function userApp() {
  const ids = new resources.UserAppIDSet();
  ids.setUserId(USER);
  ids.setAppId(APP);
  return ids;
}

function predictRequest() {
  const text = new resources.Text();
  text.setRaw('hello');
  const data = new resources.Data();
  data.setText(text);
  const input = new resources.Input();
  input.setData(data);
  const request = new service.PostModelOutputsRequest();
  request.setUserAppId(userApp());
  request.setModelId(MODEL);
  request.setInputsList([input]);
  return request;
}

function deadline(ms) {
  return { deadline: new Date(Date.now() + ms) };
}

// The scenario a call's metadata carries, as the server keys its counters.
function scenarioOf(md) {
  const values = md.get(RAISE_HEADER);
  return values.length ? String(values[0]) : '';
}

// One unary PostModelOutputs: resolves { error, response }. Recorded as sent (check 6).
function predict(client, md, ms = 10000) {
  sent(scenarioOf(md), 'PostModelOutputs');
  return new Promise((resolve) => {
    client.postModelOutputs(predictRequest(), md, deadline(ms), (error, response) => {
      resolve({ error, response });
    });
  });
}

async function predictOk(client, md, what, ms) {
  const { error, response } = await predict(client, md, ms);
  if (error) fail(`${what}: gRPC error ${error.code} (${grpc.status[error.code]}): ${error.details}`);
  return response;
}

async function predictError(client, md, what, ms) {
  const { error, response } = await predict(client, md, ms);
  if (!error) fail(`${what}: expected a gRPC error, got OK with ${describe(response.getStatus())}`);
  return error;
}

function describe(status) {
  return status ? `code ${status.getCode()} (${JSON.stringify(status.getDescription())})` : 'no status';
}

function assertStatus(status, code, what) {
  if (!status) fail(`${what}: no status in the response`);
  if (status.getCode() !== code) fail(`${what}: in-body ${describe(status)}, expected ${code}`);
  if (!status.getDescription()) fail(`${what}: in-body code ${code} without a description`);
}

// Every message of a streaming call, and how it ended: { messages, error }.
function stream(call) {
  return new Promise((resolve) => {
    const messages = [];
    let error = null;
    call.on('data', (message) => messages.push(message));
    call.on('error', (e) => {
      error = e;
    });
    call.on('status', () => {
      // 'status' comes after the last 'data'; 'error' (if any) before it.
      setImmediate(() => resolve({ messages, error }));
    });
  });
}

function generate(client, md) {
  sent(scenarioOf(md), 'GenerateModelOutputs');
  return stream(client.generateModelOutputs(predictRequest(), md, deadline(10000)));
}

function bidi(client, md) {
  sent(scenarioOf(md), 'StreamModelOutputs');
  const call = client.streamModelOutputs(md, deadline(10000));
  const done = stream(call);
  call.write(predictRequest());
  call.write(predictRequest());
  call.end();
  return done;
}

// --- google.rpc.Status / Any / ErrorInfo, read with google-protobuf's BinaryReader ----------

function readFields(bytes, onField) {
  const reader = new BinaryReader(bytes);
  while (reader.nextField()) {
    if (reader.isEndGroup()) break;
    if (!onField(reader.getFieldNumber(), reader)) reader.skipField();
  }
}

// google.rpc.Status { int32 code = 1; string message = 2; repeated google.protobuf.Any details = 3; }
function decodeRpcStatus(bytes) {
  const status = { code: 0, message: '', details: [] };
  readFields(bytes, (field, r) => {
    if (field === 1) status.code = r.readInt32();
    else if (field === 2) status.message = r.readString();
    else if (field === 3) status.details.push(decodeAny(r.readBytes()));
    else return false;
    return true;
  });
  return status;
}

// google.protobuf.Any { string type_url = 1; bytes value = 2; }
function decodeAny(bytes) {
  const any = { typeUrl: '', value: new Uint8Array(0) };
  readFields(bytes, (field, r) => {
    if (field === 1) any.typeUrl = r.readString();
    else if (field === 2) any.value = r.readBytes();
    else return false;
    return true;
  });
  return any;
}

// google.rpc.ErrorInfo { string reason = 1; string domain = 2; map<string, string> metadata = 3; }
function decodeErrorInfo(bytes) {
  const info = { reason: '', domain: '', metadata: {} };
  readFields(bytes, (field, r) => {
    if (field === 1) info.reason = r.readString();
    else if (field === 2) info.domain = r.readString();
    else if (field === 3) {
      let key = '';
      let value = '';
      readFields(r.readBytes(), (f, e) => {
        if (f === 1) key = e.readString();
        else if (f === 2) value = e.readString();
        else return false;
        return true;
      });
      info.metadata[key] = value;
    } else return false;
    return true;
  });
  return info;
}

function oneValue(md, key, what) {
  const values = md ? md.get(key) : [];
  if (values.length !== 1) fail(`${what}: ${values.length} ${key} values (${values.map(String)})`);
  return values[0];
}

// A real gRPC error carrying Clarifai `code` as the crate's wire contract says: the mapped gRPC
// code, `clarifai-status-code`, and the ErrorInfo in `grpc-status-details-bin`. `description`,
// when known, is the table's (read in-body from the same server).
function assertGrpcError(error, grpcCode, code, what, description) {
  if (error.code !== grpcCode) {
    fail(`${what}: gRPC ${error.code} (${grpc.status[error.code]}: ${error.details}), expected ${grpcCode} (${grpc.status[grpcCode]})`);
  }
  if (description !== undefined) assertEqual(error.details, description, `${what}: message`);
  const header = oneValue(error.metadata, 'clarifai-status-code', what);
  assertEqual(String(header), String(code), `${what}: clarifai-status-code`);
  const bin = oneValue(error.metadata, 'grpc-status-details-bin', what);
  if (!Buffer.isBuffer(bin)) fail(`${what}: grpc-status-details-bin is not binary`);
  const status = decodeRpcStatus(new Uint8Array(bin));
  assertEqual(status.code, grpcCode, `${what}: google.rpc.Status.code`);
  assertEqual(status.message, error.details, `${what}: google.rpc.Status.message`);
  const infos = status.details.filter((d) => d.typeUrl === ERROR_INFO_TYPE);
  if (infos.length !== 1) {
    fail(`${what}: ${infos.length} ErrorInfo details among ${JSON.stringify(status.details.map((d) => d.typeUrl))}`);
  }
  const info = decodeErrorInfo(infos[0].value);
  // The reason is the name in Clarifai's own enum, as shipped in clarifai-nodejs-grpc.
  assertEqual(info.reason, CODE_NAMES[code], `${what}: ErrorInfo.reason`);
  assertEqual(info.domain, DOMAIN, `${what}: ErrorInfo.domain`);
  assertEqual(info.metadata.code, String(code), `${what}: ErrorInfo.metadata.code`);
  return info;
}

// --- the checks ------------------------------------------------------------------------------

class Checks {
  constructor(server) {
    this.server = server;
    this.client = newClient(server);
    this.descriptions = {};
  }

  // 1. Unary, in the body: SUCCESS without a scenario, the scenario's code with one.
  async check_unary_default_is_success() {
    const before = (await this.server.counts('')).PostModelOutputs || 0;
    const status = (await predictOk(this.client, metadata(null), 'no scenario')).getStatus();
    assertStatus(status, SUCCESS, 'no scenario');
    this.descriptions[SUCCESS] = status.getDescription();
    const after = (await this.server.counts('')).PostModelOutputs || 0;
    assertEqual(after, before + 1, 'PostModelOutputs calls without a scenario');
  }

  async check_unary_scenario_in_body() {
    const pairs = 'code=21200;id=node-unary';
    const response = await predictOk(this.client, metadata(pairs), pairs);
    assertStatus(response.getStatus(), StatusCode.MODEL_DOES_NOT_EXIST, pairs);
    this.descriptions[21200] = response.getStatus().getDescription();
    await assertCounts(this.server, pairs, { PostModelOutputs: 1 });
    console.log(`       ${pairs} -> gRPC OK, in-body ${describe(response.getStatus())}`);
  }

  async check_unary_fail_times_then_success_in_body() {
    const pairs = 'code=21354;fail_times=2;id=node-fail-times';
    const codes = [];
    for (let i = 0; i < 3; i += 1) {
      codes.push((await predictOk(this.client, metadata(pairs), pairs)).getStatus().getCode());
    }
    assertEqual(codes, [21354, 21354, SUCCESS], `${pairs}: codes`);
    await assertCounts(this.server, pairs, { PostModelOutputs: 3 });
  }

  // 2. Streaming methods, in the body: one message, then OK.
  async check_server_streaming_in_body() {
    const pairs = 'code=21354;id=node-server-stream';
    const { messages, error } = await generate(this.client, metadata(pairs));
    if (error) fail(`GenerateModelOutputs: gRPC error ${error.code}: ${error.details}`);
    assertEqual(messages.length, 1, 'GenerateModelOutputs messages');
    assertStatus(messages[0].getStatus(), 21354, 'GenerateModelOutputs');
    await assertCounts(this.server, pairs, { GenerateModelOutputs: 1 });
  }

  async check_bidirectional_stream_in_body() {
    const pairs = 'code=21200;id=node-bidi';
    const { messages, error } = await bidi(this.client, metadata(pairs));
    if (error) fail(`StreamModelOutputs: gRPC error ${error.code}: ${error.details}`);
    assertEqual(messages.length, 1, 'StreamModelOutputs messages');
    assertStatus(messages[0].getStatus(), 21200, 'StreamModelOutputs');
    await assertCounts(this.server, pairs, { StreamModelOutputs: 1 });
  }

  async check_streams_default_to_success() {
    const results = {
      GenerateModelOutputs: await generate(this.client, metadata(null)),
      StreamModelOutputs: await bidi(this.client, metadata(null)),
    };
    for (const [method, { messages, error }] of Object.entries(results)) {
      if (error) fail(`${method}: gRPC error ${error.code}: ${error.details}`);
      assertEqual(messages.map((m) => m.getStatus().getCode()), [SUCCESS], `${method} codes`);
    }
  }

  // 3. `in_body=false`: a gRPC error with the mapped code, the trailer and the ErrorInfo.
  async check_not_in_body_is_a_grpc_error_with_error_info() {
    const pairs = 'code=21200;in_body=false;id=node-not-found';
    const error = await predictError(this.client, metadata(pairs), pairs);
    const info = assertGrpcError(
      error,
      grpc.status.NOT_FOUND,
      21200,
      pairs,
      this.descriptions[21200],
    );
    // The V2 client carries no retry policy: one call.
    await assertCounts(this.server, pairs, { PostModelOutputs: 1 });
    console.log(`       ${pairs} -> ${grpc.status[error.code]} ${JSON.stringify(error.details)}, ErrorInfo ${JSON.stringify(info)}`);
  }

  async check_not_in_body_on_a_stream_is_a_grpc_error() {
    const pairs = 'code=11008;in_body=false;id=node-bidi-unauthenticated';
    const { messages, error } = await bidi(this.client, metadata(pairs));
    if (!error) fail(`StreamModelOutputs: expected a gRPC error, got ${messages.length} messages and OK`);
    assertEqual(messages.length, 0, 'StreamModelOutputs messages before the error');
    assertGrpcError(error, grpc.status.UNAUTHENTICATED, 11008, `StreamModelOutputs ${pairs}`);
    await assertCounts(this.server, pairs, { StreamModelOutputs: 1 });
  }

  // 4. A delay longer than the client's deadline.
  async check_delay_meets_the_clients_deadline() {
    const pairs = 'delay_ms=2000;id=node-delay';
    const started = Date.now();
    const error = await predictError(this.client, metadata(pairs), pairs, 200);
    const elapsed = Date.now() - started;
    if (error.code !== grpc.status.DEADLINE_EXCEEDED) {
      fail(`${pairs}: gRPC ${error.code} (${grpc.status[error.code]}: ${error.details}), expected DEADLINE_EXCEEDED`);
    }
    if (elapsed >= 1500) fail(`${pairs}: the 200 ms deadline fired after ${elapsed} ms`);
    await assertCounts(this.server, pairs, { PostModelOutputs: 1 });
    console.log(`       ${pairs}, deadline 200 ms -> DEADLINE_EXCEEDED after ${elapsed} ms`);
  }

  // 5. Over-size metadata, then at once a normal call on the same client (and channel).
  async overSize(size) {
    const client = newClient(this.server);
    try {
      // One call first, so the over-size call goes out on an established connection.
      const warm = await predictOk(client, metadata(null), `before ${size} bytes`);
      assertStatus(warm.getStatus(), SUCCESS, `before ${size} bytes`);

      const pairs = `code=11008;in_body=false;id=node-over-size-${size}`;
      const padded = metadata(pairs, { 'x-pad': 'a'.repeat(size) });
      const error = await predictError(client, padded, `${size} bytes of metadata`);
      // Refused before the service: the server counts nothing under it (here and in check 6).
      SENT.delete(`${pairs}\u0000PostModelOutputs`);
      // At once, nothing awaited in between: even a 1 ms pause lets grpc-js see the connection
      // close (if the server closes it) and open a new one for the next call.
      const after = `id=node-after-over-size-${size}`;
      SENT_ELSEWHERE.add(after);
      const { error: next, response } = await predict(client, metadata(after));

      // Both calls judged, each failure reported.
      const problems = [];
      try {
        assertGrpcError(error, grpc.status.RESOURCE_EXHAUSTED, 40033, `${size} bytes of metadata`);
        await assertCounts(this.server, pairs, {});
        console.log(`       ${size} bytes of metadata -> ${grpc.status[error.code]}, clarifai-status-code 40033`);
      } catch (e) {
        problems.push(e.message);
      }
      try {
        if (next) {
          fail(`the call right after ${size} bytes of metadata, on the same client: gRPC ${next.code} (${grpc.status[next.code]}: ${JSON.stringify(next.details)}), expected OK with in-body SUCCESS`);
        }
        assertStatus(response.getStatus(), SUCCESS, `the call right after ${size} bytes of metadata`);
        await assertCounts(this.server, after, { PostModelOutputs: 1 });
        console.log(`       the call right after, on the same client -> in-body SUCCESS`);
      } catch (e) {
        problems.push(e.message);
      }
      if (problems.length) fail(problems.join('\n       '));
    } finally {
      client.close();
    }
  }

  async check_over_size_metadata_100_kb_then_the_same_channel_answers() {
    await this.overSize(100000);
  }

  async check_over_size_metadata_256_kib_then_the_same_channel_answers() {
    await this.overSize(256 * 1024);
  }

  // 6. The server counted exactly what was sent, and nothing else.
  async check_server_counted_every_call_sent() {
    const seen = new Map();
    for (const [k, n] of await this.server.calls()) {
      if (!SENT_ELSEWHERE.has(k.split('\u0000')[0])) seen.set(k, n);
    }
    const expected = new Map([...SENT].filter(([k]) => !SENT_ELSEWHERE.has(k.split('\u0000')[0])));
    const differences = [];
    for (const k of new Set([...seen.keys(), ...expected.keys()])) {
      const [key, method] = k.split('\u0000');
      const [got, want] = [seen.get(k) || 0, expected.get(k) || 0];
      if (got !== want) differences.push(`${method} under ${JSON.stringify(key)}: ${got}, sent ${want}`);
    }
    if (differences.length) fail(`the server's counts differ from the calls sent: ${differences.join('; ')}`);
    console.log(`       ${expected.size} (scenario, method) counters, as sent`);
  }
}

async function main() {
  const server = new Server(arg('grpc'), arg('http'));
  const started = Date.now();
  let passed = 0;
  let failed = 0;
  let checks;
  try {
    checks = new Checks(server);
    const loaded = loadedGrpcJs();
    const versions = loaded.map((l) => `${l.version} (${l.root})`).join(', ');
    console.log(`clarifai-nodejs-grpc's V2 client loads @grpc/grpc-js ${versions}`);
    if (loaded.length !== 1 || !loaded[0].version.startsWith('1.14.')) {
      fail(`expected one @grpc/grpc-js 1.14.x, loaded: ${versions}`);
    }
  } catch (error) {
    console.log(`FAILED setup: ${error.stack || error}`);
    console.log('clarifai-node: 0 passed, 1 failed');
    return 1;
  }
  const names = Object.getOwnPropertyNames(Checks.prototype).filter((n) => n.startsWith('check_'));
  for (const name of names) {
    const checkStarted = Date.now();
    try {
      await checks[name]();
      passed += 1;
      console.log(`ok     ${name} (${((Date.now() - checkStarted) / 1000).toFixed(2)} s)`);
    } catch (error) {
      failed += 1;
      console.log(`FAILED ${name} (${((Date.now() - checkStarted) / 1000).toFixed(2)} s)`);
      console.log(`       ${error.message}`);
    }
  }
  checks.client.close();
  if (failed) {
    console.log('calls seen by the server:');
    try {
      for (const [k, n] of await server.calls()) {
        const [key, method] = k.split('\u0000');
        console.log(`  ${String(n).padStart(3)} ${method.padEnd(45)} ${JSON.stringify(key)}`);
      }
    } catch (error) {
      console.log(`  (cannot read the counters: ${error.message})`);
    }
  }
  console.log(`total ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`clarifai-node: ${passed} passed, ${failed} failed`);
  return failed ? 1 : 0;
}

// Exit at once: a call cut off by its deadline must not keep the process waiting for its answer.
main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    process.exit(1);
  },
);
