import { chmodSync, cpSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../../core/testing/cluster.js';
import { probackupFixtureDir } from '../../core/testing/pgBinaries.js';
import { launchChromium, startStrataUi } from './uiHarness.js';
import type { RunningUi } from './uiHarness.js';

/**
 * A catalog made by real pg_probackup 2.5.16 (shared/fixtures, see its README.md) opens in the
 * app as it is: instance `demo` (PostgreSQL 15, 1 MB WAL segments), the chain FULL TP11R6 →
 * DELTA TP11RH → PAGE TP11RT with their compressions, and its compressed WAL archive.
 */
describe('a pg_probackup catalog in the app', () => {
  let scratch: ReturnType<typeof makeTempDir>;
  let ui: RunningUi;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    scratch = makeTempDir('strata-e2e-ui-probackup-');
    const catalog = join(scratch.path, 'catalog');
    cpSync(join(probackupFixtureDir, 'catalog'), catalog, { recursive: true });
    // The fixture is read-only; its copy must be removable afterwards.
    const makeWritable = (dir: string): void => {
      chmodSync(dir, 0o700);
      for (const entry of readdirSync(dir, { withFileTypes: true })) {
        if (entry.isDirectory()) makeWritable(join(dir, entry.name));
      }
    };
    makeWritable(catalog);
    ui = await startStrataUi(['-B', catalog]);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    await page.goto(ui.url);
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.stop();
    scratch?.remove();
  });

  it('lists its three backups with their modes, compressions and sizes', async () => {
    // `strata ui -B` names the catalog in the URL: the app opens on its backups.
    await page.waitForSelector('[data-testid=view-backups]');
    await page.waitForSelector('[data-testid=backup-row-TP11R6]');
    const rows = page.locator('[data-testid=backups-table] tbody tr[data-testid^=backup-row-]');
    const ids = await rows.evaluateAll((elements) =>
      elements.map((element) => element.getAttribute('data-testid')),
    );
    expect(ids).toEqual(['backup-row-TP11RT', 'backup-row-TP11RH', 'backup-row-TP11R6']);
    const full = page.locator('[data-testid=backup-row-TP11R6]');
    expect(await full.getAttribute('data-status')).toBe('OK');
    expect(await full.locator('[data-testid=cell-mode]').textContent()).toBe('FULL');
    expect(await full.locator('[data-testid=cell-compressAlg]').textContent()).toBe('zlib:1');
    expect(await full.locator('[data-testid=cell-note]').textContent()).toBe('fixture full');
    expect(
      await page
        .locator('[data-testid=backup-row-TP11RH] [data-testid=cell-compressAlg]')
        .textContent(),
    ).toBe('pglz:1');
    expect(
      await page.locator('[data-testid=backup-row-TP11RT] [data-testid=cell-mode]').textContent(),
    ).toBe('PAGE');
    await page.click('[data-testid=backup-row-TP11RT]');
    const details = page.locator('[data-testid=backup-details][data-backup-id=TP11RT]');
    await details.waitFor();
    expect(await details.locator('[data-testid=details-chain]').textContent()).toBe(
      'TP11R6 → TP11RH → TP11RT',
    );
    const databases = (await details.locator('[data-testid=backup-databases]').textContent())!;
    for (const name of ['postgres', 'sales', 'hr']) expect(databases).toContain(name);
  });

  it('draws the chain and the compressed WAL archive on timeline 1', async () => {
    await page.click('[data-testid=tab-chains]');
    const chain = page.locator('[data-testid=chain-TP11R6]');
    await chain.waitFor();
    expect(await chain.locator('[data-testid^=chain-node-]').count()).toBe(3);
    expect(await chain.locator('path.chain-edge').count()).toBe(2);
    await page.click('[data-testid=tab-timeline]');
    await page.waitForSelector('[data-testid=timeline-lane-1][data-status=OK]');
    expect(await page.locator('[data-testid^=timeline-backup-]').count()).toBe(3);
    expect(await page.locator('[data-testid=gap-1]').count()).toBe(0);
    expect(await page.textContent('[data-testid=timeline-row-1]')).toContain('TP11R6');
  });
});
