import { execFileSync } from 'node:child_process';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startRestoredCluster } from '../../core/testing/cluster.js';
import type { TestCluster } from '../../core/testing/cluster.js';
import { fingerprintCluster, generateData } from '../../core/testing/data.js';
import type { ClusterFingerprint } from '../../core/testing/data.js';
import { strataCliPath } from '../../core/testing/pgBinaries.js';
import { TestSshd } from '../../core/testing/sshd.js';
import { createCatalogCluster } from '../catalogCluster.js';
import type { CatalogCluster } from '../catalogCluster.js';
import { completedBackupId, strata } from '../strataCli.js';
import { launchChromium, saveScreenshot, startStrataUi } from './uiHarness.js';
import type { RunningUi } from './uiHarness.js';

const MAJOR = 17;

/** `SHA256:…` of a public key file, as `ssh-keygen -lf` prints it on the host. */
function fingerprintOf(publicKeyPath: string): string {
  return execFileSync('ssh-keygen', ['-l', '-E', 'sha256', '-f', publicKeyPath])
    .toString()
    .split(' ')[1]!;
}

/**
 * Makes `strata` a command, as on a host where Strata is installed: the restore_command a restore
 * onto a host writes runs `strata archive-get` there, and PostgreSQL asks the archive first even
 * for WAL the backup carries (a command that is missing stops recovery).
 */
function installStrataCommand(dir: string): string {
  const binDir = join(dir, 'bin');
  mkdirSync(binDir, { recursive: true });
  const command = join(binDir, 'strata');
  writeFileSync(command, `#!/bin/sh\nexec "${process.execPath}" "${strataCliPath}" "$@"\n`);
  chmodSync(command, 0o755);
  return binDir;
}

/** Whether a known_hosts file holds a key for `[host]:port` (hashed names included). */
function knownHostsLine(knownHostsPath: string, host: string, port: number): string {
  try {
    return execFileSync('ssh-keygen', ['-F', `[${host}]:${port}`, '-f', knownHostsPath])
      .toString()
      .split('\n')
      .filter((line) => line !== '' && !line.startsWith('#'))
      .join('\n');
  } catch {
    return '';
  }
}

/**
 * The desktop app against a catalog and a restore destination on another host, reached through a
 * real OpenSSH server (this machine on 127.0.0.1, so the test can look at both sides): the
 * first-contact dialog with the fingerprint the host's own `ssh-keygen -lf` prints, Cancel and
 * Trust, the catalog opened through `ssh://`, a restore made on the host and started there with
 * equal data, a refused changed key, and a catalog whose host is not connected.
 */
describe('desktop app with a remote host (strata ui, real sshd)', () => {
  let sshd: TestSshd;
  let source: CatalogCluster;
  let ui: RunningUi;
  let browser: Browser;
  let page: Page;
  let knownHosts: string;
  let hostId: string;
  let hostFingerprint: string;
  let fullId: string;
  let fingerprint: ClusterFingerprint;
  const restored: TestCluster[] = [];
  /** Uncaught errors and console errors of the page: any one fails the test that was running. */
  const pageErrors: string[] = [];
  /** API calls that failed (HTTP 4xx/5xx), by method; each test says which it expects. */
  const apiFailures: string[] = [];
  let expectedApiFailures: string[] = [];

  /** Where Node.js is on the "remote" host: the same machine, so this process's own. */
  const remotePath = dirname(process.execPath);

  async function fillConnectionOptions(sshOptions: string): Promise<void> {
    await page.fill('[data-testid=host-remotePath]', remotePath);
    await page.fill('[data-testid=host-sshOptions]', sshOptions);
  }

  async function openTab(view: string): Promise<void> {
    await page.click(`[data-testid=tab-${view}]`);
    await page.waitForSelector(`[data-testid=view-${view}]`);
  }

  beforeAll(async () => {
    sshd = await TestSshd.start();
    source = await createCatalogCluster({ major: MAJOR });
    await generateData(source.cluster, { databases: ['sales', 'hr'], rowsPerTable: 5000 });
    fullId = completedBackupId((await source.backup(['-b', 'FULL', '--stream'])).stderr);
    fingerprint = await fingerprintCluster(source.cluster);
    // The instance's database host is the sshd host, as `set-config --remote-*` records it: the
    // app offers to connect it and restores there by default once it is connected.
    await strata([
      'set-config',
      '-B',
      source.catalog,
      '--instance',
      source.instance,
      ...sshd.remoteArgs(),
    ]);
    knownHosts = join(source.dir, 'known_hosts');
    writeFileSync(knownHosts, '');
    hostId = `${sshd.user}@${sshd.host}:${sshd.port}`;
    hostFingerprint = fingerprintOf(`${sshd.hostKeyPath}.pub`);

    ui = await startStrataUi();
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1440, height: 900 } });
    page.on('pageerror', (error) => pageErrors.push(error.message));
    page.on('response', (response) => {
      const path = new URL(response.url()).pathname;
      if (path.startsWith('/api/') && response.status() >= 400)
        apiFailures.push(path.slice('/api/'.length));
    });
    // Console errors include Content-Security-Policy violations; a failed API call is logged by
    // the browser too, and counted above instead.
    page.on('console', (message) => {
      if (
        message.type() === 'error' &&
        !message.text().startsWith('Failed to load resource: the server responded with a status')
      )
        pageErrors.push(message.text());
    });
    await page.goto(ui.url);
  });

  afterAll(async () => {
    await browser?.close();
    await ui?.stop();
    for (const server of restored) await server.destroy();
    await source?.destroy();
    await sshd?.stop();
  });

  afterEach(() => {
    expect(pageErrors).toEqual([]);
    expect(apiFailures.splice(0)).toEqual(expectedApiFailures);
    expectedApiFailures = [];
  });

  it('shows the host key on first contact; Cancel connects nothing, Trust connects and records it', async () => {
    await page.waitForSelector('[data-testid=view-catalogs]');
    await page.fill('[data-testid=catalog-path]', source.catalog);
    await page.click('[data-testid=open-catalog]');
    await page.waitForSelector(`[data-testid=instance-row-${source.instance}]`);
    // pg_probackup.conf names the host, which is not connected: the app says so and fills the form.
    const hint = page.locator(`[data-testid=remote-instance-${source.instance}]`);
    expect(await hint.textContent()).toContain(hostId);
    await page.click(`[data-testid=remote-instance-fill-${source.instance}]`);
    expect(await page.inputValue('[data-testid=host-host]')).toBe(sshd.host);
    expect(await page.inputValue('[data-testid=host-port]')).toBe(String(sshd.port));
    expect(await page.inputValue('[data-testid=host-user]')).toBe(sshd.user);
    await fillConnectionOptions(sshd.sshOptions(knownHosts));

    await page.click('[data-testid=host-connect]');
    const dialog = page.locator('[data-testid=host-key-dialog]');
    await dialog.waitFor();
    expect(await dialog.locator('h2').textContent()).toBe(
      `First connection to ${sshd.host}:${sshd.port}`,
    );
    expect(await page.textContent('[data-testid=host-key-fingerprint]')).toBe(hostFingerprint);
    expect(await page.textContent('[data-testid=host-key-type]')).toBe('ssh-ed25519');
    expect(await page.textContent('[data-testid=host-key-file]')).toBe(knownHosts);
    expect(await page.textContent('[data-testid=host-key-command]')).toBe(
      'ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub',
    );
    await saveScreenshot(page, 'host-key-dialog');
    await page.click('[data-testid=host-key-cancel]');
    await dialog.waitFor({ state: 'detached' });
    await page.waitForSelector('[data-testid=hosts-empty]');
    expect(readFileSync(knownHosts, 'utf8')).toBe('');

    await page.click('[data-testid=host-connect]');
    await dialog.waitFor();
    await page.click('[data-testid=host-key-trust]');
    await page.waitForSelector(`[data-testid="host-row-${hostId}"][data-state=connected]`);
    const row = page.locator(`[data-testid="host-row-${hostId}"]`);
    await dialog.waitFor({ state: 'detached' });
    expect(await row.locator('[data-testid=host-row-fingerprint]').textContent()).toBe(
      hostFingerprint,
    );
    // The host's Node.js runs the agent (the contract's example writes it `v20.19.0`).
    const nodeVersion = (await row.locator('[data-testid=host-row-node]').textContent())!;
    expect(nodeVersion.replace(/^v?/, 'v')).toBe(process.version);
    // The trusted key is now the known key of [127.0.0.1]:port, the one the server holds.
    const [keyType, keyBase64] = readFileSync(`${sshd.hostKeyPath}.pub`, 'utf8')
      .trim()
      .split(/\s+/);
    expect(knownHostsLine(knownHosts, sshd.host, sshd.port)).toMatch(
      new RegExp(` ${keyType} ${keyBase64!.replace(/[+/]/g, '\\$&')}$`),
    );
    expect(await page.locator('[data-testid=remote-instance-hint]').count()).toBe(0);
  });

  it('opens the catalog through the host and lists its backups', async () => {
    await page.selectOption('[data-testid=catalog-host]', hostId);
    await page.fill('[data-testid=catalog-path]', source.catalog);
    await page.click('[data-testid=open-catalog]');
    const location = `ssh://${hostId}${source.catalog}`;
    await page.waitForSelector(`h2:has-text("Instances in ${location}")`);
    expect(
      await page.textContent(`[data-testid=instance-row-${source.instance}] >> nth=0`),
    ).toContain(fullId);
    expect(await page.textContent('[data-testid=recent-catalogs]')).toContain(location);
    await page.click(`[data-testid=instance-row-${source.instance}]`);
    await page.waitForSelector(`[data-testid=backup-row-${fullId}][data-status=OK]`);
    // Backups are taken on the catalog's own host, not through it.
    expect(await page.isDisabled('[data-testid=open-backup-dialog]')).toBe(true);
  });

  it('restores onto the host; the restored server starts there with the same data', async () => {
    await openTab('restore');
    await page.waitForSelector('[data-testid=restore-wizard][data-step="1"]');
    // The host pg_probackup.conf names is connected: the restore goes there unless changed.
    expect(await page.inputValue('[data-testid=restore-on]')).toBe(hostId);
    await page.selectOption('[data-testid=restore-on]', '');
    expect(await page.textContent('[data-testid=restore-remote-note]')).toContain(
      `names ${hostId} (remote-host): this restore is made here`,
    );
    await page.selectOption('[data-testid=restore-on]', hostId);
    expect(await page.locator('[data-testid=restore-remote-note]').count()).toBe(0);

    const destination = join(source.dir, 'restored-on-host');
    await page.selectOption('[data-testid=restore-backup]', fullId);
    await page.fill('[data-testid=restore-destination]', destination);
    await page.click('[data-testid=wizard-next]');
    await page.click('[data-testid=target-immediate]');
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=plan-wal-ok]');
    await page.click('[data-testid=wizard-next]');
    expect(await page.inputValue('[data-testid=options-restore-on]')).toBe(hostId);
    await page.click('[data-testid=wizard-next]');
    await page.waitForSelector('[data-testid=restore-review]');
    expect(await page.textContent('[data-testid=review-restore-on]')).toBe(hostId);
    const cli = (await page.textContent('[data-testid=restore-cli]'))!;
    expect(cli).toContain(`-D ${destination}`);
    expect(cli).toContain(String(sshd.port));
    await saveScreenshot(page, 'restore-on-host');

    await page.click('[data-testid=restore-start]');
    await page.waitForSelector(
      '[data-testid=restore-run][data-state=succeeded], [data-testid=restore-run][data-state=failed]',
      { timeout: 120_000 },
    );
    const run = page.locator('[data-testid=restore-run]');
    if ((await run.getAttribute('data-state')) !== 'succeeded')
      throw new Error(`restore failed: ${await run.textContent()}`);
    expect(await page.textContent('[data-testid=restore-result]')).toContain(
      `On ${hostId}, start the server: pg_ctl -D ${destination} start`,
    );

    expect(readFileSync(join(destination, 'postgresql.auto.conf'), 'utf8')).toMatch(
      /^restore_command = '\S*strata\S* archive-get /m,
    );
    const path = process.env['PATH'];
    process.env['PATH'] = `${installStrataCommand(source.dir)}:${path ?? ''}`;
    try {
      const server = await startRestoredCluster(MAJOR, destination);
      restored.push(server);
      expect(await fingerprintCluster(server)).toEqual(fingerprint);
      await server.stop();
    } finally {
      process.env['PATH'] = path;
    }
  });

  it('refuses a host whose known key differs, naming both keys, and keeps the connection', async () => {
    const otherKey = join(source.dir, 'other_host_key');
    execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', otherKey]);
    const [keyType, keyBase64] = readFileSync(`${otherKey}.pub`, 'utf8').trim().split(/\s+/);
    const otherKnownHosts = join(source.dir, 'other_known_hosts');
    const recorded = `[${sshd.host}]:${sshd.port} ${keyType} ${keyBase64}\n`;
    writeFileSync(otherKnownHosts, recorded);

    await openTab('catalogs');
    await page.fill('[data-testid=host-sshOptions]', sshd.sshOptions(otherKnownHosts));
    await page.click('[data-testid=host-connect]');
    const banner = page.locator('[data-testid=error-banner]');
    await banner.waitFor();
    const refusal = (await banner.textContent())!;
    expect(refusal).toContain('CHANGED');
    expect(refusal).toContain(hostFingerprint);
    expect(refusal).toContain(fingerprintOf(`${otherKey}.pub`));
    expect(await page.locator('[data-testid=host-key-dialog]').count()).toBe(0);
    expect(readFileSync(otherKnownHosts, 'utf8')).toBe(recorded);
    await page.waitForSelector(`[data-testid="host-row-${hostId}"][data-state=connected]`);
    await banner.locator('button:has-text("Dismiss")').click();
    expectedApiFailures = ['connectHost'];
  });

  it('fills the connection form when a recent ssh:// catalog’s host is not connected, and opens it once connected', async () => {
    await page.click(`[data-testid="host-row-${hostId}"] [data-testid=host-disconnect]`);
    await page.waitForSelector('[data-testid=hosts-empty]');
    const location = `ssh://${hostId}${source.catalog}`;
    await page.click(`[data-testid=recent-catalogs] button:text-is("${location}")`);
    await page.waitForSelector('[data-testid=error-banner]');
    expect(await page.textContent('[data-testid=host-form-note]')).toContain(location);
    expect(await page.inputValue('[data-testid=host-host]')).toBe(sshd.host);
    expect(await page.inputValue('[data-testid=host-port]')).toBe(String(sshd.port));
    expect(await page.inputValue('[data-testid=host-user]')).toBe(sshd.user);

    // The key was trusted before: this connection asks nothing, and the catalog opens.
    await fillConnectionOptions(sshd.sshOptions(knownHosts));
    await page.click('[data-testid=host-connect]');
    await page.waitForSelector(`[data-testid="host-row-${hostId}"][data-state=connected]`);
    await page.waitForSelector(`h2:has-text("Instances in ${location}")`);
    expect(await page.locator('[data-testid=host-key-dialog]').count()).toBe(0);
    expect(await page.locator('[data-testid=host-form-note]').count()).toBe(0);
    expectedApiFailures = ['openCatalog'];
  });
});
