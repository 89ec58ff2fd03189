/**
 * The live-server fuzzer of fuzz-routes-*.test.ts: a real server (real HTTPS, the selected
 * backend: run the tests with COFFRE_TEST_BACKEND=postgres-s3 too) with a customer, an
 * enrolled machine that has a pack and a snapshot, and an operator-admin person; requests
 * sent raw (no URL normalisation, hostile bodies) as the person (session + CSRF), as the
 * machine or anonymously; and the check every answer must pass: never 5xx, never a dropped
 * connection, every 4xx a documented error (a code of the catalogue, with its status).
 */
import assert from 'node:assert/strict';
import https from 'node:https';
import fc from 'fast-check';
import { ERROR_STATUS } from '../src/errors.js';
import { buildCustomer, buildPack, enrollMachine, snapshotRequest, testKeys, testServer, type TestMachine, type TestServer } from './kit.js';
import { person, type TestPerson } from './people.js';
import { FUZZ_SEED, fuzzRuns } from './fuzz.js';

export type Schema = {
  type?: string | string[];
  enum?: unknown[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  pattern?: string;
  format?: string;
  nullable?: boolean;
  anyOf?: Schema[];
  oneOf?: Schema[];
};
export interface Operation {
  readonly method: string;
  readonly path: string;
  readonly body: Schema | null;
  readonly params: { name: string; in: string; schema?: Schema }[];
}
export interface Sent {
  readonly status: number;
  readonly body: Buffer;
  readonly headers: Record<string, string | string[] | undefined>;
}

export const SEED = FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31);
export const SAMPLES = fuzzRuns(4);

/** Hostile strings: encodings, controls, bidirectional marks, injections, sizes. */
export const EDGE_STRINGS = [
  '',
  ' ',
  '\u0000',
  'a\u0000b',
  '\ud800',
  'x\udfffy',
  '\u202eevil',
  '\u200f',
  '\ufeff',
  'e\u0301',
  '😀',
  '\u{10ffff}',
  '\r\nX-Injected: 1',
  '../../etc/passwd',
  '%00',
  "' OR 1=1 --",
  '<script>alert(1)</script>',
  '${jndi:ldap://x}',
  'null',
  '1e999',
  'NaN',
  '-1',
  '2026-13-45T99:99:99Z',
  '+275760-09-13T00:00:00.000Z',
  'A'.repeat(300),
  'é'.repeat(20_000),
];
export const EDGE_VALUES: unknown[] = [null, true, false, 0, -1, -0, 1.5, 2 ** 53 + 2, 1e308, -1e308, [], {}, [null], { a: { b: { c: [] } } }, ...EDGE_STRINGS];
/** Tokens that JSON.stringify cannot produce, spliced into otherwise valid bodies. */
export const RAW_TOKENS = ['1e999', '-1e999', '123456789012345678901234567890', '1E+400', '-0', '0.0000000000000000000000001', '"\\ud800\\udbff"', '"\\u0000"', '[' .repeat(1000) + ']'.repeat(1000)];
const HOLE = '"__coffre_fuzz_hole__"';

/** Plausible values: what a valid request would carry, filtered by the schema's constraints. */
export function validStrings(s: Schema, known: string[]): string[] {
  if (s.enum) return s.enum.filter((v): v is string => typeof v === 'string');
  const pool = [
    ...known,
    'Cabinet Fuzz',
    'fuzz@example.fr',
    '0123456789abcdef0123456789abcdef',
    '0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
    '5f1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
    '2026-03-02T09:00:00.000Z',
    '10',
    '1',
    'fr',
    'Europe/Paris',
    '0 2 * * *',
    'AAAA',
    'Clavecin-Orange-99-Marée!',
    '123456',
  ];
  let re: RegExp | null = null;
  try {
    re = s.pattern ? new RegExp(s.pattern, 'u') : null;
  } catch {
    re = null;
  }
  const ok = pool.filter(
    (v) =>
      (!re || re.test(v)) &&
      (s.minLength === undefined || v.length >= s.minLength) &&
      (s.maxLength === undefined || v.length <= s.maxLength) &&
      (s.format !== 'uuid' || /^[0-9a-f-]{36}$/.test(v)) &&
      (s.format !== 'date-time' || !Number.isNaN(Date.parse(v))),
  );
  return ok.length > 0 ? ok : pool;
}

export function schemaValue(s: Schema | undefined, known: string[], depth = 0): fc.Arbitrary<unknown> {
  const hostile = fc.oneof(fc.constantFrom(...EDGE_VALUES), fc.string({ maxLength: 40 }), fc.string({ unit: 'binary', maxLength: 20 }), fc.jsonValue({ maxDepth: 2 }));
  if (!s || depth > 4) return hostile;
  const valid = validValue(s, known, depth);
  return fc.oneof({ weight: 7, arbitrary: valid }, { weight: 1, arbitrary: hostile });
}

function validValue(s: Schema, known: string[], depth: number): fc.Arbitrary<unknown> {
  const alts = s.anyOf ?? s.oneOf;
  if (alts && alts.length > 0) return fc.oneof(...alts.map((a) => schemaValue(a, known, depth + 1)));
  if (s.enum) return fc.constantFrom(...s.enum);
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  const withNull = (a: fc.Arbitrary<unknown>) => (s.nullable ? fc.oneof(a, fc.constant(null)) : a);
  switch (type) {
    case 'string':
      return withNull(fc.constantFrom(...validStrings(s, known)));
    case 'integer':
    case 'number': {
      const lo = s.minimum ?? -1e6;
      const hi = s.maximum ?? 1e9;
      const picks = [0, 1, 2, 10, 256, 1024, 65536, 1 << 20, 4 << 20, lo, hi].filter((v) => v >= lo && v <= hi);
      return withNull(fc.constantFrom(...(picks.length ? picks : [lo])));
    }
    case 'boolean':
      return withNull(fc.boolean());
    case 'array': {
      const min = s.minItems ?? 0;
      const max = Math.max(min, Math.min(s.maxItems ?? 3, min + 3));
      return withNull(fc.array(schemaValue(s.items, known, depth + 1), { minLength: min, maxLength: max }));
    }
    case 'object': {
      const props = s.properties ?? {};
      const required = new Set(s.required ?? []);
      const entries = Object.entries(props).map(([k, v]) => fc.tuple(fc.constant(k), schemaValue(v, known, depth + 1), required.has(k) ? fc.constant(true) : fc.boolean()));
      const extra = s.additionalProperties === false ? fc.constant([] as [string, unknown][]) : fc.array(fc.tuple(fc.string({ maxLength: 8 }), fc.jsonValue({ maxDepth: 1 })), { maxLength: 2 });
      return withNull(
        fc.tuple(fc.tuple(...entries), extra).map(([es, ex]) => {
          const o: Record<string, unknown> = {};
          for (const [k, v, keep] of es) if (keep) o[k] = v;
          for (const [k, v] of ex) if (k !== '__proto__') o[k] = v;
          return o;
        }),
      );
    }
    default:
      return fc.jsonValue({ maxDepth: 2 });
  }
}

/** A schema-shaped body with a hole where a raw token (not producible by JSON.stringify) goes. */
export function withRawToken(body: unknown, token: string, which: number): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return null;
  const keys = Object.keys(body);
  if (keys.length === 0) return null;
  const o = { ...(body as Record<string, unknown>), [keys[which % keys.length]!]: '__coffre_fuzz_hole__' };
  return JSON.stringify(o).replace(HOLE, token);
}

/** Raw request bodies that are not the JSON a route expects. */
export function malformedBodies(): { body: Buffer; what: string }[] {
  const texts = [
    '',
    '{',
    '}',
    '{"a":',
    '[',
    'null',
    'true',
    '0',
    '"x"',
    '[]',
    '{}',
    '{"a":1,"a":2}',
    '\ufeff{}',
    '{"__proto__":{"polluted":1}}',
    '{"constructor":{"prototype":{"polluted":1}}}',
    '1e999999',
    "{'a':1}",
    'undefined',
    'NaN',
    '{"a":"\\ud800"}',
    '{"a":"\\u0000"}',
    '{"a":"\\x41"}',
    '[' .repeat(100_000) + ']'.repeat(100_000),
    '{"a":'.repeat(50_000) + '1' + '}'.repeat(50_000),
  ];
  return [
    ...texts.map((t) => ({ body: Buffer.from(t, 'utf8'), what: JSON.stringify(t.slice(0, 40)) })),
    { body: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), what: 'invalid UTF-8' },
    { body: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d]), what: 'invalid UTF-8 in a string' },
    { body: Buffer.from(JSON.stringify({ a: 'x'.repeat(256 * 1024) })), what: 'a 256 KiB string' },
  ];
}
export const CONTENT_TYPES = [
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/json; charset=utf-16',
  'application/JSON',
  'application/octet-stream',
  'application/vnd.api+json',
  'application/json, text/plain',
  '',
];
/** Path and query parameter values, raw (some are not valid percent-encoding on purpose). */
export const RAW_PARAMS = ['%00', '%zz', '%', '%ff%fe', '..', '%2e%2e', '%2F', 'a%2Fb', '%E2%80%AE', '%F0%9F%98%80', '%ED%A0%80', 'x'.repeat(3000), '-1', '1e999', '0', ''];

export type As = 'person' | 'machine' | 'none';

export class RouteFuzzer {
  ts!: TestServer;
  ops: Operation[] = [];
  readonly known: Record<string, string> = {};
  private agent!: https.Agent;
  private op!: TestPerson;
  private machine!: TestMachine;
  private customer!: { id: string; name: string };
  private failures: string[] = [];
  private readonly statuses = new Map<string, number>();
  private requests = 0;
  private principalResets = 0;

  async start(): Promise<void> {
    const ts = (this.ts = await testServer());
    this.agent = new https.Agent({ keepAlive: true, maxSockets: 4, ca: ts.server.certPem });
    this.customer = await buildCustomer(ts, 'Cabinet Fuzz');
    this.machine = await enrollMachine(ts, this.customer.name);
    this.op = await person(ts, 'operator-admin', 'operator');
    // Real objects, so that known ids reach past the "not found" checks.
    const keys = testKeys();
    const pack = buildPack(keys);
    const up = await this.machine.request('PUT', `/packs/${pack.id}`, { body: pack.data });
    assert.equal(up.status, 200, up.body.toString());
    const snap = snapshotRequest(keys, this.machine.machineId, pack.chunkIds);
    const c = await this.machine.request('POST', '/snapshots', { json: snap });
    assert.equal(c.status, 201, c.body.toString());
    Object.assign(this.known, {
      orgId: this.customer.id,
      customer: this.customer.id,
      machineId: this.machine.machineId,
      userId: this.op.id,
      table: 'users',
      packId: pack.id,
      snapshotId: snap.manifest.id,
    });
    const doc = (await ts.request('GET', '/openapi.json')).json<{ paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: Schema }> }; parameters?: Operation['params'] }>> }>();
    this.ops = Object.entries(doc.paths).flatMap(([path, byMethod]) =>
      Object.entries(byMethod).map(([method, o]) => ({ method: method.toUpperCase(), path, body: o.requestBody?.content['application/json']?.schema ?? null, params: o.parameters ?? [] })),
    );
    assert.ok(this.ops.length > 50, `only ${this.ops.length} operations in the OpenAPI document`);
  }

  get machineId(): string {
    return this.machine.machineId;
  }

  async close(): Promise<void> {
    this.agent?.destroy();
    await this.ts?.close();
  }

  async send(method: string, rawPath: string, o: { body?: Buffer; contentType?: string; headers?: Record<string, string>; as: As }): Promise<Sent | null> {
    const headers: Record<string, string> = { ...o.headers };
    if (o.body !== undefined) headers['content-length'] = String(o.body.length);
    if (o.contentType) headers['content-type'] = o.contentType;
    if (o.as === 'machine') headers.authorization = `Bearer ${this.machine.credential}`;
    if (o.as === 'person') {
      if (this.op.browser.cookie && headers.cookie === undefined) headers.cookie = this.op.browser.cookie;
      if (this.op.browser.csrf && headers['x-csrf-token'] === undefined) headers['x-csrf-token'] = this.op.browser.csrf;
    }
    this.requests++;
    const once = (viaAgent: https.Agent | false) =>
      new Promise<Sent | Error>((resolve) => {
        let answered: Sent | null = null;
        const req = https.request(
          { host: '127.0.0.1', port: this.ts.server.port, method, path: rawPath, headers, ca: this.ts.server.certPem, agent: viaAgent, servername: 'localhost' },
          (res) => {
            const chunks: Buffer[] = [];
            res.on('data', (c: Buffer) => chunks.push(c));
            res.on('end', () => resolve((answered = { status: res.statusCode ?? 0, body: Buffer.concat(chunks), headers: res.headers })));
            res.on('error', (e) => resolve(answered ?? e));
          },
        );
        // A server that answers before reading the whole body (413) may close while we still write: the answer counts.
        req.on('error', (e) => setTimeout(() => resolve(answered ?? e), 50));
        req.end(o.body);
      });
    let r = await once(this.agent);
    if (r instanceof Error) r = await once(false); // a kept-alive socket the server had just closed: once more, on a new one
    if (r instanceof Error) {
      this.failures.push(`${method} ${rawPath.slice(0, 120)} as ${o.as}: connection error ${r.message}`);
      return null;
    }
    return r;
  }

  /** Records what is wrong with an answer: a 5xx, or a 4xx that is not a documented error. */
  check(what: string, r: Sent | null): void {
    if (!r) return;
    this.statuses.set(String(r.status), (this.statuses.get(String(r.status)) ?? 0) + 1);
    const head = `${what}: ${r.status}`;
    if (r.status >= 500) {
      this.failures.push(`${head} ${r.body.toString('utf8').slice(0, 300)}`);
      return;
    }
    if (r.status < 400) return;
    let code: unknown;
    try {
      const b = JSON.parse(r.body.toString('utf8')) as { error?: { code?: unknown; message?: unknown; messageFr?: unknown; requestId?: unknown } };
      code = b.error?.code;
      if (typeof b.error?.message !== 'string' || typeof b.error.messageFr !== 'string' || b.error.requestId !== r.headers['x-request-id']) this.failures.push(`${head} error body or x-request-id incomplete`);
    } catch {
      this.failures.push(`${head} non-JSON error body ${r.body.toString('utf8').slice(0, 100)}`);
      return;
    }
    if (typeof code !== 'string' || !(code in ERROR_STATUS)) this.failures.push(`${head} undocumented code ${String(code)}`);
    else if (ERROR_STATUS[code as keyof typeof ERROR_STATUS] !== r.status) this.failures.push(`${head} code ${code} documented with ${ERROR_STATUS[code as keyof typeof ERROR_STATUS]}`);
    if (r.headers['x-content-type-options'] !== 'nosniff') this.failures.push(`${head} without the security headers`);
  }

  /** Sends and checks. */
  async probe(method: string, rawPath: string, o: Parameters<RouteFuzzer['send']>[2], what = ''): Promise<Sent | null> {
    const r = await this.send(method, rawPath, o);
    this.check(`${method} ${rawPath.slice(0, 150)} as ${o.as}${what ? ` ${what}` : ''}`, r);
    return r;
  }

  /** After a route that may end a session or revoke a machine (logout, reissue…), fresh principals. */
  async ensurePrincipals(): Promise<void> {
    const s = await this.send('GET', '/api/v1/session', { as: 'person' });
    const m = await this.send('GET', '/api/v1/repo', { as: 'machine' });
    if (s?.status !== 200) {
      this.principalResets++;
      this.ts.clock.advance(2 * 3600_000); // past any throttling the fuzzing caused
      this.op = await person(this.ts, 'operator-admin', 'operator');
      this.known.userId = this.op.id;
    }
    if (!m || m.status === 401 || m.status === 403) {
      this.principalResets++;
      this.machine = await enrollMachine(this.ts, this.customer.name);
      this.known.machineId = this.machine.machineId;
    }
  }

  /** A plausible value for a query parameter (an enum value, a date…), URL-encoded. */
  plausible(p: Operation['params'][number]): string {
    return encodeURIComponent(p.schema ? validStrings(p.schema, [])[0]! : 'x');
  }

  /** The path with its parameters: the values given, else real ids (never on routes where they would revoke or suspend). */
  fill(path: string, values: Record<string, string>): string {
    const destructive = /revoke|reissue|suspend|reset-/.test(path);
    return path.replace(/\{(\w+)\}/g, (_, name: string) => {
      if (values[name] !== undefined) return values[name];
      if (destructive) return 'x'; // a real id there would revoke the machine or suspend the customer under test
      if (name === 'id') return (path.includes('/packs/') ? this.known.packId : this.known.snapshotId) ?? 'x';
      return this.known[name] ?? 'x';
    });
  }

  /** The distinct problems found since the last call. */
  report(): string[] {
    const unique = [...new Set(this.failures)];
    this.failures = [];
    return unique;
  }

  assertClean(): void {
    const bad = this.report();
    assert.deepEqual(bad, [], `${bad.length} bad answers (seed ${SEED}):\n${bad.slice(0, 40).join('\n')}`);
  }

  /** The server is up and logged no internal error; a one-line summary of the run. */
  async assertHealthy(name: string): Promise<void> {
    const health = await this.send('GET', '/api/v1/health', { as: 'none' });
    assert.equal(health?.status, 200);
    assert.deepEqual(this.ts.logs.filter((e) => e.level === 'error').slice(0, 5), [], 'the server logged internal errors');
    this.assertClean();
    console.log(`${name}: ${this.ops.length} operations, ${this.requests} requests, statuses ${JSON.stringify(Object.fromEntries(this.statuses))}, principals renewed ${this.principalResets} times, seed ${SEED}`);
  }
}

/** A deterministic plausible value of a schema: every property present, the first plausible string. */
export function exampleOf(s: Schema | undefined, known: string[]): unknown {
  if (!s) return 'x';
  const alts = s.anyOf ?? s.oneOf;
  if (alts && alts.length > 0) return exampleOf(alts[0], known);
  if (s.enum) return s.enum[0];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  switch (type) {
    case 'string':
      return validStrings(s, known)[0];
    case 'integer':
    case 'number':
      return Math.max(s.minimum ?? 1, Math.min(s.maximum ?? 1, 1));
    case 'boolean':
      return true;
    case 'array':
      return Array.from({ length: Math.max(1, s.minItems ?? 0) }, () => exampleOf(s.items, known));
    case 'object':
      return Object.fromEntries(Object.entries(s.properties ?? {}).map(([k, v]) => [k, exampleOf(v, known)]));
    default:
      return null;
  }
}

/** Paths (property names and array index 0) to every string in a schema, nested objects and arrays included. */
export function stringPaths(s: Schema | undefined, at: (string | number)[] = [], depth = 0): (string | number)[][] {
  if (!s || depth > 5) return [];
  const type = Array.isArray(s.type) ? s.type[0] : s.type;
  if (type === 'string' && !s.enum) return [at];
  if (type === 'array') return stringPaths(s.items, [...at, 0], depth + 1);
  if (type === 'object') return Object.entries(s.properties ?? {}).flatMap(([k, v]) => stringPaths(v, [...at, k], depth + 1));
  return [];
}

/** `value` with the element at `path` replaced. */
export function setAt(value: unknown, path: readonly (string | number)[], v: unknown): unknown {
  if (path.length === 0) return v;
  const [head, ...rest] = path;
  const copy = (Array.isArray(value) ? [...value] : { ...(value as Record<string, unknown>) }) as Record<string | number, unknown>;
  copy[head!] = setAt(copy[head!], rest, v);
  return copy;
}
