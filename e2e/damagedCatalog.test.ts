import { chmodSync, cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../core/testing/cluster.js';
import { probackupFixtureDir } from '../core/testing/pgBinaries.js';
import { runStrata } from './strataCli.js';
import type { CliResult } from './strataCli.js';

/**
 * A damaged control file ends a command with one clear ERROR naming the file and the line, never
 * a stack trace, and the other backups of the catalog stay usable: show, validate, restore and
 * delete on a copy of the pg_probackup 2.5.16 fixture whose files were damaged one at a time.
 */

const instance = 'demo';

function expectOneClearError(result: CliResult, ...fragments: RegExp[]): void {
  expect(result.code, result.stderr).toBe(1);
  const errors = result.stderr.split('\n').filter((line) => line.startsWith('ERROR: '));
  expect(errors, result.stderr).toHaveLength(1);
  for (const fragment of fragments) expect(errors[0]).toMatch(fragment);
  expect(result.stderr).not.toMatch(/\n\s+at /);
}

describe('damaged catalog files', () => {
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let restores = 0;

  function path(...parts: string[]): string {
    return join(catalog, 'backups', instance, ...parts);
  }

  /** Replaces a file of the copy (the fixture's files are read-only). */
  function damage(file: string, change: (text: string) => string): void {
    chmodSync(file, 0o600);
    writeFileSync(file, change(readFileSync(file, 'utf8')));
  }

  async function restoreWorks(backupId: string): Promise<void> {
    const target = join(scratch.path, `restore-${restores++}`);
    const result = await runStrata([
      'restore',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      backupId,
      '-D',
      target,
      '--no-sync',
    ]);
    expect(result.code, result.stderr).toBe(0);
    expect(existsSync(join(target, 'global', 'pg_control'))).toBe(true);
  }

  /** A copy of part of the fixture whose directories can be changed and removed. */
  function copyFixture(relative: string): void {
    const target = join(catalog, relative);
    cpSync(join(probackupFixtureDir, 'catalog', relative), target, { recursive: true });
    const makeWritable = (dir: string) => {
      chmodSync(dir, 0o700);
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) makeWritable(join(dir, entry.name));
      }
    };
    makeWritable(target);
  }

  beforeAll(() => {
    scratch = makeTempDir('strata-e2e-damaged-');
    catalog = join(scratch.path, 'catalog');
    copyFixture('');
  });

  afterAll(() => scratch?.remove());

  it('a truncated backup.control: the backup shows as UNKNOWN with a warning, the others work', async () => {
    damage(path('TP11RH', 'backup.control'), (text) =>
      text.slice(0, text.indexOf("start-time = '") + 20),
    );
    const show = await runStrata(['show', '-B', catalog, '--instance', instance]);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stderr).toMatch(/WARNING: .*TP11RH\/backup\.control.*line 19/);
    expect(show.stdout).toMatch(/TP11RH .* UNKNOWN/);
    expect(show.stdout).toMatch(/TP11R6 .* OK/);
    const validate = await runStrata([
      'validate',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      'TP11R6',
    ]);
    expect(validate.code, validate.stderr).toBe(0);
    await restoreWorks('TP11R6');
    // The damaged backup can still be deleted, with its descendant TP11RT.
    const deleted = await runStrata([
      'delete',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      'TP11RH',
    ]);
    expect(deleted.code, deleted.stderr).toBe(0);
    expect(readdirSync(path()).sort()).toEqual(['TP11R6', 'pg_probackup.conf']);
    copyFixture(join('backups', instance, 'TP11RH'));
    copyFixture(join('backups', instance, 'TP11RT'));
  });

  it('a damaged backup_content.control: restore of that backup names the file and the line; its parent restores', async () => {
    // Without content-crc the list is parsed, and the garbled line is what gets reported.
    damage(path('TP11RT', 'backup.control'), (text) => text.replace(/content-crc = \d+\n/, ''));
    damage(path('TP11RT', 'backup_content.control'), (text) => {
      const lines = text.split('\n');
      lines[41] = lines[41]!.replace('"size":"', '"size":oops"');
      return lines.join('\n');
    });
    const target = join(scratch.path, 'restore-damaged-list');
    const restore = await runStrata([
      'restore',
      '-B',
      catalog,
      '--instance',
      instance,
      '-i',
      'TP11RT',
      '-D',
      target,
    ]);
    expectOneClearError(restore, /TP11RT/);
    expect(restore.stderr).toMatch(
      /backup_content\.control.*line 42|line 42.*backup_content\.control/,
    );
    await restoreWorks('TP11RH');
  });

  it('a damaged pg_probackup.conf: commands that need it stop with the file and line; show still lists', async () => {
    const config = path('pg_probackup.conf');
    const original = readFileSync(config, 'utf8');
    damage(config, (text) => `${text}retention-window = = 7\n`);
    for (const args of [
      ['delete', '--delete-expired'],
      ['show-config'],
      ['restore', '-D', join(scratch.path, 'never'), '-i', 'TP11R6'],
    ]) {
      const [command, ...rest] = args as [string, ...string[]];
      const result = await runStrata([command, '-B', catalog, '--instance', instance, ...rest]);
      expectOneClearError(result, /pg_probackup\.conf/, /line 5|5/);
    }
    const show = await runStrata(['show', '-B', catalog, '--instance', instance, '--format=json']);
    expect(show.code, show.stderr).toBe(0);
    expect(JSON.parse(show.stdout)[0].backups).toHaveLength(3);
    writeFileSync(config, original);
  });

  it('a damaged .history: show --archive warns and reports, WAL purge refuses, restore of timeline 1 works', async () => {
    const history = join(catalog, 'wal', instance, '00000002.history');
    writeFileSync(history, '1\t0/1800000\tok\nthis is not a history line\n');
    const show = await runStrata(['show', '-B', catalog, '--instance', instance, '--archive']);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stderr).toMatch(
      /WARNING: Syntax error in timeline history file 00000002\.history, line 2/,
    );
    expect(show.stdout).toContain("ARCHIVE INSTANCE 'demo'");
    const walBefore = readdirSync(join(catalog, 'wal', instance)).length;
    const purge = await runStrata([
      'delete',
      '-B',
      catalog,
      '--instance',
      instance,
      '--delete-wal',
    ]);
    expectOneClearError(purge, /00000002\.history, line 2/, /wal\/demo\/00000002\.history/);
    expect(readdirSync(join(catalog, 'wal', instance))).toHaveLength(walBefore);
    const timeline2 = await runStrata([
      'restore',
      '-B',
      catalog,
      '--instance',
      instance,
      '-D',
      join(scratch.path, 'never-tli2'),
      '--recovery-target-timeline=2',
    ]);
    expectOneClearError(timeline2, /00000002\.history/);
    await restoreWorks('TP11R6');
  });
});
