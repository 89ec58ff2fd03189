/**
 * Path patterns for --exclude (backup) and --include (restore), matched against
 * absolute, '/'-separated paths as stored in snapshots:
 *  - `*` matches within one component, `?` one character, `**` any number of components;
 *  - a pattern starting with '/' is anchored at the root, otherwise it may match any
 *    trailing part of the path ("*.tmp" matches "/a/b/x.tmp", "docs/2024" matches "/srv/docs/2024");
 *  - a pattern that matches a directory also covers everything below it.
 */
export class PathFilter {
  private readonly patterns: { anchored: boolean; parts: RegExp[] | null; globstar: boolean[] }[];

  constructor(patterns: readonly string[]) {
    this.patterns = patterns.map((p) => {
      const anchored = p.startsWith('/');
      const parts = p.split('/').filter((x) => x.length > 0);
      return {
        anchored,
        parts: parts.map((x) => (x === '**' ? /^$/ : globToRegExp(x))),
        globstar: parts.map((x) => x === '**'),
      };
    });
  }

  get empty(): boolean {
    return this.patterns.length === 0;
  }

  /** True if the path, or one of its ancestors, matches a pattern. */
  matches(path: string): boolean {
    const comps = path.split('/').filter((x) => x.length > 0);
    for (const pat of this.patterns) {
      if (!pat.parts || pat.parts.length === 0) continue;
      // Try every prefix length of the path (ancestor coverage) against the pattern.
      for (let end = 1; end <= comps.length; end++) {
        const head = comps.slice(0, end);
        if (pat.anchored ? matchSeq(pat.parts, pat.globstar, head, 0, 0) : anySuffix(pat.parts, pat.globstar, head)) return true;
      }
    }
    return false;
  }

  /**
   * True if some descendant of this directory could match: used to keep walking into
   * directories above a matched path during a selective restore.
   */
  couldMatchBelow(dirPath: string): boolean {
    const comps = dirPath.split('/').filter((x) => x.length > 0);
    for (const pat of this.patterns) {
      if (!pat.anchored || pat.globstar.some(Boolean)) return true;
      const n = Math.min(comps.length, pat.parts!.length);
      let ok = true;
      for (let i = 0; i < n; i++) if (!pat.parts![i]!.test(comps[i]!)) ok = false;
      if (ok) return true;
    }
    return false;
  }
}

function anySuffix(parts: RegExp[], gs: boolean[], comps: string[]): boolean {
  for (let start = 0; start < comps.length; start++) if (matchSeq(parts, gs, comps.slice(start), 0, 0)) return true;
  return false;
}

function matchSeq(parts: RegExp[], gs: boolean[], comps: string[], i: number, j: number): boolean {
  if (i === parts.length) return j === comps.length;
  if (gs[i]) {
    for (let k = j; k <= comps.length; k++) if (matchSeq(parts, gs, comps, i + 1, k)) return true;
    return false;
  }
  if (j === comps.length) return false;
  return parts[i]!.test(comps[j]!) && matchSeq(parts, gs, comps, i + 1, j + 1);
}

function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '[') {
      const close = glob.indexOf(']', i + 1);
      if (close > i) {
        let cls = glob.slice(i + 1, close);
        if (cls.startsWith('!')) cls = '^' + cls.slice(1);
        const set = '[' + cls.replace(/\\/g, '\\\\') + ']';
        // A class the RegExp syntax refuses ("[z-a]") is taken literally, like an unclosed '['.
        if (isValidClass(set)) {
          re += set;
          i = close;
        } else re += '\\[';
      } else re += '\\[';
    } else re += c.replace(/[.+^${}()|\\\]]/g, '\\$&');
  }
  return new RegExp(re + '$', 's');
}

function isValidClass(set: string): boolean {
  try {
    new RegExp(set, 's');
    return true;
  } catch {
    return false;
  }
}
