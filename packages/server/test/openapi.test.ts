import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { REASONS } from '../src/errors.js';
import { testServer, type TestServer } from './kit.js';

interface OpenApiDoc {
  openapi: string;
  info: { description: string };
  paths: Record<string, Record<string, { summary?: string; requestBody?: { content: Record<string, { schema: Record<string, unknown> }> }; parameters?: { name: string; in: string }[] }>>;
  components: { schemas: { Error: { properties: { error: { properties: { code: { enum: string[] } } } } } } };
}

describe('OpenAPI document', () => {
  let ts: TestServer;
  let doc: OpenApiDoc;
  before(async () => {
    ts = await testServer();
    const r = await ts.request('GET', '/openapi.json');
    assert.equal(r.status, 200);
    doc = r.json<OpenApiDoc>();
  });
  after(() => ts.close());

  it('is public, OpenAPI 3, and lists the people and machine routes', () => {
    assert.match(doc.openapi, /^3\./);
    for (const p of ['/api/v1/auth/login', '/api/v1/orgs/{orgId}/users', '/api/v1/audit/verify', '/api/v1/packs/{id}', '/api/v1/snapshots']) assert.ok(doc.paths[p], p);
  });

  it('comes from the schemas the routes validate with: a documented constraint is enforced', async () => {
    const body = doc.paths['/api/v1/auth/login']!.post!.requestBody!.content['application/json']!.schema as { required: string[]; additionalProperties: boolean };
    assert.deepEqual([...body.required].sort(), ['email', 'password']);
    assert.equal(body.additionalProperties, false);
    const r = await ts.request('POST', '/auth/login', { json: { email: 'a@b.fr', password: 'x', extra: 1 } });
    assert.equal(r.status, 400, 'the undocumented field is refused, as the document says');
  });

  it('every people route has a summary', () => {
    for (const [p, ops] of Object.entries(doc.paths)) {
      if (/\/(orgs|users|me|auth|audit|session)/.test(p)) for (const [m, op] of Object.entries(ops)) assert.ok(op.summary, `${m} ${p}`);
    }
  });

  it('publishes the error catalogue: every code, with English and French messages', () => {
    const codes = new Set(Object.values(REASONS).map((r) => r.code));
    assert.deepEqual(new Set(doc.components.schemas.Error.properties.error.properties.code.enum), codes);
    for (const r of Object.values(REASONS)) {
      assert.ok(doc.info.description.includes(r.en), r.en);
      assert.ok(doc.info.description.includes(r.fr), r.fr);
    }
  });
});
