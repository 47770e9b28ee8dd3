import {
  chmodSync,
  cpSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBackupControl } from '../core/catalog/backupControl.js';
import { BackupCatalog } from '../core/catalog/catalog.js';
import { parseContentList } from '../core/catalog/contentList.js';
import { parseDatabaseMap } from '../core/catalog/databaseMap.js';
import { parseInstanceConfigText } from '../core/catalog/instanceConfig.js';
import { decodePageHeaderSlice, readPageHeaderSlice } from '../core/catalog/pageHeaderMap.js';
import { isStrataError } from '../core/errors.js';
import { parseTimelineHistory } from '../core/format/timelineHistory.js';
import { LocalStorage } from '../core/storage/local/localStorage.js';
import { probackupFixtureDir } from '../core/testing/pgBinaries.js';

/**
 * Damaged catalog files must end in one StrataError naming the file, never in another exception,
 * a crash or a hang: every reader of catalog metadata is fed thousands of mutations of real files
 * (from the pg_probackup 2.5.16 fixture) — flipped bits, truncations, inserted separators, quotes,
 * huge numbers, NUL and invalid UTF-8 bytes, duplicated and swapped lines. The seed is printed;
 * STRATA_FUZZ_SEED replays a run.
 */

const seed = Number(process.env['STRATA_FUZZ_SEED'] ?? Math.floor(Math.random() * 2 ** 31));
/** One call of a reader on a few kB of text takes microseconds; this is a hang. */
const SLOW_CALL_MS = 500;

function seededRandom(state: number): () => number {
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = seededRandom(seed);
const below = (n: number) => Math.floor(random() * n);

const TOKENS = [
  "'",
  "''",
  '"',
  '=',
  '#',
  ' ',
  '\t',
  '\n',
  '\r',
  '\v',
  '\0',
  ',',
  ':',
  '{',
  '}',
  '/',
  '.',
  '-',
  '-1',
  '0',
  '0x',
  '0xFFFFFFFFFFFFFFFF',
  '99999999999999999999999',
  '2147483648',
  'INFINITE',
  'FULL',
  'none',
  'true',
  '\u00e9',
  '\ud83d\ude00',
  '0/0',
  'FFFFFFFF/FFFFFFFF',
  '+25',
  '9999-99-99',
];

/** One random mutation of `input`. */
function mutate(input: Buffer): Buffer {
  const at = below(input.length + 1);
  switch (below(9)) {
    case 0: {
      const copy = Buffer.from(input);
      if (copy.length > 0) copy[below(copy.length)]! ^= 1 << below(8);
      return copy;
    }
    case 1:
      return input.subarray(0, at);
    case 2: {
      const bytes = Buffer.alloc(1 + below(8));
      for (let i = 0; i < bytes.length; i++) bytes[i] = below(256);
      return Buffer.concat([input.subarray(0, at), bytes, input.subarray(at)]);
    }
    case 3:
      return Buffer.concat([
        input.subarray(0, at),
        input.subarray(Math.min(input.length, at + 1 + below(16))),
      ]);
    case 4: {
      const token = Buffer.from(TOKENS[below(TOKENS.length)]!);
      return Buffer.concat([input.subarray(0, at), token, input.subarray(at)]);
    }
    case 5: {
      const end = Math.min(input.length, at + below(64));
      return Buffer.concat([input.subarray(0, end), input.subarray(at, end), input.subarray(end)]);
    }
    case 6: {
      const lines = input.toString('latin1').split('\n');
      const i = below(lines.length);
      const j = below(lines.length);
      [lines[i], lines[j]] = [lines[j]!, lines[i]!];
      return Buffer.from(lines.join('\n'), 'latin1');
    }
    case 7: {
      // A digit run replaced by a number of another size.
      const text = input.toString('latin1');
      const digits = [...text.matchAll(/\d+/g)];
      if (digits.length === 0) return input;
      const match = digits[below(digits.length)]!;
      const replacement = [
        '0',
        '-0',
        '4294967296',
        '18446744073709551616',
        '9'.repeat(40),
        '-2147483649',
      ][below(6)]!;
      return Buffer.from(
        text.slice(0, match.index) + replacement + text.slice(match.index! + match[0].length),
        'latin1',
      );
    }
    default:
      return Buffer.concat([input.subarray(0, at), Buffer.from([0xc3]), input.subarray(at)]);
  }
}

function mutateTimes(input: Buffer): Buffer {
  let result = input;
  for (let n = 1 + below(4); n > 0; n--) result = mutate(result);
  return result;
}

interface FuzzStats {
  calls: number;
  strataErrors: number;
  slowestMs: number;
}

/** Runs `read` on `count` mutations of `seedInput`; anything thrown must be a StrataError. */
async function fuzz(
  name: string,
  seedInput: Buffer,
  count: number,
  read: (input: Buffer) => unknown,
): Promise<FuzzStats> {
  const stats: FuzzStats = { calls: 0, strataErrors: 0, slowestMs: 0 };
  for (let i = 0; i < count; i++) {
    const input = mutateTimes(seedInput);
    const start = performance.now();
    try {
      await read(input);
    } catch (error) {
      if (!isStrataError(error)) {
        const shown = JSON.stringify(input.toString('latin1').slice(0, 2000));
        throw new Error(
          `${name} (seed ${seed}, case ${i}) threw ${String(error)} for input ${shown}`,
          { cause: error },
        );
      }
      stats.strataErrors++;
    }
    const elapsed = performance.now() - start;
    stats.slowestMs = Math.max(stats.slowestMs, elapsed);
    expect(elapsed, `${name} (seed ${seed}, case ${i}) took ${elapsed} ms`).toBeLessThan(
      SLOW_CALL_MS,
    );
    stats.calls++;
  }
  return stats;
}

describe(`catalog readers fed mutated files (seed ${seed})`, () => {
  const backupDir = join(probackupFixtureDir, 'catalog', 'backups', 'demo', 'TP11RT');
  const controlText = readFileSync(join(backupDir, 'backup.control'));
  const contentText = readFileSync(join(backupDir, 'backup_content.control'));
  const configText = readFileSync(
    join(probackupFixtureDir, 'catalog', 'backups', 'demo', 'pg_probackup.conf'),
  );
  const databaseMapText = readFileSync(join(backupDir, 'database', 'database_map'));
  const mapPath = join(backupDir, 'page_header_map');
  const historyText = Buffer.from(
    '1\t0/5000000\tno recovery target specified\n\n# comment\n2\t0/7A0001C8\tbefore 2026-11-24 22:14:19+00\n',
  );
  const storage = new LocalStorage();
  let scratch: string;

  beforeAll(() => {
    scratch = mkdtempSync(join(tmpdir(), 'strata-fuzz-'));
    cpSync(join(probackupFixtureDir, 'catalog'), join(scratch, 'catalog'), { recursive: true });
    // The fixture is read-only; its copy must be changeable and removable.
    const makeWritable = (dir: string): void => {
      chmodSync(dir, 0o700);
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) makeWritable(join(dir, entry.name));
      }
    };
    makeWritable(join(scratch, 'catalog'));
  });

  afterAll(() => rmSync(scratch, { recursive: true, force: true }));

  it('backup.control: parseBackupControl', async () => {
    const stats = await fuzz('backup.control', controlText, 3000, (input) =>
      parseBackupControl(input.toString('utf8'), '/x/backup.control'),
    );
    expect(stats.strataErrors).toBeGreaterThan(100);
  });

  it('backup_content.control: parseContentList, then readPageHeaderSlice with the mutated entries', async () => {
    // The data-file lines with page headers, so that hdr_off/hdr_size/n_headers get mutated too.
    const lines = contentText.toString('utf8').split('\n');
    const sample = Buffer.from(
      [
        ...lines.filter((line) => line.includes('n_headers')).slice(0, 5),
        ...lines.slice(0, 20),
      ].join('\n') + '\n',
    );
    const stats = await fuzz('backup_content.control', sample, 3000, async (input) => {
      const entries = parseContentList(input.toString('utf8'), '/x/backup_content.control');
      for (const entry of entries.slice(0, 5)) await readPageHeaderSlice(storage, mapPath, entry);
    });
    expect(stats.strataErrors).toBeGreaterThan(100);
  });

  it('page_header_map: decodePageHeaderSlice', async () => {
    const map = readFileSync(mapPath);
    const stats = await fuzz('page_header_map', map, 2000, (input) =>
      decodePageHeaderSlice(input, [7, 0, 1, 100000][below(4)]!, 2813915953, 'fuzzed slice'),
    );
    expect(stats.strataErrors).toBeGreaterThan(100);
  });

  it('pg_probackup.conf: parseInstanceConfigText', async () => {
    const stats = await fuzz('pg_probackup.conf', configText, 3000, (input) =>
      parseInstanceConfigText(input.toString('utf8'), '/x/pg_probackup.conf'),
    );
    expect(stats.strataErrors).toBeGreaterThan(100);
  });

  it('<tli>.history: parseTimelineHistory', async () => {
    const stats = await fuzz('history', historyText, 3000, (input) =>
      parseTimelineHistory(input.toString('utf8'), 3),
    );
    expect(stats.strataErrors).toBeGreaterThan(100);
  });

  it('database_map: parseDatabaseMap', async () => {
    const stats = await fuzz('database_map', databaseMapText, 1500, (input) =>
      parseDatabaseMap(input.toString('utf8'), '/x/database_map'),
    );
    expect(stats.strataErrors).toBeGreaterThan(50);
  });

  it('through the catalog: a damaged backup.control never hides the other backups', async () => {
    const catalog = new BackupCatalog(storage, join(scratch, 'catalog'));
    const target = join(scratch, 'catalog', 'backups', 'demo', 'TP11RH', 'backup.control');
    const original = readFileSync(target);
    chmodSync(target, 0o600);
    await fuzz('listBackups', original, 300, async (input) => {
      writeFileSync(target, input);
      const backups = await catalog.listBackups('demo');
      const others = backups.filter((backup) => !backup.dir.endsWith('TP11RH'));
      expect(others.map((backup) => [backup.id, backup.status])).toEqual([
        ['TP11RT', 'OK'],
        ['TP11R6', 'OK'],
      ]);
      const damaged = backups.find((backup) => backup.dir.endsWith('TP11RH'))!;
      if (damaged.status === 'UNKNOWN') expect(damaged.problems.join('\n')).toContain(target);
    });
    writeFileSync(target, original);
  });
});
