import { readFileSync } from 'node:fs';
import { CoffreError, DEFAULT_ARGON2, type Argon2Params } from '@coffre/core';

/** Argon2id cost of new key slots. Tests may lower it through this variable; never documented for production use. */
export function argon2Params(): Argon2Params {
  const t = process.env.COFFRE_TEST_ARGON2;
  if (!t) return DEFAULT_ARGON2;
  const [m, it, p] = t.split(',').map(Number);
  return { m: m!, t: it!, p: p! };
}

/** A prompt on the terminal only (never the environment); null without a terminal. */
export async function promptPassphrase(prompt: string, confirm: boolean): Promise<string | null> {
  if (!process.stdin.isTTY) return null;
  const p = await promptHidden(prompt);
  if (confirm && (await promptHidden('Again: ')) !== p) throw new CoffreError('BAD_REQUEST', 'the two passphrases differ');
  return p;
}

export interface PassphraseSource {
  readonly file?: string | undefined;
}

/**
 * The passphrase comes from --passphrase-file, then COFFRE_PASSPHRASE, then an
 * interactive prompt when stdin is a terminal. Returns null when none is available.
 */
export async function readPassphrase(src: PassphraseSource, opts: { confirm?: boolean; prompt?: string } = {}): Promise<string | null> {
  if (src.file) {
    let raw: string;
    try {
      raw = readFileSync(src.file, 'utf8');
    } catch (e) {
      throw new CoffreError('BAD_REQUEST', `cannot read the passphrase file ${src.file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    }
    const p = raw.replace(/\r?\n$/, '');
    if (!p) throw new CoffreError('BAD_REQUEST', `the passphrase file ${src.file} is empty`);
    return p;
  }
  const env = process.env.COFFRE_PASSPHRASE;
  if (env !== undefined && env !== '') return env;
  if (!process.stdin.isTTY) return null;
  const p = await promptHidden(opts.prompt ?? 'Passphrase: ');
  if (opts.confirm) {
    const again = await promptHidden('Passphrase (again): ');
    if (again !== p) throw new CoffreError('BAD_REQUEST', 'the two passphrases differ');
  }
  return p;
}

function promptHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    let value = '';
    stdin.setRawMode(true);
    stdin.resume();
    stdin.setEncoding('utf8');
    const onData = (ch: string) => {
      for (const c of ch) {
        if (c === '\r' || c === '\n' || c === '\u0004') {
          done();
          resolve(value);
          return;
        }
        if (c === '\u0003') {
          done();
          reject(new CoffreError('BAD_REQUEST', 'cancelled'));
          return;
        }
        if (c === '\u007f' || c === '\b') value = value.slice(0, -1);
        else value += c;
      }
    };
    const done = () => {
      stdin.removeListener('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    stdin.on('data', onData);
  });
}
