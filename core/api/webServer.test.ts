import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { LocalStorage } from '../storage/local/localStorage.js';
import { makeTempDir } from '../testing/cluster.js';
import { probackupFixtureDir } from '../testing/pgBinaries.js';
import type { JobInfo, StrataEvent } from './contract.js';
import { createHttpStrataApi } from './httpClient.js';
import type { EventSocket } from './httpClient.js';
import { StrataApiError } from './methods.js';
import { createStrataApi } from './strataApi.js';
import { startWebServer } from './webServer.js';
import type { RunningWebServer } from './webServer.js';

const temp = makeTempDir('strata-web-');
const staticDir = join(temp.path, 'renderer');
// A writable copy: validate jobs take locks and may write statuses.
const catalog = join(temp.path, 'catalog');
const storage = new LocalStorage();
const api = createStrataApi({ storage, strataCommand: 'strata', demoDir: join(temp.path, 'demo') });
let server: RunningWebServer;
let base: string;

beforeAll(async () => {
  mkdirSync(join(staticDir, 'assets'), { recursive: true });
  writeFileSync(
    join(staticDir, 'index.html'),
    '<!doctype html><title>Strata</title><script type="module" src="/assets/app.js"></script>',
  );
  writeFileSync(join(staticDir, 'assets', 'app.js'), 'console.log("strata");');
  cpSync(join(probackupFixtureDir, 'catalog'), catalog, { recursive: true });
  // The fixture is read-only and cpSync keeps modes.
  execFileSync('chmod', ['-R', 'u+w', catalog]);
  server = await startWebServer({ api, storage, staticDir, port: 0 });
  base = `http://127.0.0.1:${server.port}`;
});

afterAll(async () => {
  await server.close();
  temp.remove();
});

function post(
  path: string,
  body: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

interface ErrorBody {
  error: { code: string; message: string };
}

function bearer(): Record<string, string> {
  return { Authorization: `Bearer ${server.token}` };
}

/** A raw GET, so the path reaches the server exactly as written (fetch would normalize `..`). */
function rawGet(
  path: string,
  headers: Record<string, string>,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port: server.port, path, headers }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

function waitForJobEnd(events: StrataEvent[], jobId: string, timeoutMs = 60_000): Promise<JobInfo> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const check = () => {
      const ended = events.find(
        (event) => event.type === 'job' && event.job.id === jobId && event.job.state !== 'running',
      );
      if (ended?.type === 'job') return resolve(ended.job);
      if (Date.now() > deadline) return reject(new Error(`job ${jobId} did not end`));
      setTimeout(check, 20);
    };
    check();
  });
}

describe('strata ui web server', () => {
  it('listens on 127.0.0.1 only and prints a URL with a 256-bit token', async () => {
    expect(server.url).toBe(`http://127.0.0.1:${server.port}/?token=${server.token}`);
    expect(Buffer.from(server.token, 'base64url')).toHaveLength(32);
    const external = Object.values(networkInterfaces())
      .flat()
      .find((address) => address && address.family === 'IPv4' && !address.internal);
    if (external) {
      const refused = await new Promise<string>((resolve) => {
        const socket = connect({ host: external.address, port: server.port });
        socket.on('connect', () => {
          socket.destroy();
          resolve('connected');
        });
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
      });
      expect(refused).toBe('ECONNREFUSED');
    }
  });

  it('refuses every request without the token, or with a wrong one', async () => {
    const noToken = await post('/api/listJobs', []);
    expect(noToken.status).toBe(401);
    expect(await noToken.json()).toEqual({
      error: {
        code: 'unauthorized',
        message:
          'A session token is required: open the URL that `strata ui` printed (it ends in ?token=…)',
      },
    });
    expect(
      (await post('/api/listJobs', [], { Authorization: `Bearer ${server.token}x` })).status,
    ).toBe(401);
    expect(
      (await post('/api/listJobs', [], { Authorization: `Bearer ${server.token.slice(1)}` }))
        .status,
    ).toBe(401);
    expect((await fetch(`${base}/`)).status).toBe(401);
    expect((await fetch(`${base}/assets/app.js`)).status).toBe(401);
    expect((await fetch(`${base}/?token=wrong`)).status).toBe(401);
    const socketStatus = await new Promise<number>((resolve) => {
      const socket = new WebSocket(`ws://127.0.0.1:${server.port}/api/events`);
      socket.on('unexpected-response', (_request, response) => resolve(response.statusCode ?? 0));
      socket.on('open', () => resolve(101));
      socket.on('error', () => undefined);
    });
    expect(socketStatus).toBe(401);
  });

  it('accepts the token as a bearer header, X-Strata-Token or ?token=', async () => {
    for (const response of [
      await post('/api/listJobs', [], bearer()),
      await post('/api/listJobs', [], { 'X-Strata-Token': server.token }),
      await post(`/api/listJobs?token=${server.token}`, []),
    ]) {
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual([]);
    }
  });

  it('serves the renderer with a strict CSP and sets the session cookie the page and its assets use', async () => {
    const page = await fetch(server.url);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(page.headers.get('content-security-policy')).toBe(
      `default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; ` +
        `connect-src 'self' ws://127.0.0.1:${server.port} ws://localhost:${server.port}; base-uri 'none'; ` +
        "form-action 'none'; frame-ancestors 'none'",
    );
    expect(page.headers.get('referrer-policy')).toBe('no-referrer');
    expect(await page.text()).toContain('<title>Strata</title>');
    const cookie = page.headers.get('set-cookie') ?? '';
    expect(cookie).toBe(
      `strata_token_${server.port}=${server.token}; Path=/; HttpOnly; SameSite=Strict`,
    );
    const cookieHeader = { Cookie: cookie.split(';')[0]! };
    const asset = await fetch(`${base}/assets/app.js`, { headers: cookieHeader });
    expect(asset.status).toBe(200);
    expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
    expect(await asset.text()).toBe('console.log("strata");');
    const route = await fetch(`${base}/instances/demo/backups`, { headers: cookieHeader });
    expect(await route.text()).toContain('<title>Strata</title>');
    expect((await fetch(`${base}/assets/missing.js`, { headers: cookieHeader })).status).toBe(404);
    const traversal = await rawGet(
      '/assets/%2e%2e/%2e%2e/%2e%2e/catalog/backups/demo/pg_probackup.conf',
      cookieHeader,
    );
    expect(traversal.status).toBe(404);
    expect(traversal.body).not.toContain('system-identifier');
  });

  it('rejects bad arguments with the schema message, unknown methods and non-JSON calls', async () => {
    const relative = await post('/api/openCatalog', ['catalog'], bearer());
    expect(relative.status).toBe(400);
    expect(await relative.json()).toEqual({
      error: {
        code: 'usage',
        message:
          'openCatalog: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
      },
    });
    const wrongType = await post('/api/getJobLog', [42], bearer());
    expect(await wrongType.json()).toEqual({
      error: { code: 'usage', message: 'getJobLog: jobId expected string, received number' },
    });
    const unknown = await post('/api/dropCatalog', [], bearer());
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as ErrorBody).error.message).toBe(
      'StrataApi has no method "dropCatalog"',
    );
    const form = await fetch(`${base}/api/listJobs`, {
      method: 'POST',
      headers: { ...bearer(), 'Content-Type': 'text/plain' },
      body: '[]',
    });
    expect(form.status).toBe(415);
    const broken = await post('/api/listJobs', '[', bearer());
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as ErrorBody).error.message).toBe(
      'listJobs: the body is not valid JSON',
    );
    const missing = await post('/api/getBackup', [catalog, 'demo', 'AAAAAA'], bearer());
    expect(missing.status).toBe(404);
    expect(((await missing.json()) as ErrorBody).error.code).toBe('backup-not-found');
  });

  it('delivers job events on the WebSocket', async () => {
    const events: StrataEvent[] = [];
    const socket = new WebSocket(`ws://127.0.0.1:${server.port}/api/events?token=${server.token}`);
    socket.on('message', (data) => events.push(JSON.parse(data.toString()) as StrataEvent));
    await new Promise((resolve, reject) => {
      socket.once('open', resolve);
      socket.once('error', reject);
    });
    const started = (await (
      await post('/api/startValidate', [catalog, 'demo', 'TP11RT'], bearer())
    ).json()) as JobInfo;
    expect(started).toMatchObject({
      kind: 'validate',
      state: 'running',
      cliCommand: `strata validate -B ${catalog} --instance=demo -i TP11RT`,
    });
    const ended = await waitForJobEnd(events, started.id);
    socket.close();
    expect(ended.state).toBe('succeeded');
    const logs = events.flatMap((event) =>
      event.type === 'log' && event.line.jobId === started.id ? [event.line.message] : [],
    );
    expect(logs).toContain('Backup TP11RT is valid.');
    expect(logs).toContain('Validate of backup TP11RT completed.');
    expect(
      events.some((event) => event.type === 'catalog-changed' && event.backupPath === catalog),
    ).toBe(true);
  });

  it('works with the browser client: calls, error codes and subscriptions', async () => {
    const client = createHttpStrataApi({
      baseUrl: base,
      token: server.token,
      openSocket: (url) => new WebSocket(url) as unknown as EventSocket,
    });
    const info = await client.openCatalog(catalog);
    expect(info.instances.map((instance) => [instance.name, instance.backupCount])).toEqual([
      ['demo', 3],
    ]);
    const failure = await client
      .getBackup(catalog, 'demo', 'AAAAAA')
      .catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StrataApiError);
    expect(failure).toMatchObject({ code: 'backup-not-found' });

    const events: StrataEvent[] = [];
    const unsubscribe = client.subscribe((event) => events.push(event));
    // The socket opens asynchronously: wait until the server has a subscriber before starting.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const job = await client.startValidate(catalog, 'demo');
    const ended = await waitForJobEnd(events, job.id);
    unsubscribe();
    expect(ended.state).toBe('succeeded');
    expect(ended.cliCommand).toBe(`strata validate -B ${catalog} --instance=demo`);
    expect(
      (await client.getJobLog(job.id)).some((line) => line.message === 'All backups are valid'),
    ).toBe(true);

    const offline = createHttpStrataApi({ baseUrl: 'http://127.0.0.1:1', token: 'x' });
    await expect(offline.listJobs()).rejects.toMatchObject({ code: 'unreachable' });
  });
});
