import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupCatalog } from '../../catalog/catalog.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import type {
  DirEntry,
  FileStat,
  HostProcesses,
  ReadHandle,
  Storage,
  WriteHandle,
  WriteOptions,
} from '../../storage/storage.js';
import { probackupFixtureDir, strataCliPath } from '../../testing/pgBinaries.js';
import type { CommandContext } from '../context.js';
import { restoreBackup } from '../restore/restore.js';
import { mergeBackup } from './merge.js';

/**
 * Crash consistency of merge, proved by simulation: a Storage that lets the first N changes to
 * the file system through and then fails every further one, as if the machine stopped there.
 * For crash points spread over a whole merge of the pg_probackup fixture chain (every change to
 * the catalog's metadata, and a sample of the per-file changes), the merge is cut short there and
 * run again on the plain file system; the result must be the one FULL backup TP11RT restoring
 * byte for byte what the untouched chain restores.
 */

const FIXTURE = join(probackupFixtureDir, 'catalog');
const INSTANCE = 'demo';

class SimulatedCrash extends Error {}

/** A Storage whose changes stop at a budget: reads pass, the change past the budget and all later ones throw. */
class CrashingStorage implements Storage {
  readonly kind = 'local' as const;
  /** Description of every change let through, in order. */
  readonly changes: string[] = [];

  constructor(
    private readonly inner: Storage,
    private readonly budget: number,
  ) {}

  private change(description: string): void {
    if (this.changes.length >= this.budget)
      throw new SimulatedCrash(`stopped before ${description}`);
    this.changes.push(description);
  }

  processesAt(path: string): HostProcesses {
    return this.inner.processesAt(path);
  }
  /** Every change must pass through the budget: no worker thread may open these files itself. */
  localPath(): undefined {
    return undefined;
  }
  stat(path: string, options?: { noFollow?: boolean }): Promise<FileStat | null> {
    return this.inner.stat(path, options);
  }
  readFile(path: string): Promise<Buffer> {
    return this.inner.readFile(path);
  }
  async writeFile(path: string, data: Buffer | string, options?: WriteOptions): Promise<void> {
    this.change(`write ${path}`);
    await this.inner.writeFile(path, data, options);
  }
  async writeFileAtomic(
    path: string,
    data: Buffer | string,
    options: { mode?: number; tmpSuffix?: string; sync?: boolean } = {},
  ): Promise<void> {
    const tmpPath = path + (options.tmpSuffix ?? '.tmp');
    this.change(`write ${tmpPath}`);
    await this.inner.writeFile(tmpPath, data, { mode: options.mode ?? 0o600 });
    this.change(`rename ${tmpPath} ${path}`);
    await this.inner.rename(tmpPath, path);
  }
  openRead(path: string): Promise<ReadHandle> {
    return this.inner.openRead(path);
  }
  async openWrite(
    path: string,
    options?: WriteOptions & { truncate?: boolean },
  ): Promise<WriteHandle> {
    this.change(`open ${path}`);
    const handle = await this.inner.openWrite(path, options);
    return {
      write: async (data, position) => {
        this.change(`write into ${path}`);
        await handle.write(data, position);
      },
      truncate: async (sizeBytes) => {
        this.change(`truncate ${path}`);
        await handle.truncate(sizeBytes);
      },
      sync: () => handle.sync(),
      close: () => handle.close(),
    };
  }
  readDir(path: string): Promise<DirEntry[]> {
    return this.inner.readDir(path);
  }
  async mkdir(path: string, options?: { mode?: number; recursive?: boolean }): Promise<void> {
    this.change(`mkdir ${path}`);
    await this.inner.mkdir(path, options);
  }
  async rename(from: string, to: string): Promise<void> {
    this.change(`rename ${from} ${to}`);
    await this.inner.rename(from, to);
  }
  async unlink(path: string): Promise<void> {
    this.change(`unlink ${path}`);
    await this.inner.unlink(path);
  }
  /** Leaf by leaf, so that a crash can stop a removal half-way. */
  async removeTree(path: string): Promise<void> {
    const stat = await this.inner.stat(path, { noFollow: true });
    if (!stat) return;
    if (stat.type === 'directory') {
      for (const child of await this.inner.readDir(path)) {
        await this.removeTree(join(path, child.name));
      }
    }
    this.change(`remove ${path}`);
    await this.inner.removeTree(path);
  }
  async symlink(target: string, path: string): Promise<void> {
    this.change(`symlink ${path}`);
    await this.inner.symlink(target, path);
  }
  readLink(path: string): Promise<string> {
    return this.inner.readLink(path);
  }
  async chmod(path: string, mode: number): Promise<void> {
    this.change(`chmod ${path}`);
    await this.inner.chmod(path, mode);
  }
  syncFile(path: string): Promise<void> {
    return this.inner.syncFile(path);
  }
  syncDir(path: string): Promise<void> {
    return this.inner.syncDir(path);
  }
  realPath(path: string): Promise<string> {
    return this.inner.realPath(path);
  }
}

let base: string;
let reference: Map<string, Buffer>;
let copies = 0;

function copyCatalog(): string {
  const path = join(base, `catalog-${++copies}`);
  cpSync(FIXTURE, path, { recursive: true });
  execFileSync('chmod', ['-R', 'u+w', path]);
  return path;
}

function context(storage: Storage): CommandContext {
  return { storage, logger: createMemoryLogger(), now: () => Date.now() };
}

/**
 * Without its own validation: every resumed result is validated (pages and CRCs) by the restore
 * that checks it.
 */
function merge(storage: Storage, catalogPath: string, backupId: string) {
  return mergeBackup(context(storage), {
    backupPath: catalogPath,
    instance: INSTANCE,
    backupId,
    // Two workers: the per-file changes interleave differently from run to run, but their
    // number, and so the index of every metadata change, is the same in every run.
    threads: 2,
    noValidate: true,
    noSync: true,
    progress: false,
  });
}

/** Restores `backupId` and returns its files' bytes (postgresql.auto.conf names the catalog: left out). */
async function restoredTree(catalogPath: string, backupId: string): Promise<Map<string, Buffer>> {
  const pgdata = join(base, `restore-${++copies}`);
  await restoreBackup(context(new LocalStorage()), {
    backupPath: catalogPath,
    instance: INSTANCE,
    pgdata,
    backupId,
    target: {},
    restoreAsReplica: false,
    noValidate: false,
    force: false,
    skipBlockValidation: false,
    threads: 4,
    noSync: true,
    strataCommandPath: `"${process.execPath}" "${strataCliPath}"`,
    progress: false,
  });
  const files = new Map<string, Buffer>();
  const walk = (relative: string) => {
    for (const entry of readdirSync(join(pgdata, relative), { withFileTypes: true })) {
      const path = relative === '' ? entry.name : `${relative}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else if (path !== 'postgresql.auto.conf') files.set(path, readFileSync(join(pgdata, path)));
    }
  };
  walk('');
  rmSync(pgdata, { recursive: true, force: true });
  return files;
}

/** After the resumed merge: one FULL backup TP11RT, OK, nothing left over, restoring the reference. */
async function expectMergedCatalog(catalogPath: string): Promise<void> {
  const instanceDir = join(catalogPath, 'backups', INSTANCE);
  expect(readdirSync(instanceDir).sort()).toEqual(['TP11RT', 'pg_probackup.conf']);
  expect(readdirSync(join(instanceDir, 'TP11RT')).sort()).toEqual([
    'backup.control',
    'backup_content.control',
    'database',
    'page_header_map',
  ]);
  const backups = await new BackupCatalog(new LocalStorage(), catalogPath).listBackups(INSTANCE);
  expect(backups.map((b) => [b.id, b.backupMode, b.status, b.problems.length])).toEqual([
    ['TP11RT', 'FULL', 'OK', 0],
  ]);
  const restored = await restoredTree(catalogPath, 'TP11RT');
  expect([...restored.keys()].sort()).toEqual([...reference.keys()].sort());
  const differing = [...reference].filter(([path, bytes]) => !restored.get(path)!.equals(bytes));
  expect(differing.map(([path]) => path)).toEqual([]);
}

/** The state a crash left, for the test's own record of which states were exercised. */
async function crashState(catalogPath: string): Promise<string> {
  const backups = await new BackupCatalog(new LocalStorage(), catalogPath).listBackups(INSTANCE);
  return backups.map((b) => `${b.id}:${b.status}`).join(' ');
}

/**
 * The crash points: before every status change, around the commit, the map and the list swap,
 * at each step of a member's deletion, around the directory rename, and a spread of points in
 * the per-file stretches (staging, renames of staged files).
 */
function crashPoints(changes: readonly string[]): number[] {
  const points = new Set<number>([0, changes.length - 1]);
  const indexOf = (pattern: RegExp) => changes.findIndex((change) => pattern.test(change));
  const every = (pattern: RegExp) =>
    changes.forEach((change, index) => {
      if (pattern.test(change)) points.add(index);
    });
  const spread = (from: number, to: number, count: number) => {
    for (let k = 1; k <= count; k++) points.add(from + Math.floor(((to - from) * k) / (count + 1)));
  };
  every(/^rename \S+\/backup\.control\.tmp /);
  const mapOpen = indexOf(/^open \S+\/page_header_map_tmp$/);
  const commit = indexOf(/^rename \S+\.merge\.tmp \S+\.merge$/);
  const mapRename = indexOf(/^rename \S+\/page_header_map_tmp \S+\/page_header_map$/);
  const dirRename = indexOf(/^rename \S+\/TP11R6 \S+\/TP11RT$/);
  expect(Math.min(mapOpen, commit, mapRename, dirRename)).toBeGreaterThan(0);
  spread(mapOpen, commit, 4);
  spread(commit + 1, mapRename, 2);
  for (const index of [
    mapOpen,
    commit,
    commit + 1,
    mapRename,
    mapRename + 1,
    dirRename,
    dirRename + 1,
  ]) {
    points.add(index);
  }
  every(/^rename \S+\.merge \S+\/backup_content\.control$/);
  every(/^(unlink|remove) \S+\/TP11R[HT]\/(backup_content\.control|page_header_map|database)$/);
  every(/^unlink \S+\/backup\.control$/);
  every(/^remove \S+\/TP11R[HT]$/);
  return [...points].sort((a, b) => a - b);
}

let changes: string[];

beforeAll(async () => {
  base = mkdtempSync(join(tmpdir(), 'strata-merge-crash-'));
  const pristine = copyCatalog();
  reference = await restoredTree(pristine, 'TP11RT');
  // A full run through the counting Storage lists every change a merge makes, in order.
  const counting = new CrashingStorage(new LocalStorage(), Number.POSITIVE_INFINITY);
  await merge(counting, copyCatalog(), 'TP11RT');
  changes = counting.changes;
}, 300_000);
afterAll(() => rmSync(base, { recursive: true, force: true }));

describe('merge interrupted at any point and run again', () => {
  it('finishes the merge from every crash point, with -i of the destination or of the FULL', async () => {
    const points = crashPoints(changes);
    expect(points.length).toBeGreaterThan(30);
    const states = new Set<string>();
    for (const [n, point] of points.entries()) {
      const catalogPath = copyCatalog();
      // The last changes release locks: a failure there is a warning and the merge still succeeds.
      await merge(new CrashingStorage(new LocalStorage(), point), catalogPath, 'TP11RT').catch(
        (error: unknown) => expect(error).toBeInstanceOf(Error),
      );
      const state = await crashState(catalogPath);
      states.add(state);
      // Every other crash point is resumed through the FULL's ID while the FULL, still under
      // that ID, records the merge (before that, -i of the FULL would start a different merge).
      const viaFull = n % 2 === 1 && /TP11R6:MERG(ING|ED)/.test(state);
      await expect(
        merge(new LocalStorage(), catalogPath, viaFull ? 'TP11R6' : 'TP11RT'),
        `crash before change ${point} (${changes[point]}), state ${state}`,
      ).resolves.toEqual({ mergedId: 'TP11RT' });
      await expectMergedCatalog(catalogPath);
      rmSync(catalogPath, { recursive: true, force: true });
    }
    // The crash points reached every stage: untouched, MERGING, MERGED, members being deleted,
    // and the FULL renamed before its control file was rewritten.
    const all = [...states].join('\n');
    expect(all).toContain('TP11RT:MERGING TP11RH:MERGING TP11R6:MERGING');
    expect(all).toContain('TP11R6:MERGED');
    expect(all).toContain('TP11RH:DELETING');
    expect(all).toContain('TP11RT:DELETING');
    expect([...states].some((state) => state.startsWith('TP11RT:UNKNOWN'))).toBe(true);
    expect([...states]).toContain('TP11R6:MERGED');
  }, 1_800_000);

  it('finishes after crashing again while resuming', async () => {
    const commit = changes.findIndex(
      (change) => change.startsWith('rename ') && change.endsWith('backup_content.control.merge'),
    );
    expect(commit).toBeGreaterThan(100);
    const sequences: Array<[number, number]> = [
      // During the staging, then again during the staging of the retry.
      [commit - 100, 50],
      // While the staged files are renamed, then again a few renames later.
      [commit + 50, 20],
      // While the members are deleted, then again at once.
      [changes.length - 12, 3],
    ];
    for (const [first, second] of sequences) {
      const catalogPath = copyCatalog();
      await expect(
        merge(new CrashingStorage(new LocalStorage(), first), catalogPath, 'TP11RT'),
      ).rejects.toThrow();
      await expect(
        merge(new CrashingStorage(new LocalStorage(), second), catalogPath, 'TP11RT'),
      ).rejects.toThrow();
      await expect(merge(new LocalStorage(), catalogPath, 'TP11RT')).resolves.toEqual({
        mergedId: 'TP11RT',
      });
      await expectMergedCatalog(catalogPath);
    }
  }, 600_000);
});
