import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { postmasterState } from './postmasterPid.js';

describe('postmasterState', () => {
  let dir: string;
  const storage = new LocalStorage();
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-pid-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('is stopped without postmaster.pid and with the pid of a process that has exited', async () => {
    expect(await postmasterState(storage, dir)).toEqual({ kind: 'stopped' });
    const exited = spawnSync(process.execPath, [
      '-e',
      'process.stdout.write(String(process.pid))',
    ]).stdout.toString();
    writeFileSync(join(dir, 'postmaster.pid'), `${exited}\n${dir}\n1700000000\n5432\n`);
    expect(await postmasterState(storage, dir)).toEqual({ kind: 'stopped' });
  });

  it('is running when the first line names a live process', async () => {
    writeFileSync(join(dir, 'postmaster.pid'), `${process.pid}\n${dir}\n`);
    expect(await postmasterState(storage, dir)).toEqual({ kind: 'running', pid: process.pid });
  });

  it('is mangled when the first line is not a process id', async () => {
    writeFileSync(join(dir, 'postmaster.pid'), 'garbage\n');
    expect(await postmasterState(storage, dir)).toEqual({
      kind: 'mangled',
      pidFile: join(dir, 'postmaster.pid'),
    });
  });
});
