import { readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TestCluster, makeTempDir } from '../../core/testing/cluster.js';
import { fingerprintCluster, generateData } from '../../core/testing/data.js';
import type { ClusterFingerprint } from '../../core/testing/data.js';
import { completedBackupId, strata } from '../strataCli.js';
import { launchChromium, saveScreenshot, startStrataUi } from './uiHarness.js';
import type { RunningUi } from './uiHarness.js';

const MAJOR = 17;
const INSTANCE = 'main';
const DATABASES = ['sales', 'hr', 'inventory'];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The part of a fingerprint that belongs to the given databases. */
function subset(fingerprint: ClusterFingerprint, databases: string[]): ClusterFingerprint {
  return Object.fromEntries(
    Object.entries(fingerprint).filter(([key]) => databases.some((db) => key.startsWith(`${db}.`))),
  );
}

interface ShownBackup {
  id: string;
  'backup-mode': string;
  status: string;
  'data-bytes': number;
  'start-lsn': string;
  'stop-lsn': string;
}

/**
 * The desktop app's renderer in headless Chromium against `strata ui` on a real catalog: a
 * PostgreSQL 17 cluster archiving into it, data in several databases, a FULL and a DELTA backup,
 * and commits at known times. Every screen is checked against the engine's own answers (`show`)
 * or against a restored server's data, and saved as a screenshot for the README.
 */
describe('desktop app in a browser (strata ui)', () => {
  let cluster: TestCluster;
  let scratch: ReturnType<typeof makeTempDir>;
  let catalog: string;
  let ui: RunningUi;
  let browser: Browser;
  let page: Page;
  let fullId: string;
  let deltaId: string;
  let uiBackupId: string;
  let targetTime: string;
  let fingerprint: ClusterFingerprint;
  const servers: TestCluster[] = [];
  /** Uncaught errors and console errors of the page: any one fails the test that was running. */
  const pageErrors: string[] = [];

  async function commitBatch(batch: string): Promise<void> {
    await cluster.query(
      'postgres',
      'INSERT INTO ledger SELECT g, $1 FROM generate_series(1, 100) g',
      [batch],
    );
  }

  async function switchAndWaitArchived(server: TestCluster): Promise<void> {
    const last = (
      await server.query<{ name: string }>(
        'postgres',
        'SELECT pg_walfile_name(pg_switch_wal()) AS name',
      )
    )[0]!.name;
    for (let attempt = 0; attempt < 600; attempt++) {
      const archived = (
        await server.query<{ last: string | null }>(
          'postgres',
          'SELECT last_archived_wal AS last FROM pg_stat_archiver',
        )
      )[0]!.last;
      if (archived !== null && archived >= last) return;
      await sleep(100);
    }
    throw new Error(`WAL segment ${last} was not archived within 60 s`);
  }

  async function backup(mode: 'FULL' | 'DELTA'): Promise<string> {
    const result = await strata([
      'backup',
      '-B',
      catalog,
      '--instance',
      INSTANCE,
      '-b',
      mode,
      '--stream',
      ...cluster.connectionArgs(),
    ]);
    return completedBackupId(result.stderr);
  }

  async function showBackups(): Promise<ShownBackup[]> {
    const result = await strata(['show', '-B', catalog, '--instance', INSTANCE, '--format=json']);
    return (JSON.parse(result.stdout) as Array<{ backups: ShownBackup[] }>)[0]!.backups;
  }

  /** Waits until the restored server has finished recovery (promoted) and answers queries. */
  async function waitPromoted(server: TestCluster): Promise<void> {
    for (let attempt = 0; attempt < 600; attempt++) {
      const [state] = await server.query<{ recovering: boolean }>(
        'postgres',
        'SELECT pg_is_in_recovery() AS recovering',
      );
      if (!state!.recovering) return;
      await sleep(100);
    }
    throw new Error('the restored server did not finish recovery within 60 s');
  }

  async function ledgerBatches(server: TestCluster): Promise<string> {
    const [row] = await server.query<{ batches: string }>(
      'postgres',
      "SELECT string_agg(DISTINCT batch, ',' ORDER BY batch) AS batches FROM ledger",
    );
    return row!.batches;
  }

  async function openTab(view: string): Promise<void> {
    await page.click(`[data-testid=tab-${view}]`);
    await page.waitForSelector(`[data-testid=view-${view}]`);
  }

  /** A fresh wizard at step 1 (the Restore tab starts one when entered from another screen). */
  async function newRestore(): Promise<void> {
    await openTab('backups');
    await openTab('restore');
    await page.waitForSelector('[data-testid=restore-wizard][data-step="1"]');
  }

  /** Goes on to the review step and checks the command line it shows. */
  async function reviewRestore(expectedInCli: string[]): Promise<string> {
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=restore-review]');
    const cli = (await page.locator('[data-testid=restore-cli]').textContent())!;
    for (const part of expectedInCli) expect(cli).toContain(part);
    return cli;
  }

  async function startAndWaitRestore(): Promise<void> {
    await page.click('[data-testid=restore-start]');
    await page.waitForSelector(
      '[data-testid=restore-run][data-state=succeeded], [data-testid=restore-run][data-state=failed]',
      {
        timeout: 120_000,
      },
    );
    const state = await page.getAttribute('[data-testid=restore-run]', 'data-state');
    if (state !== 'succeeded') {
      throw new Error(
        `restore failed: ${await page.locator('[data-testid=restore-run]').textContent()}`,
      );
    }
  }

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-ui-');
    catalog = join(scratch.path, 'catalog');
    cluster = await TestCluster.create({
      major: MAJOR,
      // 1 MB segments: the archive holds many segments for the timeline view to draw.
      initdbArgs: ['--wal-segsize=1'],
      archiveTo: { backupPath: catalog, instance: INSTANCE },
    });
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', INSTANCE, '-D', cluster.dataDir]);
    await strata(['set-config', '-B', catalog, '--instance', INSTANCE, '--retention-redundancy=3']);
    await cluster.start();
    await generateData(cluster, { databases: DATABASES, rowsPerTable: 3000 });
    await cluster.query('postgres', 'CREATE TABLE ledger (n int, batch text)');
    await commitBatch('0-base');
    fullId = await backup('FULL');
    await commitBatch('1-after-full');
    await cluster.query('sales', 'UPDATE accounts SET balance = balance + 1 WHERE id % 10 = 0');
    deltaId = await backup('DELTA');
    fingerprint = await fingerprintCluster(cluster);
    await commitBatch('2-a');
    // A whole second after batch a and before batch b, so a target time with second precision
    // falls strictly between the two commits.
    await sleep(1100);
    targetTime = (
      await cluster.query<{ t: string }>(
        'postgres',
        "SELECT to_char(date_trunc('second', clock_timestamp() AT TIME ZONE 'UTC'), 'YYYY-MM-DD HH24:MI:SS') || '+00' AS t",
      )
    )[0]!.t;
    await sleep(1100);
    await commitBatch('3-b');
    await switchAndWaitArchived(cluster);

    ui = await startStrataUi();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    // Console errors include Content-Security-Policy violations: the build must need no exception.
    page.on('console', (message) => {
      if (message.type() === 'error') pageErrors.push(message.text());
    });
    await page.goto(ui.url);
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.stop();
    for (const server of servers) await server.destroy();
    await cluster?.destroy();
    scratch?.remove();
  });

  afterEach(() => {
    expect(pageErrors).toEqual([]);
  });

  it('opens a catalog by its path and lists its instance', async () => {
    await page.waitForSelector('[data-testid=view-catalogs]');
    await page.fill('[data-testid=catalog-path]', catalog);
    await page.click('[data-testid=open-catalog]');
    const row = page.locator(`[data-testid=instance-row-${INSTANCE}]`);
    await row.waitFor();
    const text = (await row.textContent())!;
    expect(text).toContain('17');
    expect(text).toContain(deltaId);
    expect(text).toContain('redundancy 3');
    expect(await row.locator('[data-testid=instance-backup-count]').textContent()).toBe('2');
    const systemIdentifier = (
      await cluster.query<{ id: string }>(
        'postgres',
        'SELECT system_identifier::text AS id FROM pg_control_system()',
      )
    )[0]!.id;
    expect(text).toContain(systemIdentifier);
    await saveScreenshot(page, 'catalogs');
  });

  it('lists the backups `show` reports, with exact sizes on hover, sortable and filterable', async () => {
    await page.click(`[data-testid=instance-row-${INSTANCE}]`);
    await page.waitForSelector(`[data-testid=backup-row-${fullId}]`);
    const shown = await showBackups();
    const rows = page.locator('[data-testid=backups-table] tbody tr[data-testid^=backup-row-]');
    expect(await rows.count()).toBe(shown.length);
    // Newest first, as `show` lists them.
    const ids = await rows.evaluateAll((elements) =>
      elements.map((element) => element.getAttribute('data-testid')),
    );
    expect(ids).toEqual(shown.map((backup) => `backup-row-${backup.id}`));
    for (const backup of shown) {
      const row = page.locator(`[data-testid=backup-row-${backup.id}]`);
      expect(await row.getAttribute('data-status')).toBe(backup.status);
      expect(await row.textContent()).toContain(backup['backup-mode']);
      expect(await row.textContent()).toContain(backup['start-lsn']);
      expect(await row.textContent()).toContain(backup['stop-lsn']);
      // The Data column: human units shown, the exact byte count from backup.control on hover.
      const dataCell = row.locator('[data-testid=cell-dataBytes] span');
      expect(await dataCell.getAttribute('title')).toBe(
        `${backup['data-bytes'].toLocaleString('en-US')} bytes`,
      );
    }

    await page.click('[data-testid=column-id]');
    const ascending = await rows.evaluateAll((elements) =>
      elements.map((element) => element.getAttribute('data-testid')),
    );
    expect(ascending).toEqual([`backup-row-${fullId}`, `backup-row-${deltaId}`]);
    await page.selectOption('[data-testid=filter-mode]', 'DELTA');
    expect(await rows.count()).toBe(1);
    await page.selectOption('[data-testid=filter-mode]', '');
    // The global filter matches every column: the DELTA's ID appears only in its own row (the
    // FULL's ID would match the DELTA's parent too).
    await page.fill('[data-testid=backups-search]', deltaId);
    expect(await rows.count()).toBe(1);
    await page.fill('[data-testid=backups-search]', '');

    await page.click(`[data-testid=select-backup-${fullId}]`);
    await page.click(`[data-testid=select-backup-${deltaId}]`);
    expect(await page.textContent('[data-testid=backups-count]')).toContain('2 selected');
    await page.click(`[data-testid=select-all-backups]`);
    expect(await page.textContent('[data-testid=backups-count]')).toBe('2 of 2 backups');
    await page.click(`[data-testid=backup-row-${deltaId}]`);
    const details = page.locator(`[data-testid=backup-details][data-backup-id=${deltaId}]`);
    await details.waitFor();
    expect(await details.locator('[data-testid=details-chain]').textContent()).toBe(
      `${fullId} → ${deltaId}`,
    );
    const databases = (await details.locator('[data-testid=backup-databases]').textContent())!;
    for (const name of ['postgres', ...DATABASES]) expect(databases).toContain(name);
    expect(await details.locator('[data-testid=files-range]').textContent()).toMatch(
      /^1–100 of \d{3,}$/,
    );
    await page.fill('[data-testid=files-filter]', 'pg_control');
    await page.click('[data-testid=backup-files] button[type=submit]');
    await page.waitForSelector('[data-testid=files-range]:text-is("1–1 of 1")');
    await saveScreenshot(page, 'backups');
  });

  it('draws the chain: the FULL backup and the DELTA on top of it', async () => {
    await openTab('chains');
    const chain = page.locator(`[data-testid=chain-${fullId}]`);
    await chain.waitFor();
    expect(await chain.locator('[data-testid^=chain-node-]').count()).toBe(2);
    expect(await chain.locator(`[data-testid=chain-node-${fullId}]`).textContent()).toContain(
      'FULL',
    );
    expect(await chain.locator(`[data-testid=chain-node-${deltaId}]`).textContent()).toContain(
      'DELTA',
    );
    expect(await chain.locator('path.chain-edge').count()).toBe(1);
    await page.click(`[data-testid=chain-node-${fullId}]`);
    await page.waitForSelector(`[data-testid=backup-details][data-backup-id=${fullId}]`);
    await saveScreenshot(page, 'chains');
  });

  it('draws the WAL timeline with both backups and the span a restore can reach', async () => {
    await openTab('timeline');
    await page.waitForSelector('[data-testid=timeline-lane-1]');
    expect(await page.locator('[data-testid^=timeline-backup-]').count()).toBe(2);
    await page.waitForSelector(`[data-testid=timeline-backup-${fullId}]`);
    expect(await page.locator('[data-testid=reachable-1]').count()).toBe(1);
    expect(await page.locator('[data-testid=gap-1]').count()).toBe(0);
    expect(await page.textContent('[data-testid=timeline-row-1]')).toContain(`${fullId}`);
    // A click on the lane picks that LSN as a restore target.
    const lane = await page.locator('[data-testid=archived-1]').boundingBox();
    await page.mouse.click(lane!.x + lane!.width - 4, lane!.y + lane!.height / 2);
    await page.waitForSelector('[data-testid=timeline-pick]');
    expect(await page.textContent('[data-testid=picked-lsn]')).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
    expect(await page.textContent('[data-testid=timeline-pick]')).toContain(
      'a restore can stop here',
    );
  });

  it('takes a DELTA backup from the backup dialog, showing the command line and progress', async () => {
    await page.click('[data-testid=open-backup-dialog]');
    await page.waitForSelector('[data-testid=backup-dialog]');
    await page.click('[data-testid=backup-mode-DELTA]');
    await page.fill('[data-testid=backup-host]', '127.0.0.1');
    await page.fill('[data-testid=backup-port]', String(cluster.port));
    await page.fill('[data-testid=backup-user]', 'postgres');
    await page.fill('[data-testid=backup-database]', 'postgres');
    await page.fill('[data-testid=backup-note]', 'from the UI');
    const cli = (await page.textContent('[data-testid=backup-cli]'))!;
    expect(cli).toBe(
      `strata backup -B ${catalog} --instance=${INSTANCE} -b DELTA --stream --note='from the UI' -h 127.0.0.1 -p ${cluster.port} -U postgres -d postgres`,
    );
    await saveScreenshot(page, 'backup-dialog');
    await page.click('[data-testid=backup-start]');
    await page.waitForSelector('[data-testid=backup-job][data-state=succeeded]', {
      timeout: 120_000,
    });
    await page.click('[data-testid=backup-dialog] button:has-text("Close")');
    const shown = await showBackups();
    expect(shown).toHaveLength(3);
    uiBackupId = shown[0]!.id;
    expect(shown[0]).toMatchObject({ 'backup-mode': 'DELTA', status: 'OK' });
    await openTab('backups');
    await page.waitForSelector(`[data-testid=backup-row-${uiBackupId}][data-status=OK]`);
    expect(await page.textContent(`[data-testid=backup-row-${uiBackupId}]`)).toContain(
      'from the UI',
    );
  });

  it('validates a backup after a confirmation that shows the command line', async () => {
    await page.click(`[data-testid=select-backup-${deltaId}]`);
    await page.click('[data-testid=action-validate]');
    await page.waitForSelector('[data-testid=action-dialog-validate]');
    expect(await page.textContent('[data-testid=action-cli-0]')).toBe(
      `strata validate -B ${catalog} --instance=${INSTANCE} -i ${deltaId}`,
    );
    await page.click('[data-testid=action-confirm]');
    await page.waitForSelector('[data-testid=action-jobs] tr[data-state=succeeded]', {
      timeout: 120_000,
    });
    await saveScreenshot(page, 'validate-dialog');
    await page.click('[data-testid=action-dialog-validate] button:has-text("Close")');
    await page.click(`[data-testid=select-backup-${deltaId}]`);

    await page.click(`[data-testid=select-backup-${fullId}]`);
    await page.click('[data-testid=action-delete]');
    const dialog = page.locator('[data-testid=action-dialog-delete]');
    await dialog.waitFor();
    // Deleting the FULL backup takes the incrementals built on it too: the dialog says which.
    const text = (await dialog.textContent())!;
    expect(text).toContain(deltaId);
    expect(text).toContain(uiBackupId);
    await dialog.locator('button:has-text("Cancel")').click();
    await page.click(`[data-testid=select-backup-${fullId}]`);
    expect(await showBackups()).toHaveLength(3);
  });

  it('restores to a point in time typed in the wizard; the started server holds exactly the commits before it', async () => {
    await newRestore();
    const destination = join(scratch.path, 'pitr');
    await page.fill('[data-testid=restore-destination]', destination);
    await page.click('[data-testid=wizard-next]');
    await page.click('[data-testid=target-time]');
    await page.fill('[data-testid=target-time-value]', targetTime);
    await saveScreenshot(page, 'restore-target');
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=plan-wal-ok]');
    // Strata proposes the newest backup that ends before the target: the DELTA on its FULL.
    const planned = await page
      .locator('[data-testid=plan-chain] tbody tr')
      .evaluateAll((rows) => rows.map((row) => row.getAttribute('data-testid')));
    expect(planned).toEqual([`plan-backup-${fullId}`, `plan-backup-${deltaId}`]);
    await saveScreenshot(page, 'restore-plan');
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=restore-databases]');
    await reviewRestore([
      `strata restore -B ${catalog} --instance=${INSTANCE} -D ${destination}`,
      `--recovery-target-time='${targetTime}'`,
      '--recovery-target-action=promote',
    ]);
    await saveScreenshot(page, 'restore-review');
    await startAndWaitRestore();
    expect(await page.textContent('[data-testid=restore-result]')).toContain(
      `pg_ctl -D ${destination} start`,
    );
    await saveScreenshot(page, 'restore-result');

    // Started with its configuration as restored: archive_command still pushes into this catalog,
    // so the new timeline the promotion opens appears in the archive (the timeline test below).
    const server = await TestCluster.create({ major: MAJOR, dataDir: destination });
    servers.push(server);
    await server.start();
    await waitPromoted(server);
    expect(await ledgerBatches(server)).toBe('0-base,1-after-full,2-a');
    const restored = await fingerprintCluster(server);
    expect(subset(restored, DATABASES)).toEqual(subset(fingerprint, DATABASES));
    for (let segment = 0; segment < 4; segment++) {
      await server.query(
        'postgres',
        "INSERT INTO ledger SELECT g, 'tl2' FROM generate_series(1, 2000) g",
      );
      await switchAndWaitArchived(server);
    }
    await server.stop();
  });

  it('restores only the ticked databases; the others start empty and are dropped', async () => {
    await newRestore();
    const destination = join(scratch.path, 'partial');
    await page.selectOption('[data-testid=restore-backup]', deltaId);
    await page.fill('[data-testid=restore-destination]', destination);
    await page.click('[data-testid=wizard-next]');
    await page.click('[data-testid=target-immediate]');
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=plan-wal-ok]');
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=restore-databases]');
    const listed = await page
      .locator('[data-testid=restore-databases] tbody tr td:nth-child(2)')
      .evaluateAll((cells) => cells.map((cell) => cell.textContent));
    expect([...listed].sort()).toEqual(['hr', 'inventory', 'postgres', 'sales']);
    await page.click('[data-testid=restore-db-hr]');
    await page.click('[data-testid=restore-db-inventory]');
    expect(await page.textContent('[data-testid=restore-databases-summary]')).toContain(
      '2 of 4 databases',
    );
    await saveScreenshot(page, 'restore-partial');
    await reviewRestore([
      `-i ${deltaId}`,
      '--recovery-target=immediate',
      '--db-include=postgres',
      '--db-include=sales',
    ]);
    expect(await page.textContent('[data-testid=review-databases]')).toBe('postgres, sales');
    await startAndWaitRestore();
    expect(await page.textContent('[data-testid=restore-result]')).toContain('DROP DATABASE');

    const server = await TestCluster.create({
      major: MAJOR,
      dataDir: destination,
      startSettings: { archive_mode: 'off' },
    });
    servers.push(server);
    await server.start();
    await waitPromoted(server);
    for (const excluded of ['hr', 'inventory']) {
      await expect(server.query(excluded, 'SELECT count(*) FROM accounts')).rejects.toThrow();
      await server.query('postgres', `DROP DATABASE ${excluded}`);
    }
    const restored = await fingerprintCluster(server);
    expect(subset(restored, ['sales'])).toEqual(subset(fingerprint, ['sales']));
    expect(await ledgerBatches(server)).toBe('0-base,1-after-full');
    await server.stop();
  });

  it('draws the fork of the restored server’s timeline and a lost segment in red', async () => {
    const walDir = join(catalog, 'wal', INSTANCE);
    const timeline2 = readdirSync(walDir)
      .filter((name) => /^00000002[0-9A-F]{16}$/.test(name))
      .sort();
    expect(timeline2.length).toBeGreaterThanOrEqual(4);
    // A segment near the end of timeline 2 goes missing, as when an archive loses a file.
    const lost = timeline2[timeline2.length - 2]!;
    rmSync(join(walDir, lost));
    await page.click('button:has-text("Refresh")');
    await openTab('timeline');
    await page.waitForSelector('[data-testid=timeline-lane-2]');
    await page.waitForSelector('[data-testid=fork-2]');
    // The refresh reads the archive again: the lane turns DEGRADED once it has.
    await page.waitForSelector('[data-testid=timeline-lane-2][data-status=DEGRADED]');
    expect(await page.locator('[data-testid=gap-2]').count()).toBe(1);
    expect(await page.textContent('[data-testid=timeline-row-2]')).toContain(lost);
    // The reachable span of timeline 2 starts at the fork and stops at the lost segment.
    const reach = await page.locator('[data-testid=reachable-2]').boundingBox();
    const gap = await page.locator('[data-testid=gap-2]').boundingBox();
    expect(reach!.x + reach!.width).toBeCloseTo(gap!.x, 0);
    await page.click(`[data-testid=timeline-backup-${deltaId}] rect`);
    await page.waitForSelector('[data-testid=timeline-pick]');
    await page.mouse.move(0, 0);
    await saveScreenshot(page, 'timeline');
  });

  it('lists the jobs with their state, command line and log, and a failure in plain words', async () => {
    // A backup from a port nothing listens on fails; the dialog and the jobs panel say why.
    await page.click('[data-testid=open-backup-dialog]');
    await page.click('[data-testid=backup-mode-FULL]');
    await page.fill('[data-testid=backup-host]', '127.0.0.1');
    await page.fill('[data-testid=backup-port]', '1');
    await page.click('[data-testid=backup-start]');
    await page.waitForSelector('[data-testid=backup-job][data-state=failed]', { timeout: 120_000 });
    expect(await page.textContent('[data-testid=backup-job] .bad')).toMatch(
      /127\.0\.0\.1|connect|refused/i,
    );
    await page.click('[data-testid=backup-dialog] button:has-text("Close")');
    await openTab('jobs');
    const rows = page.locator('[data-testid=jobs-table] tbody tr[data-kind]');
    const kinds = await rows.evaluateAll((elements) =>
      elements.map(
        (element) => `${element.getAttribute('data-kind')}:${element.getAttribute('data-state')}`,
      ),
    );
    expect(kinds.sort()).toEqual([
      'backup:failed',
      'backup:succeeded',
      'restore:succeeded',
      'restore:succeeded',
      'validate:succeeded',
    ]);
    await rows.filter({ hasText: 'estore' }).first().click();
    await page.waitForSelector('[data-testid=job-details]');
    expect(await page.textContent('[data-testid=job-cli]')).toContain('strata restore');
    expect(await page.textContent('[data-testid=job-log]')).toContain('completed');
    await page.click('[data-testid=jobs-table] tbody tr[data-state=failed]');
    await page.waitForSelector('[data-testid=job-error]');
    expect(await page.textContent('[data-testid=job-error]')).toMatch(
      /127\.0\.0\.1|connect|refused/i,
    );
    await saveScreenshot(page, 'jobs');
  });
});
