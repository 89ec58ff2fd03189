import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectCode, startWithAgent, tempDir, type TestAgent } from '../src/kit.js';

/**
 * Restoring as root into a tree another local user can change: that user swaps directories
 * and files of the target for symbolic links to a root-only directory while the restore runs.
 * Nothing may be written, changed or re-moded outside the target. Runs when the tests run as
 * root (CI does); the attacker is uid 65534 through setpriv.
 */
const ATTACKER = 65534;
const isRoot = process.getuid?.() === 0;

describe('restore as root against a local user racing symbolic links', { skip: !isRoot && 'needs root' }, () => {
  let agent: TestAgent;
  let stop: () => Promise<void>;
  let src: string;

  before(async () => {
    ({ agent, stop } = await startWithAgent('cabinet', 'serveur'));
    src = join(tempDir('src'), 'home');
    const docs = join(src, 'alice', 'docs');
    for (let d = 0; d < 8; d++) {
      mkdirSync(join(docs, `dossier-${d}`), { recursive: true });
      for (let i = 0; i < 60; i++) writeFileSync(join(docs, `dossier-${d}`, `patient-${i}.txt`), `compte rendu ${d}/${i}\n`.repeat(50));
    }
    for (const p of [join(src, 'alice'), docs]) chownSync(p, ATTACKER, ATTACKER);
    expectCode(await agent.run(['backup', src]), 0, 'backup');
  });
  after(async () => {
    await stop();
    rmSync(join(src, '..'), { recursive: true, force: true });
  });

  test('no write, chmod or chown reaches outside the target; the restore lands in a root-only directory', async () => {
    const target = tempDir('target');
    chmodSync(target, 0o755);
    // The user's own directory already exists in the target (restoring over a home).
    const home = join(target, src, 'alice');
    mkdirSync(home, { recursive: true, mode: 0o755 });
    for (let p = home; p !== target; p = join(p, '..')) chmodSync(p, 0o755);
    chownSync(home, ATTACKER, ATTACKER);
    const victim = tempDir('victim');
    chmodSync(victim, 0o755); // the attacker can point at it, not write it
    writeFileSync(join(victim, 'secret'), 'root only\n', { mode: 0o600 });

    // The attacker: as fast as it can, alternately a real "docs" and a link to the victim
    // directory, and every file it can reach replaced by a link to the victim file.
    const script = `
      const fs = require('fs'), path = require('path');
      const home = ${JSON.stringify(home)}, victim = ${JSON.stringify(victim)};
      const end = Date.now() + 60000;
      let n = 0;
      while (Date.now() < end) {
        n++;
        try { fs.renameSync(path.join(home, 'docs'), path.join(home, 'docs.real')); } catch {}
        try { fs.symlinkSync(victim, path.join(home, 'docs')); } catch {}
        try { fs.unlinkSync(path.join(home, 'docs')); } catch {}
        try { fs.renameSync(path.join(home, 'docs.real'), path.join(home, 'docs')); } catch {}
        try {
          for (const d of fs.readdirSync(path.join(home, 'docs'))) for (const f of fs.readdirSync(path.join(home, 'docs', d))) {
            const p = path.join(home, 'docs', d, f);
            try { fs.unlinkSync(p); fs.symlinkSync(path.join(victim, 'secret'), p); } catch {}
          }
        } catch {}
      }
    `;
    const attacker = spawn('setpriv', [`--reuid=${ATTACKER}`, `--regid=${ATTACKER}`, '--clear-groups', process.execPath, '-e', script], { stdio: 'ignore' });
    try {
      const r = await agent.run(['restore', 'latest', '--target', target, '--json']);
      expectCode(r, 0, 'restore');
      const out = JSON.parse(r.stdout) as { restoredInto: string; files: number };
      // The victim is untouched: same entries, same mode, same content, same owner.
      assert.deepEqual(readdirSync(victim), ['secret']);
      const st = statSync(join(victim, 'secret'));
      assert.equal(st.mode & 0o7777, 0o600);
      assert.equal(st.uid, 0);
      assert.equal(readFileSync(join(victim, 'secret'), 'utf8'), 'root only\n');
      // The restore went to a fresh directory only root can enter, complete and intact.
      assert.notEqual(out.restoredInto, target);
      assert.ok(out.restoredInto.startsWith(target + '/coffre-restore-'), out.restoredInto);
      const into = lstatSync(out.restoredInto);
      assert.equal(into.uid, 0);
      assert.equal(into.mode & 0o777, 0o700);
      assert.equal(out.files, 480);
      assert.equal(readFileSync(join(out.restoredInto, src, 'alice', 'docs', 'dossier-3', 'patient-7.txt'), 'utf8'), 'compte rendu 3/7\n'.repeat(50));
      assert.equal(lstatSync(join(out.restoredInto, src, 'alice')).uid, ATTACKER, 'owners restored');
    } finally {
      attacker.kill('SIGKILL');
      rmSync(target, { recursive: true, force: true });
      rmSync(victim, { recursive: true, force: true });
    }
  });

  test('a target only root can change is restored in place', async () => {
    const target = tempDir('target');
    const r = await agent.run(['restore', 'latest', '--target', target, '--json']);
    expectCode(r, 0, 'restore');
    assert.equal((JSON.parse(r.stdout) as { restoredInto: string }).restoredInto, target);
    assert.ok(existsSync(join(target, src, 'alice', 'docs', 'dossier-0', 'patient-0.txt')));
    rmSync(target, { recursive: true, force: true });
  });
});
