import { readFileSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

/**
 * The time zone abbreviation C's `strftime("%Z")` prints for local time, as glibc finds it: from
 * the zone's TZif file (`TZ` names one under /usr/share/zoneinfo, or /etc/localtime when TZ is
 * unset) or from `TZ` itself when it is a POSIX rule such as `EST5EDT`. pg_probackup stamps every
 * file log line with it ("2026-11-25 17:22:55 MSK"); JavaScript's Intl has no such names for most
 * zones ("GMT+3"), so the tz database is read the way glibc reads it.
 */

const ZONEINFO_DIR = '/usr/share/zoneinfo';
const LOCALTIME_FILE = '/etc/localtime';

/** A POSIX TZ rule's names with their offsets east of UTC in seconds (`CET-1CEST` → CET +3600). */
interface PosixZoneNames {
  std: { name: string; offsetSec: number };
  dst?: { name: string; offsetSec: number };
}

interface ZoneTable {
  /** Transition times (Unix seconds) and the local time type each starts. */
  transitions: { atSec: number; typeIndex: number }[];
  types: { offsetSec: number; abbreviation: string }[];
  /** The TZif v2+ footer rule, which governs times after the last transition. */
  footer: PosixZoneNames | undefined;
}

/** `<+03>` or at least three letters: a POSIX TZ name; returns it and where it ends. */
function readPosixName(rule: string, at: number): { name: string; end: number } | undefined {
  if (rule[at] === '<') {
    const close = rule.indexOf('>', at);
    if (close < 0) return undefined;
    return { name: rule.slice(at + 1, close), end: close + 1 };
  }
  let end = at;
  while (end < rule.length && /[A-Za-z]/.test(rule[end]!)) end++;
  return end - at >= 3 ? { name: rule.slice(at, end), end } : undefined;
}

/** `[+-]hh[:mm[:ss]]`, hours west of UTC as POSIX writes them; returns seconds east of UTC. */
function readPosixOffset(rule: string, at: number): { offsetSec: number; end: number } | undefined {
  const match = /^([+-]?)(\d{1,2})(?::(\d{1,2})(?::(\d{1,2}))?)?/.exec(rule.slice(at));
  if (!match) return undefined;
  const westSec = Number(match[2]) * 3600 + Number(match[3] ?? 0) * 60 + Number(match[4] ?? 0);
  return { offsetSec: match[1] === '-' ? westSec : -westSec, end: at + match[0].length };
}

/**
 * The names of a POSIX TZ rule (`CET-1CEST,M3.5.0,M10.5.0/3`, `<+03>-3`, `UTC0`). A name without
 * an offset is still the name glibc prints (TZ=Foo/Bar prints "Foo" at UTC). The daylight name's
 * offset defaults to one hour ahead of standard time (POSIX).
 */
export function parsePosixZoneNames(rule: string): PosixZoneNames | undefined {
  const std = readPosixName(rule, 0);
  if (!std) return undefined;
  const stdOffset = readPosixOffset(rule, std.end);
  if (!stdOffset) return { std: { name: std.name, offsetSec: 0 } };
  const result: PosixZoneNames = { std: { name: std.name, offsetSec: stdOffset.offsetSec } };
  const dst = readPosixName(rule, stdOffset.end);
  if (dst) {
    const dstOffset = readPosixOffset(rule, dst.end);
    result.dst = {
      name: dst.name,
      offsetSec: dstOffset ? dstOffset.offsetSec : stdOffset.offsetSec + 3600,
    };
  }
  return result;
}

/**
 * A TZif file (RFC 8536): the version 1 block with 32-bit times is skipped when a version 2+
 * block with 64-bit times follows, whose footer holds the rule for later times.
 */
export function parseTzif(data: Buffer): ZoneTable | undefined {
  if (data.length < 44 || data.toString('latin1', 0, 4) !== 'TZif') return undefined;
  const counts = (at: number) => ({
    isutcnt: data.readUInt32BE(at + 20),
    isstdcnt: data.readUInt32BE(at + 24),
    leapcnt: data.readUInt32BE(at + 28),
    timecnt: data.readUInt32BE(at + 32),
    typecnt: data.readUInt32BE(at + 36),
    charcnt: data.readUInt32BE(at + 40),
  });
  const blockLength = (c: ReturnType<typeof counts>, timeBytes: number) =>
    c.timecnt * timeBytes +
    c.timecnt +
    c.typecnt * 6 +
    c.charcnt +
    c.leapcnt * (timeBytes + 4) +
    c.isstdcnt +
    c.isutcnt;
  let header = 0;
  let timeBytes = 4;
  const version = data[4]!;
  if (version >= 0x32) {
    header = 44 + blockLength(counts(0), 4);
    timeBytes = 8;
    if (data.length < header + 44) return undefined;
  }
  const c = counts(header);
  let at = header + 44;
  if (data.length < at + blockLength(c, timeBytes)) return undefined;
  const times: number[] = [];
  for (let i = 0; i < c.timecnt; i++, at += timeBytes) {
    times.push(timeBytes === 8 ? Number(data.readBigInt64BE(at)) : data.readInt32BE(at));
  }
  const transitions = times.map((atSec, i) => ({ atSec, typeIndex: data[at + i]! }));
  at += c.timecnt;
  const rawTypes: { offsetSec: number; nameIndex: number }[] = [];
  for (let i = 0; i < c.typecnt; i++, at += 6) {
    rawTypes.push({ offsetSec: data.readInt32BE(at), nameIndex: data[at + 5]! });
  }
  const names = data.subarray(at, at + c.charcnt);
  at += c.charcnt + c.leapcnt * (timeBytes + 4) + c.isstdcnt + c.isutcnt;
  const types = rawTypes.map(({ offsetSec, nameIndex }) => {
    const end = names.indexOf(0, nameIndex);
    return {
      offsetSec,
      abbreviation: names.toString('latin1', nameIndex, end < 0 ? names.length : end),
    };
  });
  let footer: PosixZoneNames | undefined;
  if (timeBytes === 8 && data[at] === 0x0a) {
    const end = data.indexOf(0x0a, at + 1);
    footer = parsePosixZoneNames(data.toString('latin1', at + 1, end < 0 ? data.length : end));
  }
  return { transitions, types, footer };
}

/** The name whose offset is the one JavaScript computed for this moment, standard time otherwise. */
function nameForOffset(names: PosixZoneNames, offsetSec: number): string {
  if (names.dst && names.dst.offsetSec === offsetSec && names.std.offsetSec !== offsetSec)
    return names.dst.name;
  return names.std.name;
}

/** The abbreviation a zone table gives for `atSec`, the way glibc's localtime picks it. */
export function zoneAbbreviation(table: ZoneTable, atSec: number, offsetSec: number): string {
  const { transitions, types, footer } = table;
  const last = transitions.at(-1);
  if (footer && (!last || atSec >= last.atSec)) return nameForOffset(footer, offsetSec);
  if (transitions.length === 0 || atSec < transitions[0]!.atSec)
    return types[0]?.abbreviation ?? 'UTC';
  let low = 0;
  let high = transitions.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    if (transitions[middle]!.atSec <= atSec) low = middle;
    else high = middle - 1;
  }
  return types[transitions[low]!.typeIndex]?.abbreviation ?? 'UTC';
}

function readZoneFile(path: string): ZoneTable | undefined {
  try {
    return parseTzif(readFileSync(path));
  } catch {
    return undefined;
  }
}

type ZoneSource = { table: ZoneTable } | { rule: PosixZoneNames } | undefined;
const sources = new Map<string, ZoneSource>();

/** glibc's reading of TZ: unset → /etc/localtime; empty → UTC; `:file` or a zone file; a rule. */
function zoneSource(tz: string | undefined): ZoneSource {
  const key = tz ?? '\0unset';
  if (sources.has(key)) return sources.get(key);
  let source: ZoneSource;
  if (tz === undefined) {
    const table = readZoneFile(LOCALTIME_FILE);
    source = table ? { table } : undefined;
  } else if (tz === '') {
    source = { rule: { std: { name: 'UTC', offsetSec: 0 } } };
  } else {
    const name = tz.startsWith(':') ? tz.slice(1) : tz;
    const table = readZoneFile(isAbsolute(name) ? name : join(ZONEINFO_DIR, name));
    const rule = table || tz.startsWith(':') ? undefined : parsePosixZoneNames(tz);
    source = table ? { table } : rule ? { rule } : undefined;
  }
  sources.set(key, source);
  return source;
}

/** `%Z` for `date` in the process's local time zone. */
export function timeZoneAbbreviation(
  date: Date,
  tz: string | undefined = process.env['TZ'],
): string {
  const offsetSec = -date.getTimezoneOffset() * 60;
  const source = zoneSource(tz);
  if (source && 'table' in source)
    return zoneAbbreviation(source.table, Math.floor(date.getTime() / 1000), offsetSec);
  if (source) return nameForOffset(source.rule, offsetSec);
  return 'UTC';
}
