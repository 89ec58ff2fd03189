/**
 * The audit chain authenticated by a key outside the database and the data directory (ADR
 * 0011): signed checkpoints checked by `audit verify --public-key`, purges held to the
 * retention period, and a chain head that cannot be written is an error. Real CLI processes,
 * on whichever backend the run uses (COFFRE_TEST_BACKEND).
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { chainNext, type AuditEntry } from '../src/audit/chain.js';
import { parseAuditPublicKey, signCheckpoint } from '../src/audit/checkpoint.js';
import { AUDIT_HEAD_KEY, AUDIT_HEADS_PREFIX, fileAuditHead, storeAuditHead } from '../src/audit/head.js';
import { AuditHeadError, AuditLog, AuditPurgeRefusedError, toEntry } from '../src/audit/log.js';
import { dataDirPaths } from '../src/datadir.js';
import type { Database } from '../src/db/database.js';
import type { ObjectStore } from '../src/store/object-store.js';
import { onPostgresS3 } from './backends.js';
import { buildCustomer, runCli, tempDir, testServer, type TestServer } from './kit.js';

const DAY = 86_400_000;

const cli = runCli;

/** The head kept outside the database, set to `link` as an attacker who can write the data directory (or the store) would. */
async function forgeHead(ts: TestServer, link: { seq: number; hash: string }): Promise<void> {
  if (!onPostgresS3) return writeFile(dataDirPaths(ts.dataDir).auditHead, `${JSON.stringify(link)}\n`, { mode: 0o600 });
  const keys = [AUDIT_HEAD_KEY];
  for await (const o of ts.admin.store.list(AUDIT_HEADS_PREFIX)) keys.push(o.key);
  for (const k of keys) await ts.admin.store.delete(k).catch(() => undefined);
  await storeAuditHead(ts.admin.store, 'forged').advance(link);
}

/**
 * Rewrites the chain from its `from`-th entry on, consistently: new content, every hash
 * recomputed, the head moved. What someone holding the database and the data directory (but
 * not the signing key) can do.
 */
async function rewriteChain(ts: TestServer, from: number): Promise<void> {
  const db: Database = ts.admin.db;
  const rows = (await db.selectFrom('audit_log').selectAll().orderBy('seq').execute()).map(toEntry);
  let prev: { seq: number; hash: string } = { seq: rows[from - 1]!.seq, hash: rows[from - 1]!.hash };
  for (const e of rows.slice(from)) {
    const { seq: _s, prevHash: _p, hash: _h, ...rec } = e;
    const forged: AuditEntry = chainNext(prev, { ...rec, actorLabel: `${rec.actorLabel ?? ''} (réécrit)` });
    await db.updateTable('audit_log').set({ actor_label: forged.actorLabel, prev_hash: forged.prevHash, hash: forged.hash }).where('seq', '=', e.seq).execute();
    prev = { seq: forged.seq, hash: forged.hash };
  }
  await forgeHead(ts, prev);
}

describe('audit verify --public-key (signed checkpoints)', () => {
  let ts: TestServer;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let pubFile: string;
  const verify = (...extra: string[]) => cli(['audit', 'verify', '--data-dir', ts.dataDir, ...extra]);

  before(async () => {
    ts = await testServer();
    tmp = await tempDir('coffre-audit-signing-');
    for (let i = 0; i < 4; i++) await buildCustomer(ts, `Cabinet Signé ${i}`);
    const pub = await cli(['audit', 'public-key', '--data-dir', ts.dataDir]);
    assert.equal(pub.code, 0, pub.stderr);
    pubFile = path.join(tmp.dir, 'audit.pub');
    await writeFile(pubFile, pub.stdout);
  });
  after(async () => {
    await ts?.close();
    await tmp?.cleanup();
  });

  it('publishes the public key the server signs with (GET /site, audit public-key)', async () => {
    const site = (await ts.request('GET', '/site')).json<{ auditKey: { keyId: string; publicKey: string } | null }>();
    const printed = parseAuditPublicKey((await cli(['audit', 'public-key', '--data-dir', ts.dataDir])).stdout);
    assert.equal(site.auditKey?.keyId, printed.keyId);
  });

  it('the intact chain passes, signed up to its last checkpoint', async () => {
    const r = await verify('--public-key', pubFile);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /audit trail OK/);
    assert.match(r.stdout, /signatures OK: \d+ checkpoints, signed up to #\d+.*pinned by --public-key/);
    const j = JSON.parse((await verify('--public-key', pubFile, '--json')).stdout) as { ok: boolean; signatures: { ok: boolean; signedUpTo: number; unsigned: number } };
    assert.equal(j.ok, true);
    assert.equal(j.signatures.ok, true);
    assert.ok(j.signatures.unsigned >= 0);
  });

  it('a chain rewritten consistently without the key (hashes and head recomputed) fails with exit 4', async () => {
    await rewriteChain(ts, 2);
    // The hash chain and the head alone are fooled…
    assert.equal((await ts.admin.audit.verify()).ok, true, 'the rewrite is consistent');
    // …the signatures are not.
    const r = await verify('--public-key', pubFile);
    assert.equal(r.code, 4, r.stdout + r.stderr);
    assert.match(r.stdout, /signatures BAD: .*(signed another hash|changed or is gone)/);
  });

  it('re-signed with a key of the attacker recorded in the database: fails against the pinned key, and against the signing key file', async () => {
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const forged = parseAuditPublicKey(publicKey.export({ format: 'pem', type: 'spki' }).toString());
    const db = ts.admin.db;
    const last = await db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    await db.deleteFrom('audit_checkpoints').execute();
    await db.updateTable('audit_signing_key').set({ key_id: forged.keyId, public_key: forged.pem }).execute();
    const body = { installation: ts.admin.installationId, kind: 'checkpoint' as const, seq: Number(last.seq), hash: last.hash, time: new Date().toISOString(), purgeBefore: null, retentionDays: null };
    const cp = signCheckpoint(body, privateKey, forged.keyId);
    await db.insertInto('audit_checkpoints').values({ kind: 'checkpoint', seq: cp.seq, hash: cp.hash, time: cp.time, installation_id: cp.installation, purge_before: null, retention_days: null, key_id: cp.keyId, signature: cp.signature }).execute();

    const pinned = await verify('--public-key', pubFile);
    assert.equal(pinned.code, 4, pinned.stdout);
    assert.match(pinned.stdout, /signed by key .*, not by/);
    // This account holds the installation's signing key file: it pins that key.
    const withKey = await verify();
    assert.equal(withKey.code, 4, withKey.stdout);
    // An account without the key file and without --public-key trusts the database's record: it says so.
    const elsewhere = path.join(tmp.dir, 'no-key-here');
    await mkdir(elsewhere, { recursive: true });
    const r = await cli(['audit', 'verify', '--data-dir', ts.dataDir], { XDG_CONFIG_HOME: elsewhere });
    assert.equal(r.code, 0, 'without a pinned key the forged signature is accepted: why the key must be pinned');
    assert.match(r.stdout, /NOT pinned/);
  });
});

describe("the signer's memory: checkpoints removed and the tail rewritten", () => {
  let ts: TestServer;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    ts = await testServer();
    tmp = await tempDir('coffre-audit-memory-');
  });
  after(async () => {
    await ts?.close();
    await tmp?.cleanup();
  });

  it('is caught where the signing key is; elsewhere the unsigned tail is reported', async () => {
    await buildCustomer(ts, 'Cabinet Mémoire 0');
    const first = await ts.admin.db.selectFrom('audit_checkpoints').select('seq').where('kind', '=', 'checkpoint').orderBy('seq').limit(1).executeTakeFirstOrThrow();
    for (let i = 1; i < 4; i++) await buildCustomer(ts, `Cabinet Mémoire ${i}`);
    const pub = await cli(['audit', 'public-key', '--data-dir', ts.dataDir]); // signs the tail on closing
    const pubFile = path.join(tmp.dir, 'audit.pub');
    await writeFile(pubFile, pub.stdout);
    // Every checkpoint after the first goes, and the chain after it is rewritten consistently.
    await ts.admin.db.deleteFrom('audit_checkpoints').where('seq', '>', first.seq).execute();
    await rewriteChain(ts, Number(first.seq));
    const here = await cli(['audit', 'verify', '--data-dir', ts.dataDir, '--public-key', pubFile]);
    assert.equal(here.code, 4, here.stdout);
    assert.match(here.stdout, /which this signing key signed, has changed or is gone/);
    const elsewhere = path.join(tmp.dir, 'no-key-here');
    await mkdir(elsewhere, { recursive: true });
    const there = await cli(['audit', 'verify', '--data-dir', ts.dataDir, '--public-key', pubFile], { XDG_CONFIG_HOME: elsewhere });
    assert.equal(there.code, 0, there.stdout);
    assert.match(there.stdout, /\d+ newest entries are not signed yet/);
  });
});

describe('audit retention: purges checked against the retention period', () => {
  let ts: TestServer;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let pubFile: string;
  before(async () => {
    ts = await testServer();
    tmp = await tempDir('coffre-audit-purge-');
    const pub = await cli(['audit', 'public-key', '--data-dir', ts.dataDir]);
    pubFile = path.join(tmp.dir, 'audit.pub');
    await writeFile(pubFile, pub.stdout);
  });
  after(async () => {
    await ts?.close();
    await tmp?.cleanup();
  });
  const count = async () => Number((await ts.admin.db.selectFrom('audit_log').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);

  it('a purge of entries younger than the retention period is refused, and nothing goes', async () => {
    for (let i = 0; i < 3; i++) await buildCustomer(ts, `Cabinet Récent ${i}`);
    const n = await count();
    await assert.rejects(ts.admin.audit.purgeBefore(new Date(ts.clock.now().getTime() - 10 * DAY).toISOString()), AuditPurgeRefusedError);
    await assert.rejects(ts.admin.audit.purgeBefore(ts.clock.now().toISOString()), /retention period is 365 days/);
    assert.equal(await count(), n);
  });

  it('a purge past the retention period is signed, and the purged chain verifies', async () => {
    ts.clock.advance(400 * DAY);
    for (let i = 0; i < 3; i++) await buildCustomer(ts, `Cabinet Tardif ${i}`);
    const purged = await ts.admin.audit.purgeBefore(new Date(ts.clock.now().getTime() - 365 * DAY).toISOString());
    assert.ok(purged > 0);
    const r = await cli(['audit', 'verify', '--data-dir', ts.dataDir, '--public-key', pubFile]);
    assert.equal(r.code, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /purge anchor signed/);
  });

  it('entries removed otherwise (anchor moved without a signed purge marker) fail verification', async () => {
    const db = ts.admin.db;
    const rows = await db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq').limit(2).execute();
    await db.deleteFrom('audit_log').where('seq', '=', rows[0]!.seq).execute();
    await db.updateTable('audit_anchor').set({ seq: rows[0]!.seq, hash: rows[0]!.hash }).execute();
    const r = await cli(['audit', 'verify', '--data-dir', ts.dataDir, '--public-key', pubFile]);
    assert.equal(r.code, 4, r.stdout);
    assert.match(r.stdout, /no signed purge marker names that anchor/);
  });
});

describe('the audit signing key', () => {
  let ts: TestServer;
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => {
    ts = await testServer();
    tmp = await tempDir('coffre-audit-key-');
  });
  after(async () => {
    await ts?.close();
    await tmp?.cleanup();
  });

  it('is refused inside the data directory, readable by others, or missing for start (exit 6)', async () => {
    const inDir = await cli(['audit', 'public-key', '--data-dir', ts.dataDir], { COFFRE_AUDIT_KEY_FILE: path.join(ts.dataDir, 'audit.key') });
    assert.equal(inDir.code, 6, inDir.stderr);
    assert.match(inDir.stderr, /must not be kept in the data directory/);

    const loose = path.join(tmp.dir, 'loose.key');
    await writeFile(loose, generateKeyPairSync('ed25519').privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o644 });
    const open = await cli(['audit', 'public-key', '--data-dir', ts.dataDir], { COFFRE_AUDIT_KEY_FILE: loose });
    assert.equal(open.code, 6, open.stderr);
    assert.match(open.stderr, /readable by other accounts/);

    await ts.server.close(); // the data directory is free for another start
    const missing = await cli(['start', '--data-dir', ts.dataDir, '--listen', '127.0.0.1:0'], { COFFRE_AUDIT_KEY_FILE: path.join(tmp.dir, 'absent.key') });
    assert.equal(missing.code, 6, missing.stderr);
    assert.match(missing.stderr, /audit signing key \(.*\) is not at/);
  });
});

describe('the audit chain head', () => {
  let ts: TestServer;
  before(async () => {
    ts = await testServer();
  });
  after(() => ts?.close());

  /** A store that refuses every write of an audit head, like a full or read-only bucket. */
  function refusingHeads(store: ObjectStore): ObjectStore {
    return new Proxy(store, {
      get(target, prop, receiver) {
        if (prop === 'put') return async (key: string) => Promise.reject(new Error(`write refused: ${key}`));
        const v = Reflect.get(target, prop, receiver) as unknown;
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  }

  it('a failure to write the head fails the append (the entry is committed, the error surfaces)', async () => {
    let head;
    if (onPostgresS3) head = storeAuditHead(refusingHeads(ts.admin.store), 'refusing store');
    else {
      // An unwritable place: the head's file name is taken by a directory.
      const where = path.join(ts.dataDir, 'head-unwritable.json');
      await mkdir(where, { recursive: true });
      head = fileAuditHead(where);
    }
    const logs: unknown[] = [];
    const audit = new AuditLog(ts.admin.db, head, ts.clock.now, (e) => logs.push(e));
    const input = { actorType: 'system' as const, actorId: null, actorLabel: 'test', orgId: null, action: 'test.head', target: null, ip: null, userAgent: null, requestId: null, outcome: 'success' as const, details: null };
    await assert.rejects(audit.append(input), AuditHeadError);
    assert.ok(logs.some((l) => (l as { msg?: string }).msg === 'audit head not written'));
    const newest = await ts.admin.db.selectFrom('audit_log').select('action').orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    assert.equal(newest.action, 'test.head');
    if (!onPostgresS3) await rm(path.join(ts.dataDir, 'head-unwritable.json'), { recursive: true });
  });
});
