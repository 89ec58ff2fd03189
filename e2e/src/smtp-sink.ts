/**
 * A real SMTP server process for tests (smtp-server), run as
 *   node e2e/dist/src/smtp-sink.js --dir DIR [--cert FILE --key FILE] [--reject-first N]
 * It prints "listening on PORT" once ready, then stores each message it accepts as
 * DIR/<n>.eml with DIR/<n>.json ({ from, to, secure }) beside it. With --cert/--key it offers
 * STARTTLS; with --reject-first N it answers the first N messages with a temporary failure
 * (451), to exercise the outbox's retries.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SMTPServer } from 'smtp-server';

const args = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
};
const dir = opt('--dir');
if (!dir) {
  process.stderr.write('usage: smtp-sink --dir DIR [--cert FILE --key FILE] [--reject-first N]\n');
  process.exit(2);
}
const cert = opt('--cert');
const key = opt('--key');
let toReject = Number(opt('--reject-first') ?? 0);
let n = 0;

const server = new SMTPServer({
  authOptional: true,
  disabledCommands: cert ? ['AUTH'] : ['AUTH', 'STARTTLS'],
  ...(cert && key ? { cert: readFileSync(cert), key: readFileSync(key) } : {}),
  logger: false,
  onData(stream, session, callback) {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => {
      if (toReject > 0) {
        toReject--;
        const err = Object.assign(new Error('try again later'), { responseCode: 451 });
        callback(err);
        return;
      }
      n++;
      writeFileSync(join(dir, `${n}.eml`), Buffer.concat(chunks));
      writeFileSync(join(dir, `${n}.json`), JSON.stringify({ from: session.envelope.mailFrom && session.envelope.mailFrom.address, to: session.envelope.rcptTo.map((r) => r.address), secure: session.secure }));
      callback();
    });
  },
});
server.listen(0, '127.0.0.1', () => {
  const addr = server.server.address();
  process.stdout.write(`listening on ${typeof addr === 'object' && addr ? addr.port : '?'}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
