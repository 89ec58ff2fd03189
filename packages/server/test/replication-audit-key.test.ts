/**
 * The replica pins the primary's audit public key at its first pass and checks the signed
 * checkpoints of what it copies (ADR 0011): a checkpoint signed by another key raises the
 * divergence alarm and nothing more is copied.
 */
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { parseAuditPublicKey, signCheckpoint } from '../src/audit/checkpoint.js';
import { getSiteState } from '../src/db/queries/replication.js';
import { createReplicationToken, joinPrimary } from '../src/replication/admin.js';
import { replicatePass, type PassReport } from '../src/replication/pull.js';
import { buildCustomer, jobContext, testServer, type TestServer } from './kit.js';

function pass(replica: TestServer): Promise<PassReport> {
  return replicatePass({ ...jobContext(replica), keys: replica.admin.keys, fingerprint: replica.server.fingerprint });
}

describe("the primary's audit key, pinned by the replica", () => {
  let primary: TestServer;
  let replica: TestServer;
  before(async () => {
    primary = await testServer();
    replica = await testServer();
    await buildCustomer(primary, 'Cabinet Clé');
    const { token } = await createReplicationToken({ ...primary.admin });
    await joinPrimary(
      { ...replica.admin },
      { primaryUrl: primary.server.url, fingerprint: primary.server.fingerprint, token, name: 'replica', url: replica.server.url, selfFingerprint: replica.server.fingerprint },
    );
    assert.equal((await pass(replica)).complete, true);
  });
  after(async () => {
    await primary?.close();
    await replica?.close();
  });

  it('is pinned at the first pass', async () => {
    const state = await getSiteState(replica.admin.db);
    assert.ok(state?.primary_audit_key);
    assert.equal(parseAuditPublicKey(state.primary_audit_key).keyId, primary.admin.audit.signer?.keyId);
  });

  it('a checkpoint signed by another key raises the divergence alarm; nothing is copied', async () => {
    const held = async () => Number((await replica.admin.db.selectFrom('replicated_audit').select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n);
    await buildCustomer(primary, 'Cabinet Clé 2');
    const copied = await held();
    // Someone who can write the primary's database signs the newest entry with a key of their own.
    const { privateKey, publicKey } = generateKeyPairSync('ed25519');
    const theirs = parseAuditPublicKey(publicKey.export({ format: 'pem', type: 'spki' }).toString());
    const last = await primary.admin.db.selectFrom('audit_log').select(['seq', 'hash']).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
    const cp = signCheckpoint(
      { installation: primary.admin.installationId, kind: 'checkpoint', seq: Number(last.seq), hash: last.hash, time: primary.clock.now().toISOString(), purgeBefore: null, retentionDays: null },
      privateKey,
      theirs.keyId,
    );
    await primary.admin.db.deleteFrom('audit_checkpoints').where('seq', '=', cp.seq).execute();
    await primary.admin.db.insertInto('audit_checkpoints').values({ kind: 'checkpoint', seq: cp.seq, hash: cp.hash, time: cp.time, installation_id: cp.installation, purge_before: null, retention_days: null, key_id: cp.keyId, signature: cp.signature }).execute();

    const r = await pass(replica);
    assert.match(r.audit.diverged ?? '', /not the primary's pinned audit key/);
    assert.equal(await held(), copied, 'nothing after the forged checkpoint is copied');
    const state = await getSiteState(replica.admin.db);
    assert.match(state?.audit_diverged_reason ?? '', /pinned audit key/);
    const own = await replica.admin.db.selectFrom('audit_log').select('action').where('action', '=', 'replication.audit_diverged').execute();
    assert.equal(own.length, 1, 'the divergence is in the replica’s own trail');
  });
});
