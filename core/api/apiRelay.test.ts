import { join } from 'node:path';
import { MessageChannel } from 'node:worker_threads';
import type { MessagePort } from 'node:worker_threads';
import { afterAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../storage/local/localStorage.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';
import { connectApiOverPort, serveApiOverPort } from './apiRelay.js';
import type { RelayPort } from './apiRelay.js';
import type { StrataEvent } from './contract.js';
import { StrataApiError } from './methods.js';
import { createStrataApi } from './strataApi.js';

// The relay the Electron app uses between main and its engine utilityProcess, over a real
// structured-clone channel (worker_threads MessageChannel): what crosses must survive cloning.

function relayPort(port: MessagePort): RelayPort {
  return {
    postMessage: (message) => port.postMessage(message),
    onMessage(listener) {
      port.on('message', listener);
      return () => {
        port.off('message', listener);
      };
    },
  };
}

const catalog = join(probackupFixtureDir, 'catalog');
const engine = createStrataApi({
  storage: new LocalStorage(),
  strataCommand: 'strata',
  demoDir: '/nonexistent/demo',
});
const channel = new MessageChannel();
const stopServing = serveApiOverPort(engine, relayPort(channel.port1));
const client = connectApiOverPort(relayPort(channel.port2));

afterAll(() => {
  stopServing();
  channel.port1.close();
  channel.port2.close();
});

describe('StrataApi over a message port', () => {
  it('answers calls with what the engine answers', async () => {
    expect(await client.openCatalog(catalog)).toEqual(await engine.openCatalog(catalog));
    expect(
      await client.listBackupFiles(catalog, 'demo', 'TP11R6', { offset: 0, limit: 3 }),
    ).toEqual(await engine.listBackupFiles(catalog, 'demo', 'TP11R6', { offset: 0, limit: 3 }));
    expect(await client.demoCatalog()).toBeNull();
  });

  it('keeps the engine error code and message', async () => {
    const failure = await client
      .getBackup(catalog, 'demo', 'AAAAAA')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StrataApiError);
    expect(failure).toMatchObject({
      code: 'backup-not-found',
      message: `Backup AAAAAA is not found in instance 'demo' of "${catalog}"`,
    });
  });

  it('validates the arguments again on the engine side', async () => {
    const unchecked = client.listBackups as unknown as (...args: unknown[]) => Promise<unknown>;
    await expect(unchecked('catalog', 'demo')).rejects.toMatchObject({
      code: 'usage',
      message:
        'listBackups: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
    });
  });

  it('forwards job events', async () => {
    const events: StrataEvent[] = [];
    const unsubscribe = client.subscribe((event) => events.push(event));
    const job = await client.startMerge(catalog, 'demo', 'AAAAAA');
    expect(job).toMatchObject({
      kind: 'merge',
      state: 'running',
      cliCommand: `strata merge -B ${catalog} --instance=demo -i AAAAAA`,
    });
    await engine.waitForJob(job.id);
    await new Promise((resolve) => setTimeout(resolve, 50));
    unsubscribe();
    const states = events.flatMap((event) =>
      event.type === 'job' && event.job.id === job.id ? [event.job.state] : [],
    );
    expect(states).toEqual(['running', 'failed']);
    const failed = events.find((event) => event.type === 'job' && event.job.state === 'failed');
    expect(failed?.type === 'job' && failed.job.error).toMatch(/AAAAAA/);
    expect(
      events.some(
        (event) =>
          event.type === 'log' && event.line.level === 'ERROR' && event.line.jobId === job.id,
      ),
    ).toBe(true);
    expect(events.at(-1)).toEqual({
      type: 'catalog-changed',
      backupPath: catalog,
      instance: 'demo',
    });
  });

  it('fails pending and later calls once the engine is gone', async () => {
    const silent = new MessageChannel();
    const orphan = connectApiOverPort(relayPort(silent.port2));
    const pending = orphan.listJobs();
    orphan.disconnect('The Strata engine process stopped (exit code 9)');
    await expect(pending).rejects.toMatchObject({
      code: 'internal',
      message: 'The Strata engine process stopped (exit code 9)',
    });
    await expect(orphan.listJobs()).rejects.toThrow('exit code 9');
    silent.port1.close();
    silent.port2.close();
  });
});
