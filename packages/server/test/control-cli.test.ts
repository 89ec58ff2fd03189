import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { openAdmin } from '../src/admin/index.js';
import { storeAuditHead } from '../src/audit/head.js';
import type { Database } from '../src/db/database.js';
import { onPostgresS3, prepareDataDir } from './backends.js';
import { tempDir, runCli } from './kit.js';

process.env.COFFRE_TEST_ARGON2 ??= '256,1,1';

const run = runCli;

interface ExportedEntry {
  seq: number;
  time: string;
  actorType: string;
  actorId: string | null;
  action: string;
  outcome: string;
  orgId: string | null;
  details: Record<string, unknown> | null;
  prevHash: string;
  hash: string;
}

describe('control plane CLI: organisations, people, audit trail', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let dir: string;
  const cli = (...args: string[]) => run([...args, '--data-dir', dir]);

  before(async () => {
    tmp = await tempDir('coffre-control-cli-');
    dir = path.join(tmp.dir, 'data');
    await prepareDataDir(dir);
  });
  after(() => tmp.cleanup());

  it('org create builds the operator → reseller → customer tree; invalid parents are refused', async () => {
    const r = await cli('org', 'create', 'Infogérance Sud', '--type', 'reseller');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout.trim(), /^[0-9a-f-]{36}$/);
    assert.equal((await cli('org', 'create', 'Cabinet Dupont', '--type', 'customer', '--parent', 'Infogérance Sud')).code, 0);
    assert.equal((await cli('customer', 'create', 'Laboratoire Direct')).code, 0);

    const bad = await cli('org', 'create', 'Sous-revendeur', '--type', 'reseller', '--parent', 'Infogérance Sud');
    assert.equal(bad.code, 1);
    assert.match(bad.stderr, /reseller belongs to the operator/);
    const dup = await cli('org', 'create', 'Cabinet Dupont', '--type', 'customer');
    assert.equal(dup.code, 1);
    assert.match(dup.stderr, /already exists/);
    assert.equal((await cli('org', 'create', 'X', '--type', 'operator')).code, 2);

    const list = JSON.parse((await cli('org', 'list', '--json')).stdout) as { name: string; type: string; parent_id: string | null; id: string }[];
    const byName = new Map(list.map((o) => [o.name, o]));
    assert.equal(byName.get('operator')?.type, 'operator');
    assert.equal(byName.get('Cabinet Dupont')?.parent_id, byName.get('Infogérance Sud')?.id);
    assert.equal(byName.get('Laboratoire Direct')?.parent_id, byName.get('operator')?.id);
    // The customer shorthand and org create both give a customer that owns a repository row.
    const customers = JSON.parse((await cli('customer', 'list', '--json')).stdout) as { name: string }[];
    assert.deepEqual(customers.map((c) => c.name).sort(), ['Cabinet Dupont', 'Laboratoire Direct']);
  });

  it('CLI processes running at once on one data dir wait for each other instead of failing', async () => {
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => cli('org', 'create', `Cabinet Parallèle ${i}`, '--type', 'customer', '--parent', 'Infogérance Sud')));
    for (const r of results) assert.equal(r.code, 0, r.stderr);
    const list = JSON.parse((await cli('org', 'list', '--json')).stdout) as { name: string }[];
    assert.equal(list.filter((o) => o.name.startsWith('Cabinet Parallèle')).length, 8);
    assert.equal((await cli('audit', 'verify')).code, 0, 'the chain did not fork');
  });

  it('org update records contacts; suspend and resume change the status', async () => {
    const u = await cli('org', 'update', 'Cabinet Dupont', '--alert-email', 'alertes@dupont.fr', '--referent-name', 'Dr Anne Dupont', '--referent-phone', '+33 4 00 00 00 00');
    assert.equal(u.code, 0, u.stderr);
    assert.equal((await cli('org', 'update', 'Cabinet Dupont')).code, 2, 'nothing to update is a usage error');
    assert.equal((await cli('org', 'update', 'Cabinet Dupont', '--alert-email', 'not-an-email')).code, 2);
    assert.equal((await cli('org', 'suspend', 'Cabinet Dupont')).code, 0);
    let list = JSON.parse((await cli('org', 'list', '--json')).stdout) as { name: string; status: string; alert_email: string | null; referent_name: string | null }[];
    let dupont = list.find((o) => o.name === 'Cabinet Dupont')!;
    assert.equal(dupont.status, 'suspended');
    assert.equal(dupont.alert_email, 'alertes@dupont.fr');
    assert.equal(dupont.referent_name, 'Dr Anne Dupont');
    assert.equal((await cli('org', 'resume', 'Cabinet Dupont')).code, 0);
    list = JSON.parse((await cli('org', 'list', '--json')).stdout) as typeof list;
    dupont = list.find((o) => o.name === 'Cabinet Dupont')!;
    assert.equal(dupont.status, 'active');
    assert.equal((await cli('org', 'suspend', 'operator')).code, 1, 'the operator cannot be suspended');
  });

  it("tier create/list and customer set: the operator's price list, each customer's tier and alert address", async () => {
    const t = await cli('tier', 'create', 'Essentiel 500 Go', '--limit', '500GB', '--price', '49,90');
    assert.equal(t.code, 0, t.stderr);
    assert.equal((await cli('tier', 'create', 'Confort 1 To', '--limit', '1TB', '--price', '89')).code, 0);
    assert.equal((await cli('tier', 'create', 'X', '--limit', 'lots', '--price', '1')).code, 2);
    assert.equal((await cli('tier', 'create', 'Y', '--limit', '1GB', '--price', '1.999')).code, 2);
    assert.equal((await cli('tier', 'create', 'Essentiel 500 Go', '--limit', '1GB', '--price', '1')).code, 1, 'names are unique');
    const tiers = JSON.parse((await cli('tier', 'list', '--json')).stdout) as { name: string; limitBytes: number; monthlyPriceCents: number }[];
    assert.deepEqual(tiers, [
      { name: 'Essentiel 500 Go', limitBytes: 500e9, monthlyPriceCents: 4990 },
      { name: 'Confort 1 To', limitBytes: 1e12, monthlyPriceCents: 8900 },
    ]);
    const set = await cli('customer', 'set', 'Cabinet Dupont', '--alert-email', 'alertes2@dupont.fr', '--tier', 'Confort 1 To');
    assert.equal(set.code, 0, set.stderr);
    const list = JSON.parse((await cli('org', 'list', '--json')).stdout) as { name: string; alert_email: string | null; tier_id: string | null }[];
    const dupont = list.find((o) => o.name === 'Cabinet Dupont')!;
    assert.equal(dupont.alert_email, 'alertes2@dupont.fr');
    assert.ok(dupont.tier_id);
    assert.equal((await cli('customer', 'set', 'Cabinet Dupont', '--tier', 'Inconnu')).code, 1);
    assert.equal((await cli('customer', 'set', 'Cabinet Dupont')).code, 2);
    assert.equal((await cli('customer', 'set', 'Infogérance Sud', '--tier', 'Confort 1 To')).code, 1, 'a reseller is not a customer');
  });

  it('user create prints only a temporary password; roles must suit the organisation', async () => {
    const r = await cli('user', 'create', '--email', 'Anne.Dupont@Dupont.fr', '--name', 'Anne Dupont', '--role', 'customer-admin', '--org', 'Cabinet Dupont');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^[a-z2-9]{5}(-[a-z2-9]{5}){3}\n$/, 'stdout is the temporary password alone');
    assert.match(r.stderr, /Anne Dupont <anne.dupont@dupont.fr> created as customer-admin/);
    const wrongTier = await cli('user', 'create', '--email', 'x@dupont.fr', '--name', 'X Y', '--role', 'operator-admin', '--org', 'Cabinet Dupont');
    assert.equal(wrongTier.code, 1);
    assert.match(wrongTier.stderr, /customer organisation's people may be customer-admin, customer-viewer, auditor/);
    assert.equal((await cli('user', 'create', '--email', 'y@dupont.fr', '--name', 'X Y', '--role', 'superuser', '--org', 'Cabinet Dupont')).code, 2);
    const taken = await cli('user', 'create', '--email', 'anne.dupont@dupont.fr', '--name', 'Autre', '--role', 'customer-viewer', '--org', 'Cabinet Dupont');
    assert.equal(taken.code, 1);
    assert.match(taken.stderr, /already exists/);
  });

  it('every CLI change is in the audit trail; verify passes; export gives CSV and JSON, filtered by --since', async () => {
    const v = await cli('audit', 'verify');
    assert.equal(v.code, 0, v.stderr);
    assert.match(v.stdout, /^audit trail OK: \d+ entries verified/);

    const j = await cli('audit', 'export', '--format', 'json');
    assert.equal(j.code, 0, j.stderr);
    const entries = JSON.parse(j.stdout) as ExportedEntry[];
    const actions = entries.map((e) => e.action);
    for (const a of ['org.create', 'org.update', 'org.suspend', 'org.resume', 'user.create', 'audit.verify']) assert.ok(actions.includes(a), `missing ${a}`);
    assert.ok(entries.every((e) => e.actorType === 'cli'));
    assert.deepEqual(entries.map((e) => e.seq), entries.map((_, i) => i + 1), 'seq is dense from 1');
    for (let i = 1; i < entries.length; i++) assert.equal(entries[i]!.prevHash, entries[i - 1]!.hash);
    assert.ok(!j.stdout.includes('temporary'), 'no password or secret in the trail');

    const csv = await cli('audit', 'export', '--format', 'csv');
    const lines = csv.stdout.split('\r\n').filter((l) => l.length > 0);
    assert.match(lines[0]!, /^seq,time,actor_type,actor_id,actor_label,org_id,action,target,ip,user_agent,request_id,outcome,details,prev_hash,hash$/);
    assert.equal(lines.length, entries.length + 2, 'header + every entry + the export itself'); // the json export added one entry

    const future = await cli('audit', 'export', '--format', 'json', '--since', '2999-01-01');
    assert.deepEqual(JSON.parse(future.stdout), []);
    assert.equal((await cli('audit', 'export', '--format', 'xml')).code, 2);
    assert.equal((await cli('audit', 'export', '--format', 'csv', '--since', 'yesterday')).code, 2);
  });

  describe('tampering with the database is detected and the first bad entry named (exit 4)', () => {
    /** Runs `fn` on a direct handle to the data dir's database (SQLite or PostgreSQL), like an attacker with access to it. */
    async function tamper<T>(fn: (db: Database) => Promise<T>): Promise<T> {
      const admin = await openAdmin(dir);
      try {
        return await fn(admin.db);
      } finally {
        await admin.close();
      }
    }
    const rows = (): Promise<{ seq: number; hash: string; action: string; details_json: string | null }[]> =>
      tamper((db) => db.selectFrom('audit_log').select(['seq', 'hash', 'action', 'details_json']).orderBy('seq').execute());
    const verify = async (): Promise<{ code: number | null; verdict: { ok: boolean; firstBad?: { seq: number; problem: string } } }> => {
      const r = await cli('audit', 'verify', '--json');
      return { code: r.code, verdict: JSON.parse(r.stdout) as never };
    };

    it('a modified entry', async () => {
      const target = (await rows())[2]!;
      await tamper((db) => db.updateTable('audit_log').set({ action: 'org.read' }).where('seq', '=', target.seq).execute());
      const { code, verdict } = await verify();
      assert.equal(code, 4);
      assert.equal(verdict.ok, false);
      assert.equal(verdict.firstBad?.seq, target.seq);
      const human = await cli('audit', 'verify');
      assert.equal(human.code, 4);
      assert.match(human.stdout, new RegExp(`BROKEN at entry #${target.seq}`));
      await tamper((db) => db.updateTable('audit_log').set({ action: target.action }).where('seq', '=', target.seq).execute());
      assert.equal((await verify()).code, 0, 'restoring the original content heals the chain');
    });

    it('a deleted entry', async () => {
      const all = await rows();
      const victim = all[3]!;
      const saved = await tamper((db) => db.selectFrom('audit_log').selectAll().where('seq', '=', victim.seq).executeTakeFirstOrThrow());
      await tamper((db) => db.deleteFrom('audit_log').where('seq', '=', victim.seq).execute());
      const { code, verdict } = await verify();
      assert.equal(code, 4);
      assert.ok(verdict.firstBad!.seq === victim.seq || verdict.firstBad!.seq === victim.seq + 1, `names the gap: ${JSON.stringify(verdict.firstBad)}`);
      await tamper((db) => db.insertInto('audit_log').values(saved).execute());
      assert.equal((await verify()).code, 0);
    });

    it('an inserted entry and reordered entries', async () => {
      // Insert: shift nothing, forge a row at the end that does not chain.
      const last = (await rows()).at(-1)!;
      await tamper((db) =>
        db
          .insertInto('audit_log')
          .values({
            seq: last.seq + 1,
            time: new Date().toISOString(),
            actor_type: 'cli',
            actor_id: 'root',
            actor_label: 'root',
            org_id: null,
            action: 'user.create',
            target: null,
            ip: null,
            user_agent: null,
            request_id: null,
            outcome: 'success',
            details_json: null,
            prev_hash: 'f'.repeat(64),
            hash: 'e'.repeat(64),
          })
          .execute(),
      );
      let r = await verify();
      assert.equal(r.code, 4);
      assert.equal(r.verdict.firstBad?.seq, last.seq + 1);
      await tamper((db) => db.deleteFrom('audit_log').where('seq', '=', last.seq + 1).execute());

      // Reorder: swap the contents of two entries (keeping their seq numbers).
      const all = await rows();
      const [a, b] = [all[4]!, all[5]!];
      await tamper((db) =>
        db.transaction().execute(async (trx) => {
          const get = (seq: number) => trx.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
          const { seq: _a, ...ra } = await get(a.seq);
          const { seq: _b, ...rb } = await get(b.seq);
          await trx.updateTable('audit_log').set(rb).where('seq', '=', a.seq).execute();
          await trx.updateTable('audit_log').set(ra).where('seq', '=', b.seq).execute();
        }),
      );
      r = await verify();
      assert.equal(r.code, 4);
      assert.equal(r.verdict.firstBad?.seq, a.seq);
    });

    it('a truncated tail is caught by the head kept outside the database', async () => {
      // Heal first: rebuild by swapping back is fiddly, so start a fresh data dir.
      const fresh = path.join(tmp.dir, 'fresh');
      await prepareDataDir(fresh);
      const c = (...args: string[]) => run([...args, '--data-dir', fresh]);
      for (let i = 0; i < 3; i++) assert.equal((await c('customer', 'create', `Client ${i}`)).code, 0);
      const admin = await openAdmin(fresh);
      try {
        let head: { seq: number };
        if (onPostgresS3) {
          // With PostgreSQL the head is in the shared store (each writing process keeps its own object; the furthest counts).
          head = (await storeAuditHead(admin.store, 'test').read())!;
        } else {
          // Embedded: a private file in the data directory.
          head = JSON.parse(await readFile(path.join(fresh, 'audit-head.json'), 'utf8')) as { seq: number };
          assert.equal((await stat(path.join(fresh, 'audit-head.json'))).mode & 0o777, 0o600);
        }
        await admin.db.deleteFrom('audit_log').where('seq', '=', head.seq).execute();
      } finally {
        await admin.close();
      }
      const r = await c('audit', 'verify', '--json');
      assert.equal(r.code, 4, r.stdout);
      assert.match(r.stdout, /head/);
    });
  });
});
