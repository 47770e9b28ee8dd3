import { fork, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectApiOverPort } from '../core/api/apiRelay.js';
import type { RelayedStrataApi } from '../core/api/apiRelay.js';
import type { StrataEvent } from '../core/api/contract.js';
import { probackupFixtureDir, repoRoot } from '../core/testing/pgBinaries.js';

// The engine process of the desktop app, bundled as the app ships it (dist/electron/apiHost.mjs),
// run in a real child process. Electron would give it `process.parentPort`; here a preloaded
// module makes one from Node's IPC channel with the same shape (on/off 'message' with `{ data }`,
// postMessage), so the bundle, its environment handling and the relay are what the app runs.

const scratch = mkdtempSync(join(tmpdir(), 'strata-apihost-'));
const catalog = join(probackupFixtureDir, 'catalog');
let child: ChildProcess;
let api: RelayedStrataApi;

beforeAll(() => {
  const built = spawnSync(
    process.execPath,
    [join(repoRoot, 'scripts', 'buildElectron.mjs'), '--outdir', scratch],
    { encoding: 'utf8' },
  );
  expect(built.status, built.stderr).toBe(0);
  const shim = join(scratch, 'parentPort.mjs');
  writeFileSync(
    shim,
    `const listeners = new Map();
process.parentPort = {
  on(event, listener) { const wrapped = (data) => listener({ data, ports: [] }); listeners.set(listener, wrapped); process.on(event, wrapped); return this; },
  off(event, listener) { process.off(event, listeners.get(listener)); return this; },
  postMessage(message) { process.send(message); },
};
`,
  );
  child = fork(join(scratch, 'apiHost.mjs'), [], {
    execArgv: ['--import', pathToFileURL(shim).href],
    env: {
      ...process.env,
      STRATA_ENGINE_COMMAND: `"${process.execPath}" "${join(repoRoot, 'dist', 'strata.mjs')}"`,
      STRATA_DEMO_DIR: join(scratch, 'demo'),
    },
    serialization: 'advanced',
  });
  api = connectApiOverPort({
    postMessage: (message) => child.send(message as never),
    onMessage(listener) {
      child.on('message', listener);
      return () => {
        child.off('message', listener);
      };
    },
  });
});

afterAll(() => {
  child.kill();
  rmSync(scratch, { recursive: true, force: true });
});

describe('the engine process (apiHost bundle)', () => {
  it('serves StrataApi to its parent', async () => {
    const info = await api.openCatalog(catalog);
    expect(
      info.instances.map((instance) => [
        instance.name,
        instance.backupCount,
        instance.serverVersion,
      ]),
    ).toEqual([['demo', 3, '15']]);
    const timelines = await api.listTimelines(catalog, 'demo');
    expect(timelines.map((timeline) => [timeline.tli, timeline.segmentCount])).toEqual([[1, 20]]);
    expect(await api.demoCatalog()).toBeNull();
  });

  it('validates arguments and reports engine errors with their code', async () => {
    await expect(api.getBackup(catalog, 'demo', 'AAAAAA')).rejects.toMatchObject({
      code: 'backup-not-found',
    });
    const unchecked = api.openCatalog as unknown as (...args: unknown[]) => Promise<unknown>;
    await expect(unchecked(42)).rejects.toMatchObject({
      code: 'usage',
      message: 'openCatalog: backupPath expected string, received number',
    });
  });

  it('sends job events to its parent', async () => {
    const events: StrataEvent[] = [];
    const unsubscribe = api.subscribe((event) => events.push(event));
    const job = await api.startDelete(catalog, 'demo', 'AAAAAA');
    for (
      let attempt = 0;
      attempt < 200 && !events.some((event) => event.type === 'catalog-changed');
      attempt++
    ) {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    unsubscribe();
    const states = events.flatMap((event) =>
      event.type === 'job' && event.job.id === job.id ? [event.job.state] : [],
    );
    expect(states).toEqual(['running', 'failed']);
    expect(
      events.some(
        (event) =>
          event.type === 'log' && event.line.jobId === job.id && event.line.level === 'ERROR',
      ),
    ).toBe(true);
  });
});
