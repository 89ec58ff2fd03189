import { CoffreError } from './errors.js';
import { assertTimeZone } from './schedule.js';

/**
 * Snapshot retention: which snapshots a retention run keeps, which it removes, and why.
 *
 * Pure: no I/O, no clock (`now` is an argument), no dependency beyond `Intl`. The server's
 * retention job feeds it the snapshots of a customer and moves the removed ones to the recycle
 * bin; a dry run prints the same plan ("what would go and why"). Identical input gives
 * identical output, whatever the order of the snapshots given.
 *
 * ## Rules (a snapshot is kept when ANY rule keeps it; the rules never remove)
 * Every rule is applied to each machine's snapshots separately (a busy machine never pushes
 * a quiet one's snapshots out). A machine's snapshots are ordered newest first: by instant,
 * then by id (code-unit order) for equal instants, the smaller id counting as the newer.
 *
 * - `keepLast: N` — the N newest snapshots. Reason `last N`.
 * - `daily: N` / `weekly: N` / `monthly: N` / `yearly: N` — like restic's `forget`: walking
 *   from the newest, the newest snapshot of each *bucket* is kept until N buckets have been
 *   used. Buckets are calendar units in the practice's time zone (`timeZone`): the local day
 *   (`daily 2026-03-29`), the ISO 8601 week (Monday–Sunday, `weekly 2026-W53`; 1–3 January
 *   may belong to the previous year's last week), the month (`monthly 2026-03`), the year
 *   (`yearly 2026`). Only buckets that HAVE a snapshot count: `daily: 7` over a machine that
 *   backs up on weekdays only keeps the newest of the last seven backup days, which span
 *   nine calendar days. So `daily: N` is "N backup days", not "the last N days" — after a
 *   machine stops backing up, it keeps its last N backup days for ever.
 * - `within: D` — every snapshot newer than `now − D`. Reason `within 30d`.
 * - `withinDaily: D` / `withinWeekly: D` / `withinMonthly: D` / `withinYearly: D` — restic's
 *   `--keep-within-daily` etc. (but measured from `now`, not from the newest snapshot): among
 *   the snapshots newer than `now − D`, the newest of each bucket. Reason
 *   `daily 2026-03-29 (within 90d)`. This is the calendar-bounded form: after the machine
 *   stops backing up, its snapshots still leave once they are older than D.
 *
 * Durations `D` are restic-style: `36h`, `30d`, `12w`, `6m`, `1y`, or a combination in the
 * order y m w d h (`1y6m`). `m` is months (there are no minutes). Years, months, weeks and
 * days are *calendar* units in `timeZone`: `now − 30d` is the same local wall-clock time 30
 * local days earlier, so a window that spans a daylight-saving change is 1 hour shorter or
 * longer than 30 × 24 h and "90 days" always covers exactly 90 local dates; a month back from
 * 31 March is 28/29 February (the day is clamped to the month's end, not rolled over as Go's
 * `AddDate` does); a year back from 29 February 2028 is 28 February 2027. Hours are exact
 * (3,600 s). Years and months are taken off first, then weeks and days, then hours. A local
 * time that does not exist (the skipped hour of a spring change) moves forward by the gap
 * (02:30 → 03:30); one that happens twice (autumn) is the earlier. "Newer than" is strict: a
 * snapshot exactly D old is outside the window.
 *
 * ## Protection window
 * `protectDays` (an explicit argument; {@link DEFAULT_PROTECT_DAYS} is 7) — every snapshot
 * newer than `now − protectDays` calendar days (same duration arithmetic, strict) is kept
 * whatever the policy says, with the reason `protected (younger than 7 days)`. The window is
 * an override applied after the rules: it neither uses up nor shifts any rule's buckets, so a
 * policy behaves the same with and without it except that young snapshots never go. A
 * snapshot dated after `now` (clock skew) is inside the window. 0 disables it.
 *
 * ## R9 — "daily, kept 90 days" — and the default
 * The security policy's minimum (annex 3 §9.11.2, "Journalière / Incrémentale / 90 jours")
 * is read as: the backup of each day is kept for 90 days after it was taken, so that for
 * every one of the last 90 days the state at the end of that day can be restored. With
 * restic's counting, `{ daily: 90 }` keeps 90 *backup days*: on a practice whose computers
 * are off at weekends that is about 126 calendar days, and a machine that stopped backing up
 * keeps its 90 last backup days for ever — health data kept longer than promised, and
 * storage the customer pays for by volume tier. So the default is
 * `{ withinDaily: '90d', keepLast: 1 }`: the newest snapshot of each local day, for 90
 * calendar days — on a daily schedule exactly the newest 90 backups at any time — plus the
 * machine's newest snapshot whatever its age. `keepLast: 1` is a deliberate floor above R9
 * (which is a minimum): a machine whose backups stopped (broken, stolen, or an agent silenced
 * by ransomware) keeps its last restore point instead of losing everything after 90 days;
 * deleting a machine's data for good is a person's decision (or the end-of-contract purge),
 * never retention's.
 *
 * @packageDocumentation
 */

/** A retention policy. Counts are whole numbers ≥ 1, durations restic-style strings; omit a rule to disable it. */
export interface RetentionPolicy {
  /** Keep the N newest snapshots. */
  readonly keepLast?: number;
  /** Keep the newest snapshot of each of the N newest local days that have one. */
  readonly daily?: number;
  /** Keep the newest snapshot of each of the N newest ISO weeks that have one. */
  readonly weekly?: number;
  /** Keep the newest snapshot of each of the N newest months that have one. */
  readonly monthly?: number;
  /** Keep the newest snapshot of each of the N newest years that have one. */
  readonly yearly?: number;
  /** Keep every snapshot newer than now − duration. */
  readonly within?: string;
  /** Keep the newest snapshot of each local day, among those newer than now − duration. */
  readonly withinDaily?: string;
  /** Keep the newest snapshot of each ISO week, among those newer than now − duration. */
  readonly withinWeekly?: string;
  /** Keep the newest snapshot of each month, among those newer than now − duration. */
  readonly withinMonthly?: string;
  /** Keep the newest snapshot of each year, among those newer than now − duration. */
  readonly withinYearly?: string;
}

/**
 * The default policy (R9: daily backups kept 90 days): the newest snapshot of each local day
 * for 90 calendar days, plus each machine's newest snapshot. See the module comment for why
 * it is not restic's `{ daily: 90 }`.
 */
export const DEFAULT_RETENTION: RetentionPolicy = Object.freeze({ keepLast: 1, withinDaily: '90d' });

/** The protection window to pass as `protectDays` unless the customer chose another one. */
export const DEFAULT_PROTECT_DAYS = 7;

const COUNT_RULES = ['keepLast', 'daily', 'weekly', 'monthly', 'yearly'] as const;
const DURATION_RULES = ['within', 'withinDaily', 'withinWeekly', 'withinMonthly', 'withinYearly'] as const;
type CountRule = (typeof COUNT_RULES)[number];
type DurationRule = (typeof DURATION_RULES)[number];
/** Policy fields in their canonical order (also the order of reasons). */
const POLICY_KEYS = [...COUNT_RULES, ...DURATION_RULES] as const;

/** Which rule a reason comes from: a policy field, the protection window, or none (removed). */
export const RETENTION_RULES = [...POLICY_KEYS, 'protected', 'unmatched'] as const;
export type RetentionRule = (typeof RETENTION_RULES)[number];

const FLAGS: Readonly<Record<(typeof POLICY_KEYS)[number], string>> = {
  keepLast: '--keep-last',
  daily: '--keep-daily',
  weekly: '--keep-weekly',
  monthly: '--keep-monthly',
  yearly: '--keep-yearly',
  within: '--keep-within',
  withinDaily: '--keep-within-daily',
  withinWeekly: '--keep-within-weekly',
  withinMonthly: '--keep-within-monthly',
  withinYearly: '--keep-within-yearly',
};

const MAX_COUNT = 1_000_000;
/** Durations are capped at about 1,000 years, far beyond any sane policy, so cut-offs stay valid dates. */
const MAX_DURATION_DAYS = 366_000;

function bad(message: string, details?: Record<string, unknown>): CoffreError {
  return new CoffreError('BAD_REQUEST', message, details);
}

// ---------------------------------------------------------------------------------------------
// Durations

/** A parsed duration: calendar years, months, weeks, days (in the zone) and exact hours. */
export interface RetentionDuration {
  readonly years: number;
  readonly months: number;
  readonly weeks: number;
  readonly days: number;
  readonly hours: number;
}

const DURATION_RE = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?$/;
const DURATION_HELP =
  'expected a whole number and a unit — h (hours), d (days), w (weeks), m (months), y (years) — such as "36h", "30d", "12w", "6m", "1y", or several in the order y m w d h such as "1y6m"';

/** Parses a duration such as "30d" or "1y6m"; BAD_REQUEST when malformed, zero or longer than ~1,000 years. */
export function parseRetentionDuration(text: string): RetentionDuration {
  if (typeof text !== 'string') throw bad(`invalid duration ${String(text)}: ${DURATION_HELP}`);
  const m = text === '' ? null : DURATION_RE.exec(text);
  if (!m || m.slice(1).every((g) => g === undefined)) throw bad(`invalid duration "${text}": ${DURATION_HELP}`);
  const [years, months, weeks, days, hours] = m.slice(1).map((g) => (g === undefined ? 0 : Number(g))) as [number, number, number, number, number];
  const approxDays = years * 366 + months * 31 + weeks * 7 + days + hours / 24;
  if (approxDays === 0) throw bad(`invalid duration "${text}": it is zero, so it would keep nothing`);
  if (!(approxDays <= MAX_DURATION_DAYS)) throw bad(`invalid duration "${text}": longer than 1000 years`);
  return { years, months, weeks, days, hours };
}

/** The canonical spelling of a duration ("0y30d" → "30d"). */
export function formatRetentionDuration(d: RetentionDuration): string {
  const parts: [number, string][] = [[d.years, 'y'], [d.months, 'm'], [d.weeks, 'w'], [d.days, 'd'], [d.hours, 'h']];
  return parts.filter(([n]) => n > 0).map(([n, u]) => `${n}${u}`).join('');
}

// ---------------------------------------------------------------------------------------------
// Policies

/**
 * Validates a policy given as an object (JSON from the API or a settings file) and returns it
 * normalised and frozen: canonical key order, canonical durations. BAD_REQUEST for an unknown
 * key, a count that is not a whole number ≥ 1, a malformed duration, or a policy that keeps
 * nothing (no rule at all).
 */
export function parseRetentionPolicy(input: unknown): RetentionPolicy {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw bad('a retention policy must be an object such as {"daily": 30}');
  }
  const known = new Set<string>(POLICY_KEYS);
  for (const key of Object.keys(input)) {
    if (!known.has(key)) throw bad(`unknown retention rule "${key}"; expected one of ${POLICY_KEYS.join(', ')}`);
  }
  const src = input as Record<string, unknown>;
  const out: Record<string, number | string> = {};
  for (const key of COUNT_RULES) {
    const v = src[key];
    if (v === undefined) continue;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > MAX_COUNT) {
      throw bad(`retention rule ${key} must be a whole number from 1 to ${MAX_COUNT} (omit it to disable the rule), got ${JSON.stringify(v) ?? String(v)}`);
    }
    out[key] = v;
  }
  for (const key of DURATION_RULES) {
    const v = src[key];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw bad(`retention rule ${key} must be a duration string such as "30d", got ${JSON.stringify(v) ?? String(v)}`);
    try {
      out[key] = formatRetentionDuration(parseRetentionDuration(v));
    } catch (e) {
      throw bad(`retention rule ${key}: ${(e as Error).message}`);
    }
  }
  if (Object.keys(out).length === 0) {
    throw bad(`a retention policy must keep something: give at least one of ${POLICY_KEYS.map((k) => FLAGS[k]).join(', ')}`);
  }
  return Object.freeze(out) as RetentionPolicy;
}

/**
 * Reads a policy from command-line options, restic's spelling: `--keep-last 3`,
 * `--keep-daily 30`, `--keep-weekly`, `--keep-monthly`, `--keep-yearly`, `--keep-within 30d`,
 * `--keep-within-daily 90d`, `--keep-within-weekly`, `--keep-within-monthly`,
 * `--keep-within-yearly`; `--opt=value` works too. Every argument must belong to one of
 * them. BAD_REQUEST for an unknown option, a missing or malformed value, an option given
 * twice, or no option at all (a policy that keeps nothing).
 */
export function parseRetentionArgs(args: readonly string[]): RetentionPolicy {
  const byFlag = new Map<string, (typeof POLICY_KEYS)[number]>(POLICY_KEYS.map((k) => [FLAGS[k], k]));
  const out: Record<string, number | string> = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const eq = arg.startsWith('--') ? arg.indexOf('=') : -1;
    const flag = eq >= 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (key === undefined) {
      throw bad(
        flag.startsWith('-')
          ? `unknown retention option "${flag}"; expected one of ${POLICY_KEYS.map((k) => FLAGS[k]).join(', ')}`
          : `unexpected argument "${arg}": retention options look like --keep-daily 30`,
      );
    }
    let value: string | undefined;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      value = args[i + 1];
      if (value !== undefined && value.startsWith('--')) value = undefined;
      else i++;
    }
    if (value === undefined) throw bad(`${flag} needs a value, e.g. ${flag} ${(COUNT_RULES as readonly string[]).includes(key) ? '30' : '30d'}`);
    if (key in out) throw bad(`${flag} is given twice`);
    if ((COUNT_RULES as readonly string[]).includes(key)) {
      if (!/^\d+$/.test(value) || Number(value) < 1 || Number(value) > MAX_COUNT) {
        throw bad(`${flag} expects a whole number from 1 to ${MAX_COUNT}, got "${value}"`);
      }
      out[key] = Number(value);
    } else {
      try {
        out[key] = formatRetentionDuration(parseRetentionDuration(value));
      } catch (e) {
        throw bad(`${flag}: ${(e as Error).message}`);
      }
    }
  }
  return parseRetentionPolicy(out);
}

/** The command-line options that give back `policy` through {@link parseRetentionArgs} (canonical order). */
export function retentionPolicyArgs(policy: RetentionPolicy): string[] {
  const p = parseRetentionPolicy(policy);
  const out: string[] = [];
  for (const key of POLICY_KEYS) {
    const v = p[key];
    if (v !== undefined) out.push(FLAGS[key], String(v));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Calendar in a time zone (Intl only)

interface LocalTime {
  readonly year: number;
  readonly month: number; // 1-12
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly ms: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      calendar: 'gregory',
      numberingSystem: 'latn',
      hourCycle: 'h23',
      era: 'short',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Milliseconds of a UTC wall-clock time (years below 100 are not shifted to the 1900s). */
function utcMs(year: number, month: number, day: number, hour = 0, minute = 0, second = 0, ms = 0): number {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  d.setUTCHours(hour, minute, second, ms);
  return d.getTime();
}

function localTime(t: number, timeZone: string): LocalTime {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(t)) parts[p.type] = p.value;
  const yearOfEra = Number(parts.year);
  const year = parts.era === 'BC' || parts.era === 'B' ? 1 - yearOfEra : yearOfEra;
  const ms = ((t % 1000) + 1000) % 1000;
  return { year, month: Number(parts.month), day: Number(parts.day), hour: Number(parts.hour), minute: Number(parts.minute), second: Number(parts.second), ms };
}

/** The zone's offset from UTC at instant t, in ms (east positive). */
function offsetAt(t: number, timeZone: string): number {
  const l = localTime(t, timeZone);
  return utcMs(l.year, l.month, l.day, l.hour, l.minute, l.second, l.ms) - t;
}

const DAY_MS = 86_400_000;

/**
 * The instant of a local wall-clock time. A time skipped by a forward change moves forward by
 * the gap; a time that happens twice is the earlier (Temporal's "compatible" choice). Assumes
 * at most one offset change within a day either side, true of every real zone.
 */
function instantOf(l: LocalTime, timeZone: string): number {
  const wall = utcMs(l.year, l.month, l.day, l.hour, l.minute, l.second, l.ms);
  const before = offsetAt(wall - DAY_MS, timeZone);
  const after = offsetAt(wall + DAY_MS, timeZone);
  const valid = [wall - before, wall - after].filter((t, i) => offsetAt(t, timeZone) === (i === 0 ? before : after));
  if (valid.length > 0) return Math.min(...valid);
  return wall - before; // in the gap: read with the offset in force before it, which lands after it
}

function daysInMonth(year: number, month: number): number {
  return new Date(utcMs(year, month + 1, 0)).getUTCDate();
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function subtractDuration(now: number, d: RetentionDuration, timeZone: string): number {
  const l = localTime(now, timeZone);
  const monthIndex = l.year * 12 + (l.month - 1) - d.years * 12 - d.months;
  const year = Math.floor(monthIndex / 12);
  const month = monthIndex - year * 12 + 1;
  const day = Math.min(l.day, daysInMonth(year, month));
  const date = new Date(utcMs(year, month, day - d.weeks * 7 - d.days));
  const t = instantOf({ ...l, year: date.getUTCFullYear(), month: date.getUTCMonth() + 1, day: date.getUTCDate() }, timeZone);
  return t - d.hours * 3_600_000;
}

/**
 * `now − duration` as used by the `within*` rules and the protection window (calendar years,
 * months, weeks and days in `timeZone`, exact hours; see the module comment). A snapshot is
 * inside the window when strictly newer than this instant.
 */
export function retentionCutoff(now: Date, duration: string, timeZone: string): Date {
  assertTimeZone(timeZone);
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw bad('retention needs a valid "now" date');
  return new Date(subtractDuration(now.getTime(), parseRetentionDuration(duration), timeZone));
}

type BucketKind = 'daily' | 'weekly' | 'monthly' | 'yearly';

/** The bucket labels of an instant: local day, ISO week, month and year in the zone. */
export function retentionBuckets(time: Date, timeZone: string): Readonly<Record<BucketKind, string>> {
  assertTimeZone(timeZone);
  return bucketsOf(time.getTime(), timeZone);
}

function bucketsOf(t: number, timeZone: string): Readonly<Record<BucketKind, string>> {
  const l = localTime(t, timeZone);
  const noon = utcMs(l.year, l.month, l.day, 12);
  const weekday = ((new Date(noon).getUTCDay() + 6) % 7) + 1; // Monday 1 … Sunday 7
  const thursday = new Date(noon + (4 - weekday) * DAY_MS); // the ISO week's year is its Thursday's
  const isoYear = thursday.getUTCFullYear();
  const week = Math.floor((thursday.getTime() - utcMs(isoYear, 1, 1, 12)) / (7 * DAY_MS)) + 1;
  const y = pad(l.year, 4);
  return {
    daily: `${y}-${pad(l.month)}-${pad(l.day)}`,
    weekly: `${pad(isoYear, 4)}-W${pad(week)}`,
    monthly: `${y}-${pad(l.month)}`,
    yearly: y,
  };
}

// ---------------------------------------------------------------------------------------------
// Planning

/** What retention needs of a snapshot. `time` is the server's ISO 8601 timestamp (Z or ±hh:mm offset). */
export interface RetentionSnapshot {
  readonly id: string;
  readonly time: string;
  readonly machineId: string;
}

export interface RetentionOptions {
  /** The instant the plan is made for. */
  readonly now: Date;
  /** IANA zone whose calendar defines days, weeks, months and years (the practice's), e.g. Europe/Paris. */
  readonly timeZone: string;
  /** Nothing newer than now − protectDays (calendar days) is removed; a whole number ≥ 0, 0 disables. */
  readonly protectDays: number;
}

export interface RetentionReason {
  readonly rule: RetentionRule;
  /** For people and dry runs, e.g. "daily 2026-03-29", "weekly 2026-W13", "protected (younger than 7 days)". */
  readonly text: string;
}

interface DecisionBase {
  readonly id: string;
  readonly machineId: string;
  /** The snapshot's time as given. */
  readonly time: string;
}
export interface KeepDecision extends DecisionBase {
  readonly action: 'keep';
  /** Every reason that keeps it (at least one), in policy order then the protection window. */
  readonly reasons: readonly RetentionReason[];
}
export interface RemoveDecision extends DecisionBase {
  readonly action: 'remove';
  /** Always the rule "unmatched": "not kept by any rule". */
  readonly reason: RetentionReason;
}
export type RetentionDecision = KeepDecision | RemoveDecision;

export interface RetentionSummary {
  readonly total: number;
  readonly kept: number;
  readonly removed: number;
  /**
   * Snapshots per rule: a kept snapshot counts once under each rule that keeps it (so these
   * may add up to more than `kept`); `unmatched` equals `removed`.
   */
  readonly byRule: Readonly<Record<RetentionRule, number>>;
  /** Kept and removed per machine, by machine id. */
  readonly machines: readonly { readonly machineId: string; readonly kept: number; readonly removed: number }[];
}

export interface RetentionPlan {
  /** The policy applied, normalised. */
  readonly policy: RetentionPolicy;
  /** One decision per snapshot, newest first (time, then id). */
  readonly decisions: readonly RetentionDecision[];
  /** Ids kept / removed, in the same order. */
  readonly keep: readonly string[];
  readonly remove: readonly string[];
  /** Snapshots strictly newer than this are protected; null when protectDays is 0. */
  readonly protectedAfter: string | null;
  readonly summary: RetentionSummary;
}

const ISO_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-](\d{2}):(\d{2}))$/;

function parseTime(s: RetentionSnapshot): number {
  const m = typeof s.time === 'string' ? ISO_RE.exec(s.time) : null;
  const n = m ? m.slice(1).map((g) => (g === undefined ? 0 : Number(g))) : [];
  const [year, month, day, hour, minute, second, offH, offM] = n as [number, number, number, number, number, number, number, number];
  const t = m ? Date.parse(s.time) : NaN;
  if (!m || month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month) || hour > 23 || minute > 59 || second > 59 || offH > 23 || offM > 59 || Number.isNaN(t)) {
    throw bad(`snapshot "${String(s.id)}" has an invalid time ${JSON.stringify(s.time) ?? String(s.time)}: expected an ISO 8601 UTC time such as 2026-03-29T21:00:00Z`);
  }
  return t;
}

const BUCKET_OF: Readonly<Record<Exclude<CountRule, 'keepLast'> | Exclude<DurationRule, 'within'>, BucketKind>> = {
  daily: 'daily',
  weekly: 'weekly',
  monthly: 'monthly',
  yearly: 'yearly',
  withinDaily: 'daily',
  withinWeekly: 'weekly',
  withinMonthly: 'monthly',
  withinYearly: 'yearly',
};

interface Item {
  readonly s: RetentionSnapshot;
  readonly t: number;
  readonly buckets: Readonly<Record<BucketKind, string>>;
}

/**
 * Plans a retention run: for every snapshot, keep (with every reason) or remove (not kept by
 * any rule). The rules, their per-machine application, the calendar and the protection
 * window are described in this module's comment. BAD_REQUEST for an invalid policy (including
 * one that keeps nothing), time zone, `now`, `protectDays`, snapshot time, empty id or
 * machine id, or an id given twice.
 */
export function planRetention(snapshots: readonly RetentionSnapshot[], policy: RetentionPolicy, options: RetentionOptions): RetentionPlan {
  const p = parseRetentionPolicy(policy);
  const { now, timeZone, protectDays } = options;
  assertTimeZone(timeZone);
  if (!(now instanceof Date) || Number.isNaN(now.getTime())) throw bad('retention needs a valid "now" date');
  if (typeof protectDays !== 'number' || !Number.isInteger(protectDays) || protectDays < 0 || protectDays > 36_500) {
    throw bad(`protectDays must be a whole number of days from 0 to 36500, got ${String(protectDays)}`);
  }
  if (!Array.isArray(snapshots)) throw bad('snapshots must be an array');

  const seen = new Set<string>();
  const items: Item[] = snapshots.map((s: RetentionSnapshot | null) => {
    if (typeof s !== 'object' || s === null) throw bad('every snapshot must be an object {id, time, machineId}');
    if (typeof s.id !== 'string' || s.id === '') throw bad('every snapshot needs a non-empty id');
    if (typeof s.machineId !== 'string' || s.machineId === '') throw bad(`snapshot "${s.id}" needs a non-empty machineId`);
    if (seen.has(s.id)) throw bad(`snapshot id "${s.id}" is given twice`);
    seen.add(s.id);
    const t = parseTime(s);
    return { s, t, buckets: bucketsOf(t, timeZone) };
  });
  items.sort((a, b) => b.t - a.t || (a.s.id < b.s.id ? -1 : a.s.id > b.s.id ? 1 : 0));

  const nowMs = now.getTime();
  const cutoffs = new Map<DurationRule, { after: number; label: string }>();
  for (const key of DURATION_RULES) {
    const d = p[key];
    if (d !== undefined) cutoffs.set(key, { after: subtractDuration(nowMs, parseRetentionDuration(d), timeZone), label: d });
  }
  const protectedAfter = protectDays > 0 ? subtractDuration(nowMs, { years: 0, months: 0, weeks: 0, days: protectDays, hours: 0 }, timeZone) : null;
  const protectedText = `protected (younger than ${protectDays} day${protectDays === 1 ? '' : 's'})`;

  const reasons = new Map<string, RetentionReason[]>();
  const byMachine = new Map<string, Item[]>();
  for (const it of items) {
    reasons.set(it.s.id, []);
    const list = byMachine.get(it.s.machineId);
    if (list) list.push(it);
    else byMachine.set(it.s.machineId, [it]);
  }

  for (const list of byMachine.values()) {
    // Rules in canonical order, so each snapshot's reasons come out in that order.
    for (const key of POLICY_KEYS) {
      const v = p[key];
      if (v === undefined) continue;
      if (key === 'keepLast') {
        for (const it of list.slice(0, v as number)) reasons.get(it.s.id)?.push({ rule: key, text: `last ${v}` });
      } else if (key === 'within') {
        const c = cutoffs.get(key) as { after: number; label: string };
        for (const it of list) if (it.t > c.after) reasons.get(it.s.id)?.push({ rule: key, text: `within ${c.label}` });
      } else {
        const kind = BUCKET_OF[key];
        const used = new Set<string>();
        const isCount = typeof v === 'number';
        const c = isCount ? undefined : cutoffs.get(key as DurationRule);
        for (const it of list) {
          if (isCount && used.size >= v) break;
          if (c && !(it.t > c.after)) break; // newest first: everything after this is older still
          const bucket = it.buckets[kind];
          if (used.has(bucket)) continue;
          used.add(bucket);
          reasons.get(it.s.id)?.push({ rule: key, text: c ? `${kind} ${bucket} (within ${c.label})` : `${kind} ${bucket}` });
        }
      }
    }
    if (protectedAfter !== null) {
      for (const it of list) {
        if (!(it.t > protectedAfter)) break;
        reasons.get(it.s.id)?.push({ rule: 'protected', text: protectedText });
      }
    }
  }

  const byRule = Object.fromEntries(RETENTION_RULES.map((r) => [r, 0])) as Record<RetentionRule, number>;
  const machineCounts = new Map<string, { kept: number; removed: number }>();
  const decisions: RetentionDecision[] = [];
  const keep: string[] = [];
  const remove: string[] = [];
  for (const it of items) {
    const { id, machineId, time } = it.s;
    const rs = reasons.get(id) as RetentionReason[];
    let mc = machineCounts.get(machineId);
    if (!mc) machineCounts.set(machineId, (mc = { kept: 0, removed: 0 }));
    if (rs.length > 0) {
      decisions.push(Object.freeze({ id, machineId, time, action: 'keep', reasons: Object.freeze(rs.map((r) => Object.freeze(r))) }));
      keep.push(id);
      mc.kept++;
      for (const r of rs) byRule[r.rule]++;
    } else {
      decisions.push(Object.freeze({ id, machineId, time, action: 'remove', reason: Object.freeze({ rule: 'unmatched', text: 'not kept by any rule' }) }));
      remove.push(id);
      mc.removed++;
      byRule.unmatched++;
    }
  }
  const machines = [...machineCounts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([machineId, c]) => Object.freeze({ machineId, ...c }));

  return Object.freeze({
    policy: p,
    decisions: Object.freeze(decisions),
    keep: Object.freeze(keep),
    remove: Object.freeze(remove),
    protectedAfter: protectedAfter === null ? null : new Date(protectedAfter).toISOString(),
    summary: Object.freeze({ total: items.length, kept: keep.length, removed: remove.length, byRule: Object.freeze(byRule), machines: Object.freeze(machines) }),
  });
}
