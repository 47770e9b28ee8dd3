import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, posix } from 'node:path';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { StrataError, isStrataError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import type { StrataApi } from './contract.js';
import { apiFailureOf, isApiMethodName } from './methods.js';
import type { ApiFailure } from './methods.js';
import { parseApiArguments } from './schema.js';

/**
 * `strata ui`: the renderer and StrataApi over HTTP + WebSocket, for the browser and for a DBA on
 * a server reached through an SSH tunnel.
 *
 * - Bound to 127.0.0.1 only; nothing else on the network can connect.
 * - Every request needs the session token, a random 256-bit value printed with the URL: as
 *   `Authorization: Bearer <token>`, `X-Strata-Token`, `?token=` or the cookie set when the page
 *   was opened with `?token=` (so the page's own scripts, styles and WebSocket carry it). Compared
 *   in constant time. The cookie is SameSite=Strict and calls must be `application/json`, so
 *   another site open in the same browser can neither read nor forge a call.
 * - `POST /api/<method>` with the JSON array of the method's arguments (checked by schema.ts)
 *   answers the JSON result, or `{ "error": { "code", "message" } }` with a 4xx/5xx status.
 * - `GET /api/events` upgrades to a WebSocket that carries every StrataEvent as one JSON text.
 * - Anything else is a file of the built renderer (`dist/renderer`), `index.html` for unknown
 *   paths (the renderer routes itself), with a strict Content-Security-Policy.
 */

export interface WebServerOptions {
  api: StrataApi;
  storage: Storage;
  /** The built renderer: index.html and its assets. */
  staticDir: string;
  /** 0 picks a free port. */
  port?: number;
  /** Tests fix it; a random 256-bit token otherwise. */
  token?: string;
}

export interface RunningWebServer {
  url: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

const HOST = '127.0.0.1';
const MAX_BODY_BYTES = 1024 * 1024;
/** WebSocket clients that do not answer a ping within this interval are dropped. */
const PING_INTERVAL_MS = 30_000;

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
  '.txt': 'text/plain; charset=utf-8',
};

/** The renderer needs nothing from elsewhere: its own scripts, styles, images and this server's API. */
export function contentSecurityPolicy(port: number): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    `connect-src 'self' ws://${HOST}:${port} ws://localhost:${port}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

const statusOfCode: Record<string, number> = {
  usage: 400,
  'bad-request': 400,
  unauthorized: 401,
  'not-found': 404,
  'instance-not-found': 404,
  'backup-not-found': 404,
  catalog: 404,
  lock: 409,
  'unsupported-media-type': 415,
  'payload-too-large': 413,
};

function sha256(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** Constant-time equality that does not leak the token's length either (both sides hashed first). */
function tokenMatches(expected: Buffer, given: string | undefined): boolean {
  if (given === undefined || given === '') return false;
  return timingSafeEqual(expected, sha256(given));
}

function cookieValue(request: IncomingMessage, name: string): string | undefined {
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name)
      return decodeURIComponent(part.slice(eq + 1).trim());
  }
  return undefined;
}

function presentedTokens(request: IncomingMessage, url: URL, cookieName: string): string[] {
  const tokens: string[] = [];
  const authorization = request.headers.authorization;
  if (authorization?.startsWith('Bearer '))
    tokens.push(authorization.slice('Bearer '.length).trim());
  const header = request.headers['x-strata-token'];
  if (typeof header === 'string') tokens.push(header);
  const query = url.searchParams.get('token');
  if (query !== null) tokens.push(query);
  const cookie = cookieValue(request, cookieName);
  if (cookie !== undefined) tokens.push(cookie);
  return tokens;
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  response.writeHead(status, {
    'Content-Type': 'application/json; charset=utf-8',
    'Content-Length': Buffer.byteLength(text),
    'Cache-Control': 'no-store',
  });
  response.end(text);
}

function sendFailure(response: ServerResponse, failure: ApiFailure): void {
  sendJson(response, statusOfCode[failure.code] ?? 500, { error: failure });
}

async function readBody(request: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request) {
    const buffer = chunk as Buffer;
    size += buffer.length;
    if (size > MAX_BODY_BYTES) {
      throw new StrataError('usage', `The request body is larger than ${MAX_BODY_BYTES} bytes`);
    }
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** A path inside `staticDir` for a URL path, or undefined when it would leave it. */
export function staticFilePath(staticDir: string, urlPath: string): string | undefined {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return undefined;
  }
  // A `..` segment has no business in the renderer's URLs: refuse it rather than resolve it.
  if (decoded.includes('\0') || decoded.split('/').includes('..')) return undefined;
  return posix.join(staticDir, posix.normalize(`/${decoded}`));
}

export async function startWebServer(options: WebServerOptions): Promise<RunningWebServer> {
  const { api, storage, staticDir } = options;
  const token = options.token ?? randomBytes(32).toString('base64url');
  const expected = sha256(token);
  let port = options.port ?? 0;
  // Cookies are not scoped by port: a name per port keeps two `strata ui` sessions apart.
  const cookieName = () => `strata_token_${port}`;
  const isAuthorized = (request: IncomingMessage, url: URL) =>
    presentedTokens(request, url, cookieName()).some((given) => tokenMatches(expected, given));

  const securityHeaders = () => ({
    'Content-Security-Policy': contentSecurityPolicy(port),
    'X-Content-Type-Options': 'nosniff',
    // The token travels in the first URL: never hand it to another site in a Referer.
    'Referrer-Policy': 'no-referrer',
    'X-Frame-Options': 'DENY',
    'Cross-Origin-Opener-Policy': 'same-origin',
    'Cross-Origin-Resource-Policy': 'same-origin',
  });

  const serveApiCall = async (
    request: IncomingMessage,
    response: ServerResponse,
    method: string,
  ) => {
    if (request.method !== 'POST') {
      response.setHeader('Allow', 'POST');
      sendFailure(response, {
        code: 'bad-request',
        message: `${method}: use POST with a JSON array of arguments`,
      });
      return;
    }
    if (!isApiMethodName(method)) {
      sendFailure(response, { code: 'not-found', message: `StrataApi has no method "${method}"` });
      return;
    }
    const contentType = request.headers['content-type'] ?? '';
    if (!/^application\/json\b/i.test(contentType)) {
      sendFailure(response, {
        code: 'unsupported-media-type',
        message: `${method}: send the arguments as application/json`,
      });
      return;
    }
    let body: unknown;
    try {
      const text = await readBody(request);
      body = text.trim() === '' ? [] : JSON.parse(text);
    } catch (error) {
      const tooLarge = isStrataError(error);
      sendFailure(response, {
        code: tooLarge ? 'payload-too-large' : 'bad-request',
        message: tooLarge ? error.message : `${method}: the body is not valid JSON`,
      });
      return;
    }
    try {
      const args = parseApiArguments(method, body);
      const call = api[method] as (...values: unknown[]) => Promise<unknown>;
      const result = await call.apply(api, args);
      sendJson(response, 200, result ?? null);
    } catch (error) {
      sendFailure(response, apiFailureOf(error));
    }
  };

  const serveStatic = async (request: IncomingMessage, response: ServerResponse, url: URL) => {
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      sendFailure(response, { code: 'bad-request', message: 'Only GET and HEAD are served here' });
      return;
    }
    const requested = staticFilePath(
      staticDir,
      url.pathname === '/' ? '/index.html' : url.pathname,
    );
    if (requested === undefined) {
      sendFailure(response, { code: 'not-found', message: 'No such file' });
      return;
    }
    let path = requested;
    let stat = await storage.stat(path);
    // The renderer routes its own paths; anything that is not a file of the build is the app.
    if (stat?.type !== 'file' && extname(url.pathname) === '') {
      path = posix.join(staticDir, 'index.html');
      stat = await storage.stat(path);
    }
    if (stat?.type !== 'file') {
      const missingApp = path.endsWith('/index.html');
      response.writeHead(404, {
        ...securityHeaders(),
        'Content-Type': 'text/plain; charset=utf-8',
      });
      response.end(
        missingApp
          ? `The Strata UI is not built: "${path}" is missing. Build it (npm run build:renderer) and start strata ui again.\n`
          : 'No such file\n',
      );
      return;
    }
    const headers: Record<string, string | number> = {
      ...securityHeaders(),
      'Content-Type': contentTypes[extname(path)] ?? 'application/octet-stream',
      'Content-Length': stat.sizeBytes,
      'Cache-Control': path.endsWith('.html') ? 'no-store' : 'private, max-age=3600',
    };
    const queryToken = url.searchParams.get('token');
    if (queryToken !== null && tokenMatches(expected, queryToken)) {
      headers['Set-Cookie'] =
        `${cookieName()}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict`;
    }
    response.writeHead(200, headers);
    if (request.method === 'HEAD') {
      response.end();
      return;
    }
    try {
      response.end(await storage.readFile(path));
    } catch (error) {
      response.destroy(error instanceof Error ? error : undefined);
    }
  };

  const server: Server = createServer((request, response) => {
    const url = new URL(request.url ?? '/', `http://${HOST}`);
    if (!isAuthorized(request, url)) {
      sendFailure(response, {
        code: 'unauthorized',
        message:
          'A session token is required: open the URL that `strata ui` printed (it ends in ?token=…)',
      });
      return;
    }
    const handled = url.pathname.startsWith('/api/')
      ? serveApiCall(request, response, url.pathname.slice('/api/'.length))
      : serveStatic(request, response, url);
    handled.catch((error: unknown) => {
      if (!response.headersSent) sendFailure(response, apiFailureOf(error));
      else response.destroy();
    });
  });

  const sockets = new WebSocketServer({ noServer: true, maxPayload: 64 * 1024 });
  const alive = new WeakMap<WebSocket, boolean>();
  server.on('upgrade', (request, socket, head) => {
    const url = new URL(request.url ?? '/', `http://${HOST}`);
    if (url.pathname !== '/api/events' || !isAuthorized(request, url)) {
      const status = url.pathname !== '/api/events' ? '404 Not Found' : '401 Unauthorized';
      socket.end(`HTTP/1.1 ${status}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`);
      return;
    }
    sockets.handleUpgrade(request, socket, head, (ws) => {
      alive.set(ws, true);
      const unsubscribe = api.subscribe((event) => {
        if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(event));
      });
      ws.on('pong', () => alive.set(ws, true));
      ws.on('close', unsubscribe);
      ws.on('error', unsubscribe);
    });
  });
  const ping = setInterval(() => {
    for (const ws of sockets.clients) {
      if (!alive.get(ws)) {
        ws.terminate();
        continue;
      }
      alive.set(ws, false);
      ws.ping();
    }
  }, PING_INTERVAL_MS);
  ping.unref();

  await new Promise<void>((resolveListen, reject) => {
    server.once('error', (error) => {
      const code = storageErrorCode(error);
      reject(
        code === 'EADDRINUSE'
          ? new StrataError(
              'usage',
              `Port ${port} on ${HOST} is already in use: choose another with --port`,
              { cause: error },
            )
          : error,
      );
    });
    server.listen(port, HOST, () => resolveListen());
  });
  port = (server.address() as AddressInfo).port;

  return {
    url: `http://${HOST}:${port}/?token=${token}`,
    port,
    token,
    async close() {
      clearInterval(ping);
      for (const ws of sockets.clients) ws.terminate();
      sockets.close();
      server.closeAllConnections();
      await new Promise<void>((resolveClose) => server.close(() => resolveClose()));
    },
  };
}
