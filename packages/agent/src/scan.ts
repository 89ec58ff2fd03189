import { lstatSync, readdirSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { PathFilter } from './engine/filter.js';

/**
 * Counts files and bytes to back up, in a worker thread, so that a terminal progress
 * bar can show a percentage and an ETA. Only used on a terminal; results are approximate.
 */
const { paths, excludes } = workerData as { paths: string[]; excludes: string[] };
const filter = new PathFilter(excludes);
let files = 0;
let bytes = 0;
const walk = (p: string) => {
  let names: string[];
  try {
    names = readdirSync(p);
  } catch {
    return;
  }
  for (const n of names) {
    const c = p === '/' ? `/${n}` : `${p}/${n}`;
    if (!filter.empty && filter.matches(c)) continue;
    const st = lstatSync(c, { throwIfNoEntry: false });
    if (!st) continue;
    if (st.isDirectory()) walk(c);
    else if (st.isFile()) {
      files++;
      bytes += st.size;
    }
  }
};
for (const p of paths) {
  const st = lstatSync(p, { throwIfNoEntry: false });
  if (st?.isDirectory()) walk(p);
  else if (st?.isFile()) {
    files++;
    bytes += st.size;
  }
}
parentPort!.postMessage({ files, bytes });
