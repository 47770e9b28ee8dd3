import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StrataError } from '../../errors.js';
import { parseControlFile } from '../../format/pgControl.js';
import { createMemoryLogger } from '../../log.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { checkIncrementalCompatibility, readDestinationControlFile } from './destination.js';
import type { IncrementalCheckInput } from './destination.js';

/** pg_control written by initdb of PostgreSQL 15 (core/format's fixture). */
const CONTROL = readFileSync(join(import.meta.dirname, '../../format/fixtures/pg_control.15'));
const SYSTEM_ID = parseControlFile(CONTROL).systemIdentifier;

let root: string;
let counter = 0;
const storage = new LocalStorage();

function pgdata(files: Record<string, string | Buffer> = {}): string {
  const dir = join(root, `pgdata-${counter++}`);
  mkdirSync(join(dir, 'global'), { recursive: true });
  writeFileSync(join(dir, 'global', 'pg_control'), CONTROL);
  for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
  return dir;
}

function input(dir: string, overrides: Partial<IncrementalCheckInput> = {}): IncrementalCheckInput {
  return {
    pgdata: dir,
    mode: 'checksum',
    systemIdentifier: SYSTEM_ID,
    partial: false,
    destroyAllOtherDbs: false,
    force: false,
    ...overrides,
  };
}

async function refusal(dir: string, overrides: Partial<IncrementalCheckInput> = {}) {
  const logger = createMemoryLogger();
  try {
    await checkIncrementalCompatibility(storage, input(dir, overrides), logger);
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return { message: (error as StrataError).message, records: logger.records };
  }
  throw new Error('expected a refusal');
}

/** A PID that no process has any more: a child that has already exited. */
function deadPid(): number {
  return spawnSync(process.execPath, ['-e', '']).pid!;
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-destination-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('checkIncrementalCompatibility', () => {
  it('accepts a stopped cluster of the same system, with a stale postmaster.pid', async () => {
    const dir = pgdata({ 'postmaster.pid': `${deadPid()}\n${'/x'}\n` });
    const result = await checkIncrementalCompatibility(storage, input(dir), createMemoryLogger());
    expect(result.cleanup).toBe(false);
    expect(result.control.systemIdentifier).toBe(SYSTEM_ID);
  });

  it('refuses a running postmaster, even with --force', async () => {
    const dir = pgdata({ 'postmaster.pid': `${process.pid}\n${'/x'}\n` });
    const { message, records } = await refusal(dir, { force: true });
    expect(message).toBe('Incremental restore is not allowed: Postmaster is running.');
    expect(records.map((r) => r.message)).toContain(
      `Postmaster with pid ${process.pid} is running in destination directory "${dir}"`,
    );
  });

  it('refuses another system identifier unless --force asks to wipe the directory', async () => {
    const dir = pgdata();
    const { message, records } = await refusal(dir, { systemIdentifier: 42n });
    expect(message).toBe('Incremental restore is not allowed: System ID mismatch.');
    expect(records.map((r) => r.message)).toContain(
      `Backup catalog was initialized for system id 42, but destination directory system id is ${SYSTEM_ID}`,
    );
    const forced = await checkIncrementalCompatibility(
      storage,
      input(dir, { systemIdentifier: 42n, force: true }),
      createMemoryLogger(),
    );
    expect(forced.cleanup).toBe(true);
  });

  it('refuses backup_label in lsn mode only', async () => {
    const dir = pgdata({ backup_label: 'START WAL LOCATION: 0/2000028\n' });
    expect((await refusal(dir, { mode: 'lsn' })).message).toBe(
      'Incremental restore is not allowed: Backup label exists. Cannot use incremental restore in LSN mode.',
    );
    await expect(
      checkIncrementalCompatibility(storage, input(dir), createMemoryLogger()),
    ).resolves.toMatchObject({ cleanup: false });
  });

  it('refuses a partial restore without --destroy-all-other-dbs', async () => {
    const dir = pgdata();
    expect((await refusal(dir, { partial: true })).message).toBe(
      'Incremental restore is not allowed: Partial incremental restore into non-empty PGDATA is forbidden.',
    );
    await expect(
      checkIncrementalCompatibility(
        storage,
        input(dir, { partial: true, destroyAllOtherDbs: true }),
        createMemoryLogger(),
      ),
    ).resolves.toMatchObject({ cleanup: false });
  });

  it('refuses a mangled postmaster.pid', async () => {
    const dir = pgdata({ 'postmaster.pid': 'garbage\n' });
    expect((await refusal(dir)).message).toBe(
      'Incremental restore is not allowed: We cannot be sure about the database state.',
    );
  });
});

describe('readDestinationControlFile', () => {
  it('falls back to pg_control.pbk.bak left by an interrupted incremental restore', async () => {
    const dir = pgdata();
    rmSync(join(dir, 'global', 'pg_control'));
    writeFileSync(join(dir, 'global', 'pg_control.pbk.bak'), CONTROL);
    expect((await readDestinationControlFile(storage, dir)).systemIdentifier).toBe(SYSTEM_ID);
    rmSync(join(dir, 'global', 'pg_control.pbk.bak'));
    await expect(readDestinationControlFile(storage, dir)).rejects.toThrow(
      `Could not read global/pg_control and global/pg_control.pbk.bak files in "${dir}"`,
    );
  });
});
