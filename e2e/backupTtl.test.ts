import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseBackupControl } from '../core/catalog/backupControl.js';
import { formatUtcTime } from '../core/catalog/time.js';
import { createCatalogCluster, type CatalogCluster } from './catalogCluster.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

const major = 15;
const DAY_SEC = 24 * 60 * 60;
/** Times printed by `show` and the messages are local: UTC keeps them comparable. */
const env = { TZ: 'UTC' };

/**
 * `backup --ttl` / `--expire-time` (cli-behaviour.md §2.2, §5.4 step 16): the finished backup is
 * pinned like `set-backup` pins (expire-time = recovery-time + ttl), `show` prints the pin, and
 * retention — `delete --delete-expired` and the backup's own `--delete-expired` — keeps it.
 */
describe('backup --ttl and --expire-time on a real server', () => {
  let setup: CatalogCluster;
  let catalog: string;
  let connection: string[];
  const instance = 'pinned';

  function control(id: string) {
    const path = join(catalog, 'backups', instance, id, 'backup.control');
    const text = readFileSync(path, 'utf8');
    return { text, meta: parseBackupControl(text, path) };
  }

  function backupIds(): string[] {
    return readdirSync(join(catalog, 'backups', instance))
      .filter((name) => name !== 'pg_probackup.conf')
      .sort();
  }

  async function backup(extra: string[]): Promise<{ id: string; stderr: string }> {
    const result = await setup.backup(['-b', 'FULL', '--stream', '--no-sync', ...extra], { env });
    return { id: completedBackupId(result.stderr), stderr: result.stderr };
  }

  async function showJson(id: string): Promise<Record<string, unknown>> {
    const shown = await strata(
      ['show', '-B', catalog, '--instance', instance, '-i', id, '--format=json'],
      { env },
    );
    const parsed = JSON.parse(shown.stdout) as { backups: Record<string, unknown>[] }[];
    return parsed[0]!.backups[0]!;
  }

  beforeAll(async () => {
    setup = await createCatalogCluster({ major, instance });
    ({ catalog, connection } = setup);
  });

  afterAll(async () => {
    await setup?.destroy();
  });

  it('--ttl=1d pins until recovery-time + 1 day; show prints it; retention keeps it', async () => {
    const pinned = await backup(['--ttl=1d']);
    const { meta, text } = control(pinned.id);
    expect(meta.status).toBe('OK');
    expect(meta.recoveryTime).toBeGreaterThan(0);
    expect(meta.expireTime).toBe(meta.recoveryTime + DAY_SEC);
    const expireText = formatUtcTime(meta.recoveryTime + DAY_SEC);
    expect(text).toContain(`expire-time = '${expireText}'`);
    expect(pinned.stderr).toContain(`INFO: Backup ${pinned.id} is pinned until '${expireText}'`);
    // pg_probackup pins before validating: the pin message precedes the validation.
    expect(pinned.stderr.indexOf('is pinned until')).toBeLessThan(
      pinned.stderr.indexOf(`INFO: Validating backup ${pinned.id}`),
    );

    const plainShow = await strata(
      ['show', '-B', catalog, '--instance', instance, '-i', pinned.id],
      { env },
    );
    expect(plainShow.stdout).toContain(`expire-time = '${expireText}'`);
    expect((await showJson(pinned.id))['expire-time']).toBe(expireText);

    const unpinned = await backup([]);
    expect(control(unpinned.id).meta.expireTime).toBe(0);
    expect(control(unpinned.id).text).not.toContain('expire-time');

    const purge = await runStrata(
      [
        'delete',
        '-B',
        catalog,
        '--instance',
        instance,
        '--delete-expired',
        '--retention-redundancy=1',
      ],
      { env },
    );
    expect(purge.code, purge.stderr).toBe(0);
    expect(purge.stderr).toContain('INFO: There are no backups to delete by retention policy');
    expect(backupIds()).toEqual([pinned.id, unpinned.id].sort());

    // The backup's own retention run (§5.4 step 18) purges the unpinned FULL, keeps the pinned one.
    const latest = await backup(['--delete-expired', '--retention-redundancy=1']);
    expect(latest.stderr).toContain('INFO: Purging finished');
    expect(backupIds()).toEqual([pinned.id, latest.id].sort());
    expect(control(pinned.id).meta.expireTime).toBe(meta.recoveryTime + DAY_SEC);
  });

  it("--expire-time='2030-01-01 00:00:00+00' pins until that moment", async () => {
    const pinned = await backup(['--expire-time=2030-01-01 00:00:00+00']);
    const { meta, text } = control(pinned.id);
    expect(meta.status).toBe('OK');
    expect(meta.expireTime).toBe(Date.UTC(2030, 0, 1) / 1000);
    expect(text).toContain("expire-time = '2030-01-01 00:00:00+00'");
    expect(pinned.stderr).toContain(
      `INFO: Backup ${pinned.id} is pinned until '2030-01-01 00:00:00+00'`,
    );
    expect((await showJson(pinned.id))['expire-time']).toBe('2030-01-01 00:00:00+00');
    const purge = await runStrata(
      [
        'delete',
        '-B',
        catalog,
        '--instance',
        instance,
        '--delete-expired',
        '--retention-redundancy=1',
      ],
      { env },
    );
    expect(purge.code, purge.stderr).toBe(0);
    expect(backupIds()).toContain(pinned.id);
  });

  it('refuses bad values with pg_probackup errors before taking a backup', async () => {
    const before = backupIds();
    const base = ['backup', '-B', catalog, '--instance', instance, '-b', 'FULL', '--stream'];
    const cases: [string[], string][] = [
      [['--ttl=1week'], "ERROR: Option --ttl should be a 64bit signed integer: '1week'"],
      [
        ['--expire-time=next tuesday'],
        "ERROR: Invalid value for '--expire-time' option: 'next tuesday'",
      ],
      [
        ['--ttl=1d', '--expire-time=2030-01-01'],
        "ERROR: You cannot specify '--expire-time' and '--ttl' options together",
      ],
    ];
    for (const [extra, message] of cases) {
      const result = await runStrata([...base, ...connection, ...extra], { env });
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`${message}\n`);
    }
    expect(backupIds()).toEqual(before);
  });
});
