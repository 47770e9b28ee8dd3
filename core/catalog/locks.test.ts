import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { createMemoryLogger } from '../log.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import type { Storage } from '../storage/storage.js';
import {
  heldBackupLock,
  lockBackupExclusive,
  lockBackupShared,
  releaseAllBackupLocks,
  releaseBackupLock,
} from './locks.js';

const storage = new LocalStorage();
let root: string;
let backupDir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-locks-'));
  backupDir = join(root, 'T1');
  mkdirSync(backupDir);
});

afterEach(async () => {
  await releaseAllBackupLocks();
  for (const child of children.splice(0)) child.kill('SIGKILL');
  rmSync(root, { recursive: true, force: true });
});

function sleeper(seconds: number): ChildProcess & { pid: number } {
  const child = spawn('sleep', [String(seconds)], { stdio: 'ignore' });
  children.push(child);
  if (child.pid === undefined) throw new Error('cannot spawn sleep');
  return child as ChildProcess & { pid: number };
}

function exited(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
}

/** The PID of a process that has already exited (and been reaped). */
function deadPid(): number {
  const result = spawnSync('sh', ['-c', 'echo $$']);
  return Number(result.stdout.toString().trim());
}

function lockError(promise: Promise<unknown>): Promise<StrataError> {
  return promise.then(
    () => {
      throw new Error('expected the lock to be refused');
    },
    (error: unknown) => {
      if (error instanceof StrataError) return error;
      throw error;
    },
  );
}

const pidFile = () => join(backupDir, 'backup.pid');
const sharedFile = () => join(backupDir, 'backup_ro.pid');

describe('exclusive lock', () => {
  it('writes our PID into backup.pid (0600) and removes it on release through any local Storage', async () => {
    const logger = createMemoryLogger();
    await lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger });
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
    expect(statSync(pidFile()).mode & 0o777).toBe(0o600);
    expect(heldBackupLock(storage, backupDir)).toEqual({ exclusive: true });
    await lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 });
    await releaseBackupLock(new LocalStorage(), backupDir);
    expect(existsSync(pidFile())).toBe(false);
    expect(heldBackupLock(storage, backupDir)).toBeUndefined();
    expect(logger.records).toEqual([]);
  });

  it('is refused while another live process holds it, and taken over once that process is gone', async () => {
    const owner = sleeper(30);
    writeFileSync(pidFile(), `${owner.pid}\n`);
    const logger = createMemoryLogger();
    const error = await lockError(
      lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 }),
    );
    expect(error.code).toBe('lock');
    expect(error.message).toBe('Cannot lock backup T1 directory');
    expect(logger.records.map((record) => record.message)).toContain(
      `Process ${owner.pid} is using backup T1, and is still running`,
    );
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${owner.pid}\n`);

    owner.kill('SIGKILL');
    await exited(owner);
    await lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 });
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
    expect(logger.records.map((record) => record.message)).toContain(
      `Process ${owner.pid} which used backup T1 no longer exists`,
    );
  });

  it('waits for a live owner that goes away', async () => {
    const owner = sleeper(1);
    writeFileSync(pidFile(), `${owner.pid}\n`);
    owner.once('exit', () => rmSync(pidFile(), { force: true }));
    const started = Date.now();
    await lockBackupExclusive(storage, backupDir, {
      backupId: 'T1',
      logger: createMemoryLogger(),
      waitSeconds: 10,
    });
    expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
  });

  it.each([
    ['a dead PID', () => `${deadPid()}\n`, 'which used backup T1 no longer exists'],
    ['garbage', () => 'not a pid\n', 'Bogus data in lock file'],
  ])('takes over a stale lock holding %s', async (_what, content, warning) => {
    writeFileSync(pidFile(), content());
    const logger = createMemoryLogger();
    await lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 });
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
    expect(
      logger.records.some(
        (record) => record.level === 'WARNING' && record.message.includes(warning),
      ),
    ).toBe(true);
  });

  it('treats an old empty lock file as stale', async () => {
    writeFileSync(pidFile(), '');
    const minuteAgo = new Date(Date.now() - 60_000);
    utimesSync(pidFile(), minuteAgo, minuteAgo);
    const logger = createMemoryLogger();
    await lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 });
    expect(readFileSync(pidFile(), 'utf8')).toBe(`${process.pid}\n`);
    expect(logger.records.map((record) => record.message)).toEqual([
      `Lock file "${pidFile()}" is empty`,
    ]);
  });

  it('probes liveness with signal 0 on the host of the lock file', async () => {
    const processes = (storage as Storage).processesAt(backupDir);
    expect(processes.ownPid).toBe(process.pid);
    expect(await processes.isAlive(process.pid)).toBe(true);
    expect(await processes.isAlive(1)).toBe(true);
    expect(await processes.isAlive(deadPid())).toBe(false);
  });
});

describe('shared lock', () => {
  it('accumulates live PIDs in backup_ro.pid, drops dead ones, and keeps exclusive lockers out', async () => {
    const reader = sleeper(30);
    writeFileSync(sharedFile(), `${reader.pid}\n${deadPid()}\n`);
    const logger = createMemoryLogger();
    await lockBackupShared(storage, backupDir, { backupId: 'T1', logger });
    expect(readFileSync(sharedFile(), 'utf8')).toBe(`${reader.pid}\n${process.pid}\n`);
    expect(existsSync(pidFile())).toBe(false);
    expect(existsSync(sharedFile() + 'tmp')).toBe(false);
    expect(heldBackupLock(storage, backupDir)).toEqual({ exclusive: false });

    await releaseBackupLock(storage, backupDir);
    expect(readFileSync(sharedFile(), 'utf8')).toBe(`${reader.pid}\n`);

    const error = await lockError(
      lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 }),
    );
    expect(error.message).toBe('Cannot lock backup T1 directory');
    expect(logger.records.map((record) => record.message)).toContain(
      `Process ${reader.pid} is using backup T1 in shared mode, and is still running`,
    );
    expect(existsSync(pidFile())).toBe(false);

    reader.kill('SIGKILL');
    await exited(reader);
    await lockBackupExclusive(storage, backupDir, { backupId: 'T1', logger, waitSeconds: 0 });
    expect(existsSync(sharedFile())).toBe(false);
  });

  it('removes backup_ro.pid when the last reader releases', async () => {
    const logger = createMemoryLogger();
    await lockBackupShared(storage, backupDir, { backupId: 'T1', logger });
    expect(readFileSync(sharedFile(), 'utf8')).toBe(`${process.pid}\n`);
    await releaseBackupLock(storage, backupDir, { backupId: 'T1', logger });
    expect(existsSync(sharedFile())).toBe(false);
    expect(existsSync(pidFile())).toBe(false);
  });
});

describe('release at process exit', () => {
  it('removes the exclusive and shared locks of a process that exits without releasing them', () => {
    const sharedDir = join(root, 'T2');
    mkdirSync(sharedDir);
    writeFileSync(join(sharedDir, 'backup_ro.pid'), `${process.pid}\n`);
    const script = join(root, 'holder.mjs');
    buildSync({
      stdin: {
        contents: `
          import { LocalStorage } from './core/storage/local/localStorage.js';
          import { lockBackupExclusive, lockBackupShared } from './core/catalog/locks.js';
          import { createMemoryLogger } from './core/log.js';
          import { readFileSync } from 'node:fs';
          const [exclusiveDir, sharedDir] = process.argv.slice(2);
          const storage = new LocalStorage();
          const logger = createMemoryLogger();
          await lockBackupExclusive(storage, exclusiveDir, { backupId: 'T1', logger });
          await lockBackupShared(storage, sharedDir, { backupId: 'T2', logger });
          process.stdout.write(readFileSync(exclusiveDir + '/backup.pid', 'utf8') + readFileSync(sharedDir + '/backup_ro.pid', 'utf8'));
          process.exit(0);
        `,
        resolveDir: join(import.meta.dirname, '..', '..'),
        loader: 'ts',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: script,
      logLevel: 'silent',
    });
    const result = spawnSync(process.execPath, [script, backupDir, sharedDir], {
      encoding: 'utf8',
    });
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0);
    const childPid = Number(result.stdout.split('\n')[0]);
    expect(childPid).toBeGreaterThan(0);
    expect(result.stdout).toBe(`${childPid}\n${process.pid}\n${childPid}\n`);
    expect(existsSync(pidFile())).toBe(false);
    expect(readFileSync(join(sharedDir, 'backup_ro.pid'), 'utf8')).toBe(`${process.pid}\n`);
    expect(existsSync(join(sharedDir, 'backup.pid'))).toBe(false);
  });
});
