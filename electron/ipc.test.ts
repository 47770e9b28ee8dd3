import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { StrataApi } from '../core/api/contract.js';
import { apiMethodNames } from '../core/api/methods.js';
import type { ApiReply } from '../core/api/methods.js';
import { createStrataApi } from '../core/api/strataApi.js';
import { LocalStorage } from '../core/storage/local/localStorage.js';
import { probackupFixtureDir } from '../core/testing/pgBinaries.js';
import { API_CHANNEL_PREFIX, apiChannel } from './channels.js';
import { registerStrataIpc } from './ipc.js';
import type { IpcInvokeEvent, IpcMainLike } from './ipc.js';
import { APP_ENTRY_URL } from './security.js';

/** ipcMain as Electron's: one handler per channel, invoked with the event and the renderer's arguments. */
class FakeIpcMain implements IpcMainLike {
  readonly handlers = new Map<
    string,
    (event: IpcInvokeEvent, ...args: unknown[]) => Promise<unknown>
  >();

  handle(
    channel: string,
    listener: (event: IpcInvokeEvent, ...args: unknown[]) => Promise<unknown>,
  ): void {
    if (this.handlers.has(channel))
      throw new Error(`Attempted to register a second handler for '${channel}'`);
    this.handlers.set(channel, listener);
  }

  removeHandler(channel: string): void {
    this.handlers.delete(channel);
  }

  invoke(channel: string, frameUrl: string | null, ...args: unknown[]): Promise<ApiReply<unknown>> {
    const handler = this.handlers.get(channel);
    if (!handler) throw new Error(`No handler registered for '${channel}'`);
    return handler(
      { senderFrame: frameUrl === null ? null : { url: frameUrl } },
      ...args,
    ) as Promise<ApiReply<unknown>>;
  }
}

const catalog = join(probackupFixtureDir, 'catalog');
const fromApp = {
  isTrustedSender: (event: IpcInvokeEvent) =>
    event.senderFrame?.url.startsWith('app://strata/') === true,
};

describe('Electron IPC wiring of StrataApi', () => {
  it('registers one channel per contract method and removes them all', () => {
    const ipc = new FakeIpcMain();
    const unregister = registerStrataIpc(ipc, {
      getApi: () => createStrataApi({ storage: new LocalStorage(), strataCommand: 'strata' }),
      ...fromApp,
    });
    expect([...ipc.handlers.keys()].sort()).toEqual(
      apiMethodNames.map((method) => `${API_CHANNEL_PREFIX}${method}`).sort(),
    );
    expect(ipc.handlers.has('strata:api:subscribe')).toBe(false);
    unregister();
    expect(ipc.handlers.size).toBe(0);
  });

  it('passes validated arguments to the API and returns its result in an envelope', async () => {
    const ipc = new FakeIpcMain();
    const api = createStrataApi({ storage: new LocalStorage(), strataCommand: 'strata' });
    registerStrataIpc(ipc, { getApi: () => api, ...fromApp });
    const reply = await ipc.invoke(apiChannel('listBackups'), APP_ENTRY_URL, catalog, 'demo');
    expect(reply.ok).toBe(true);
    expect(reply.ok && (reply.value as Array<{ id: string }>).map((backup) => backup.id)).toEqual([
      'TP11RT',
      'TP11RH',
      'TP11R6',
    ]);
    expect(await ipc.invoke(apiChannel('cancelJob'), APP_ENTRY_URL, 'no-such-job')).toEqual({
      ok: false,
      error: {
        code: 'usage',
        message: 'Job no-such-job does not exist (jobs are kept until Strata exits)',
      },
    });
  });

  it('rejects invalid arguments before the API sees them', async () => {
    const calls: string[] = [];
    const spy = new Proxy({} as StrataApi, {
      get: (_target, method: string) => async () => {
        calls.push(method);
        return null;
      },
    });
    const ipc = new FakeIpcMain();
    registerStrataIpc(ipc, { getApi: () => spy, ...fromApp });
    expect(await ipc.invoke(apiChannel('openCatalog'), APP_ENTRY_URL, '../catalog')).toEqual({
      ok: false,
      error: {
        code: 'usage',
        message:
          'openCatalog: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
      },
    });
    expect(
      await ipc.invoke(apiChannel('startRestore'), APP_ENTRY_URL, { backupPath: '/c' }),
    ).toMatchObject({
      ok: false,
      error: { code: 'usage' },
    });
    expect(await ipc.invoke(apiChannel('listJobs'), APP_ENTRY_URL, 'unexpected')).toMatchObject({
      ok: false,
    });
    expect(calls).toEqual([]);
    expect(await ipc.invoke(apiChannel('listJobs'), APP_ENTRY_URL)).toEqual({
      ok: true,
      value: null,
    });
    expect(calls).toEqual(['listJobs']);
  });

  it('refuses calls from frames that are not the app', async () => {
    const ipc = new FakeIpcMain();
    let reached = false;
    registerStrataIpc(ipc, {
      getApi: () => {
        reached = true;
        return createStrataApi({ storage: new LocalStorage(), strataCommand: 'strata' });
      },
      ...fromApp,
    });
    for (const url of ['https://example.com/', 'file:///tmp/index.html', null]) {
      expect(await ipc.invoke(apiChannel('listJobs'), url)).toMatchObject({
        ok: false,
        error: { code: 'unauthorized' },
      });
    }
    expect(reached).toBe(false);
  });
});
