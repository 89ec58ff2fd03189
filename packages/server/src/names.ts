/**
 * Display names of customers and machines: 1–128 characters, no control characters,
 * no leading or trailing white space. Shared by the JSON schemas and the CLI.
 */
export const NAME_PATTERN = '^[^\\s\\x00-\\x1f\\x7f](?:[^\\x00-\\x1f\\x7f]{0,126}[^\\s\\x00-\\x1f\\x7f])?$';
/** Free text from agents (hostname, OS, version): printable, bounded. */
export const TEXT_PATTERN = '^[^\\x00-\\x1f\\x7f]*$';

const NAME_RE = new RegExp(NAME_PATTERN, 'u');
export function isValidName(s: string): boolean {
  return NAME_RE.test(s);
}
