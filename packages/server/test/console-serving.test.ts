import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import https from 'node:https';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { collectResponse, tempDir, testServer, type HttpResponse, type TestServer } from './kit.js';

/** A request with the path sent exactly as given (no client-side normalisation of "..", "%2f"). */
function rawGet(ts: TestServer, rawPath: string): Promise<HttpResponse> {
  const u = new URL(ts.server.url);
  return new Promise((resolve, reject) => {
    const req = https.request({ host: u.hostname, port: u.port, method: 'GET', path: rawPath, ca: ts.server.certPem, agent: false }, (res) => collectResponse(res).then(resolve, reject));
    req.on('error', reject);
    req.end();
  });
}

describe('the console is served on the same origin, from its build directory only', () => {
  let ts: TestServer;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    tmp = await tempDir('coffre-console-');
    await mkdir(path.join(tmp.dir, 'assets'), { recursive: true });
    await writeFile(path.join(tmp.dir, 'index.html'), '<!doctype html><title>console</title>');
    await writeFile(path.join(tmp.dir, 'assets', 'app-1234.js'), 'console.log(1)');
    ts = await testServer({ consoleDir: tmp.dir });
  });
  after(async () => {
    await ts.close();
    await tmp.cleanup();
  });

  it('serves index.html for console paths, never cached, with the console CSP', async () => {
    for (const p of ['/', '/clients/abc', '/journal?x=1']) {
      const r = await rawGet(ts, p);
      assert.equal(r.status, 200, p);
      assert.match(String(r.headers['content-type']), /^text\/html/);
      assert.equal(r.body.toString(), '<!doctype html><title>console</title>');
      assert.equal(r.headers['cache-control'], 'no-store');
      assert.match(String(r.headers['content-security-policy']), /script-src 'self'/);
      assert.match(String(r.headers['content-security-policy']), /frame-ancestors 'none'/);
      assert.equal(r.headers['x-frame-options'], 'DENY');
    }
  });

  it('serves hashed assets with a long cache; a missing asset is 404, not the page', async () => {
    const js = await rawGet(ts, '/assets/app-1234.js');
    assert.equal(js.status, 200);
    assert.match(String(js.headers['content-type']), /^text\/javascript/);
    assert.match(String(js.headers['cache-control']), /immutable/);
    assert.equal((await rawGet(ts, '/assets/missing.js')).status, 404);
  });

  it('never serves a file outside the build directory', async () => {
    for (const p of ['/../server.json', '/..%2f..%2fserver.json', '/%2e%2e/%2e%2e/coffre.db', '/assets/..%2f..%2f..%2fetc%2fpasswd']) {
      const r = await rawGet(ts, p);
      const body = r.body.toString();
      assert.ok(!body.includes('enrollTokenTtlHours') && !body.includes('root:x:') && !body.includes('SQLite'), `${p} leaked: ${body.slice(0, 80)}`);
      assert.ok(r.status === 200 || r.status === 404 || r.status === 400, `${p}: ${r.status}`);
    }
  });

  it('API paths keep their JSON answers and strict CSP', async () => {
    const r = await rawGet(ts, '/api/v1/nope');
    assert.equal(r.status, 404);
    assert.equal(r.json<{ error: { code: string } }>().error.code, 'NOT_FOUND');
    assert.equal(r.headers['content-security-policy'], "default-src 'none'; frame-ancestors 'none'");
  });
});
