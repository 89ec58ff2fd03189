import assert from 'node:assert/strict';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import SQLite from 'better-sqlite3';
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
    /** Runs `fn` on a copy-free direct handle to the database, like an attacker with file access. */
    function tamper(fn: (db: SQLite.Database) => void): void {
      const db = new SQLite(path.join(dir, 'coffre.db'));
      try {
        fn(db);
      } finally {
        db.close();
      }
    }
    const rows = (): { seq: number; hash: string; action: string; details_json: string | null }[] => {
      const db = new SQLite(path.join(dir, 'coffre.db'), { readonly: true });
      try {
        return db.prepare('select seq, hash, action, details_json from audit_log order by seq').all() as never;
      } finally {
        db.close();
      }
    };
    const verify = async (): Promise<{ code: number | null; verdict: { ok: boolean; firstBad?: { seq: number; problem: string } } }> => {
      const r = await cli('audit', 'verify', '--json');
      return { code: r.code, verdict: JSON.parse(r.stdout) as never };
    };

    it('a modified entry', async () => {
      const target = rows()[2]!;
      tamper((db) => db.prepare('update audit_log set action = ? where seq = ?').run('org.read', target.seq));
      const { code, verdict } = await verify();
      assert.equal(code, 4);
      assert.equal(verdict.ok, false);
      assert.equal(verdict.firstBad?.seq, target.seq);
      const human = await cli('audit', 'verify');
      assert.equal(human.code, 4);
      assert.match(human.stdout, new RegExp(`BROKEN at entry #${target.seq}`));
      tamper((db) => db.prepare('update audit_log set action = ? where seq = ?').run(target.action, target.seq));
      assert.equal((await verify()).code, 0, 'restoring the original content heals the chain');
    });

    it('a deleted entry', async () => {
      const all = rows();
      const victim = all[3]!;
      const saved = (() => {
        const db = new SQLite(path.join(dir, 'coffre.db'), { readonly: true });
        try {
          return db.prepare('select * from audit_log where seq = ?').get(victim.seq) as Record<string, unknown>;
        } finally {
          db.close();
        }
      })();
      tamper((db) => db.prepare('delete from audit_log where seq = ?').run(victim.seq));
      const { code, verdict } = await verify();
      assert.equal(code, 4);
      assert.ok(verdict.firstBad!.seq === victim.seq || verdict.firstBad!.seq === victim.seq + 1, `names the gap: ${JSON.stringify(verdict.firstBad)}`);
      tamper((db) => {
        const cols = Object.keys(saved);
        db.prepare(`insert into audit_log (${cols.join(',')}) values (${cols.map(() => '?').join(',')})`).run(...cols.map((c) => saved[c]));
      });
      assert.equal((await verify()).code, 0);
    });

    it('an inserted entry and reordered entries', async () => {
      // Insert: shift nothing, forge a row at the end that does not chain.
      const last = rows().at(-1)!;
      tamper((db) =>
        db
          .prepare(
            `insert into audit_log (seq, time, actor_type, actor_id, actor_label, org_id, action, target, ip, user_agent, request_id, outcome, details_json, prev_hash, hash)
             values (?, ?, 'cli', 'root', 'root', null, 'user.create', null, null, null, null, 'success', null, ?, ?)`,
          )
          .run(last.seq + 1, new Date().toISOString(), 'f'.repeat(64), 'e'.repeat(64)),
      );
      let r = await verify();
      assert.equal(r.code, 4);
      assert.equal(r.verdict.firstBad?.seq, last.seq + 1);
      tamper((db) => db.prepare('delete from audit_log where seq = ?').run(last.seq + 1));

      // Reorder: swap the contents of two entries (keeping their seq numbers).
      const [a, b] = [rows()[4]!, rows()[5]!];
      tamper((db) => {
        const get = db.prepare('select * from audit_log where seq = ?');
        const ra = get.get(a.seq) as Record<string, unknown>;
        const rb = get.get(b.seq) as Record<string, unknown>;
        const cols = Object.keys(ra).filter((c) => c !== 'seq');
        const put = db.prepare(`update audit_log set ${cols.map((c) => `${c} = ?`).join(', ')} where seq = ?`);
        db.transaction(() => {
          put.run(...cols.map((c) => rb[c]), a.seq);
          put.run(...cols.map((c) => ra[c]), b.seq);
        })();
      });
      r = await verify();
      assert.equal(r.code, 4);
      assert.equal(r.verdict.firstBad?.seq, a.seq);
    });

    it('a truncated tail is caught by the head kept outside the database', async () => {
      // Heal first: rebuild by swapping back is fiddly, so start a fresh data dir.
      const fresh = path.join(tmp.dir, 'fresh');
      const c = (...args: string[]) => run([...args, '--data-dir', fresh]);
      for (let i = 0; i < 3; i++) assert.equal((await c('customer', 'create', `Client ${i}`)).code, 0);
      const head = JSON.parse(await import('node:fs/promises').then((fs) => fs.readFile(path.join(fresh, 'audit-head.json'), 'utf8'))) as { seq: number };
      assert.equal((await stat(path.join(fresh, 'audit-head.json'))).mode & 0o777, 0o600);
      const db = new SQLite(path.join(fresh, 'coffre.db'));
      db.prepare('delete from audit_log where seq = ?').run(head.seq);
      db.close();
      const r = await c('audit', 'verify', '--json');
      assert.equal(r.code, 4, r.stdout);
      assert.match(r.stdout, /head/);
    });
  });
});
