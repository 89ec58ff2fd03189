import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

/** packages/server/src (this file runs from packages/server/dist/test). */
const SRC = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

/**
 * What only src/db/ may contain: query building, raw SQL, and transactions or connections
 * opened by hand. Everything else reaches the database through the named functions of
 * src/db/queries/ and `writeTransaction` (src/db/engine.ts), so tenant scoping and locking
 * are visible in one place, and a second engine only concerns src/db/.
 */
const FORBIDDEN = ['selectFrom', 'insertInto', 'updateTable', 'deleteFrom', 'sql`', 'sql<', '.transaction()', '.connection()'];

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...tsFiles(p));
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

describe('structure', () => {
  it('keeps every query in src/db/', () => {
    const files = tsFiles(SRC);
    assert.ok(files.length > 50, `expected the server's sources in ${SRC}, found ${files.length} .ts files`);
    assert.ok(
      files.some((f) => f.startsWith(path.join(SRC, 'db', 'queries') + path.sep)),
      'src/db/queries/ is missing',
    );
    const offences: string[] = [];
    for (const file of files) {
      const rel = path.relative(SRC, file).split(path.sep).join('/');
      if (rel.startsWith('db/')) continue;
      readFileSync(file, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          for (const token of FORBIDDEN) if (line.includes(token)) offences.push(`src/${rel}:${i + 1}: ${token}`);
        });
    }
    assert.deepEqual(offences, [], `queries, raw SQL or hand-made transactions outside src/db/ (move them to a function of src/db/queries/):\n${offences.join('\n')}`);
  });
});
