import { execFileSync } from 'node:child_process';
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupCatalog } from '../core/catalog/catalog.js';
import { LocalStorage } from '../core/storage/local/localStorage.js';
import { makeTempDir, startRestoredCluster } from '../core/testing/cluster.js';
import { probackupFixtureDir } from '../core/testing/pgBinaries.js';
import { runStrata, spawnStrata, strata } from './strataCli.js';

/**
 * `strata merge` killed with SIGKILL at moments spread over a whole merge of the pg_probackup
 * 2.5.16 fixture chain (TP11R6 FULL zlib ← TP11RH DELTA pglz ← TP11RT PAGE none), then run again:
 * it must finish, leave the one FULL backup TP11RT, and that backup must restore a cluster holding
 * the fixture README's data.
 */

const FIXTURE = join(probackupFixtureDir, 'catalog');
const INSTANCE = 'demo';
const ORDERS_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||note, ',' order by id)) as v from orders";
const STAFF_SQL =
  "select count(*)::text || '|' || md5(string_agg(id||name, ',' order by id)) as v from staff";
const TP11RT_ORDERS = '21000|cac68294542a06cc0958659e4e30bb3b';
const STAFF = '2000|5dbb900eb98bac66cc40f18e766e5c12';

/** Kill the merge when the `occurrence`-th console line matching `line` appears. */
interface KillPoint {
  name: string;
  line: RegExp;
  occurrence: number;
}

const progress = /^LOG: Progress: \(\d+\/\d+\)\. Merging file /;
const killPoints: KillPoint[] = [
  { name: 'at the start', line: /^INFO: Merge started$/, occurrence: 1 },
  {
    name: 'while validating the chain',
    line: /^INFO: Validate parent chain for backup TP11RT$/,
    occurrence: 1,
  },
  { name: 'as file merging starts', line: /^INFO: Start merging backup files$/, occurrence: 1 },
  { name: 'after the first file', line: progress, occurrence: 1 },
  { name: 'a quarter through the files', line: progress, occurrence: 400 },
  { name: 'half through the files', line: progress, occurrence: 800 },
  { name: 'three quarters through the files', line: progress, occurrence: 1200 },
  { name: 'at the last files', line: progress, occurrence: 1560 },
  {
    name: 'once the files are merged',
    line: /^INFO: Backup files are successfully merged/,
    occurrence: 1,
  },
  { name: 'while unlisted files are deleted', line: /^LOG: Deleted "/, occurrence: 1 },
  {
    name: 'while the DELTA is deleted (FULL MERGED)',
    line: /^INFO: Delete: TP11RH /,
    occurrence: 1,
  },
  { name: 'while the destination is deleted', line: /^INFO: Delete: TP11RT /, occurrence: 1 },
  {
    name: 'after the FULL directory is renamed',
    line: /^INFO: Rename merged full backup TP11R6 to TP11RT$/,
    occurrence: 1,
  },
  { name: 'during the final validation', line: /^INFO: Validating backup TP11RT$/, occurrence: 2 },
];

let scratch: ReturnType<typeof makeTempDir>;
let copies = 0;
/** Which catalog state each kill left, to show the kills landed in different steps. */
const statesAfterKill = new Map<string, string>();

function copyCatalog(): string {
  const path = join(scratch.path, `catalog-${++copies}`);
  cpSync(FIXTURE, path, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', path]);
  return path;
}

function mergeArgs(catalog: string): string[] {
  return ['merge', '-B', catalog, '--instance', INSTANCE, '-i', 'TP11RT', '-j', '2'];
}

/** Runs the merge and SIGKILLs it at the kill point; resolves with its stderr once it is gone. */
function mergeUntilKilled(
  catalog: string,
  point: KillPoint,
): Promise<{ killed: boolean; stderr: string }> {
  const child = spawnStrata([...mergeArgs(catalog), '--log-level-console=log']);
  let stderr = '';
  let pending = '';
  let seen = 0;
  return new Promise((resolveRun) => {
    child.stdout!.resume();
    child.stderr!.on('data', (chunk: Buffer) => {
      const text = chunk.toString();
      stderr += text;
      const lines = (pending + text).split('\n');
      pending = lines.pop()!;
      for (const line of lines) {
        if (point.line.test(line) && ++seen === point.occurrence) child.kill('SIGKILL');
      }
    });
    child.on('exit', (_code, signal) => resolveRun({ killed: signal === 'SIGKILL', stderr }));
  });
}

async function catalogState(catalog: string): Promise<string> {
  const backups = await new BackupCatalog(new LocalStorage(), catalog).listBackups(INSTANCE);
  return backups.map((backup) => `${backup.id}:${backup.status}`).join(' ');
}

/** show, validate, restore and start the merged backup; the README's values must be there. */
async function expectMergedTp11rt(catalog: string, label: string): Promise<void> {
  const shown = JSON.parse(
    (await strata(['show', '-B', catalog, '--instance', INSTANCE, '--format=json'])).stdout,
  );
  expect(
    shown[0].backups.map((b: Record<string, unknown>) => [b['id'], b['backup-mode'], b['status']]),
  ).toEqual([['TP11RT', 'FULL', 'OK']]);
  expect(shown[0].backups[0]['parent-backup-id']).toBeUndefined();
  const validate = await strata(['validate', '-B', catalog, '--instance', INSTANCE]);
  expect(validate.stderr).toContain('INFO: All backups are valid');

  const pgdata = join(scratch.path, `restore-${label}`);
  await strata(['restore', '-B', catalog, '--instance', INSTANCE, '-D', pgdata, '-j', '2']);
  const server = await startRestoredCluster(15, pgdata);
  try {
    expect((await server.query<{ v: string }>('sales', ORDERS_SQL))[0]!.v).toBe(TP11RT_ORDERS);
    expect((await server.query<{ v: string }>('hr', STAFF_SQL))[0]!.v).toBe(STAFF);
  } finally {
    await server.destroy();
  }
}

beforeAll(() => {
  scratch = makeTempDir('strata-e2e-merge-');
});
afterAll(() => scratch?.remove());

describe('strata merge -i TP11RT of the pg_probackup 2.5.16 fixture', () => {
  it('merges the chain in one run and the result restores the README data', async () => {
    const catalog = copyCatalog();
    const merge = await runStrata(mergeArgs(catalog));
    expect(merge.code).toBe(0);
    const lines = merge.stderr.trimEnd().split('\n');
    expect(lines[0]).toBe('INFO: Merge started');
    expect(lines).toContain('INFO: Merging backup TP11RT with parent chain');
    expect(lines).toContain('INFO: Start merging backup files');
    expect(lines).toContain('INFO: Rename merged full backup TP11R6 to TP11RT');
    expect(lines.at(-1)).toBe('INFO: Merge of backup TP11RT completed');
    await expectMergedTp11rt(catalog, 'uninterrupted');
  }, 180_000);

  it('refuses a merge without -i', async () => {
    const result = await runStrata(['merge', '-B', copyCatalog(), '--instance', INSTANCE]);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('ERROR: Required parameter is not specified: --backup-id\n');
  });

  describe.each(killPoints)('killed $name, then run again', (point) => {
    it('finishes the merge, and the result restores the README data', async () => {
      const catalog = copyCatalog();
      const run = await mergeUntilKilled(catalog, point);
      expect(run.killed, run.stderr.slice(-2000)).toBe(true);
      const state = await catalogState(catalog);
      statesAfterKill.set(point.name, state);

      const resumed = await runStrata(mergeArgs(catalog));
      expect(resumed.code, `state after the kill: ${state}\n${resumed.stderr}`).toBe(0);
      expect(resumed.stderr).toContain('INFO: Merge of backup TP11RT completed');
      expect(existsSync(join(catalog, 'backups', INSTANCE, 'TP11R6'))).toBe(false);
      expect(existsSync(join(catalog, 'backups', INSTANCE, 'TP11RH'))).toBe(false);
      await expectMergedTp11rt(catalog, `killed-${copies}`);
    }, 180_000);
  });

  it('the kills left the catalog in different steps of the merge', () => {
    const states = new Set(statesAfterKill.values());
    expect(statesAfterKill.size).toBe(killPoints.length);
    expect(states).toContain('TP11RT:OK TP11RH:OK TP11R6:OK');
    expect(states).toContain('TP11RT:MERGING TP11RH:MERGING TP11R6:MERGING');
    expect([...states].some((state) => state.includes('TP11R6:MERGED'))).toBe(true);
    expect(states.size).toBeGreaterThanOrEqual(4);
  });
});
