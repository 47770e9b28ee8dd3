import { extname, join, posix } from 'node:path';

/**
 * The desktop app's security rules as plain functions (tested without Electron): the renderer is
 * served from a privileged `app://strata/` origin rather than file:// (Electron's security
 * checklist: a custom protocol confines what the page can load and lets every response carry a
 * Content-Security-Policy), it may load only its own files, and it may navigate nowhere else.
 */

export const APP_SCHEME = 'app';
export const APP_HOST = 'strata';
export const APP_ORIGIN = `${APP_SCHEME}://${APP_HOST}`;
export const APP_ENTRY_URL = `${APP_ORIGIN}/index.html`;

/**
 * The renderer's scripts, styles and images come from the app itself; it talks to the engine
 * through the preload bridge only, so it needs no network at all.
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "font-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/** A URL of the app's own origin (navigation inside the app is the only navigation allowed). */
export function isAppUrl(url: string): boolean {
  try {
    const parsed = new URL(url);
    return parsed.protocol === `${APP_SCHEME}:` && parsed.host === APP_HOST;
  } catch {
    return false;
  }
}

/**
 * The file of the renderer build an `app://strata/…` request names, or undefined for a request
 * outside the app's origin or one that would leave `rendererDir`. Paths without an extension are
 * the renderer's own routes and get index.html.
 */
export function rendererFileFor(url: string, rendererDir: string): string | undefined {
  if (!isAppUrl(url)) return undefined;
  let pathname: string;
  try {
    pathname = decodeURIComponent(new URL(url).pathname);
  } catch {
    return undefined;
  }
  // A `..` segment has no business in the app's URLs: refuse it rather than resolve it.
  if (pathname.includes('\0') || pathname.split('/').includes('..')) return undefined;
  const normalized = posix.normalize(pathname === '/' ? '/index.html' : pathname);
  if (extname(normalized) === '') return join(rendererDir, 'index.html');
  return join(rendererDir, ...normalized.split('/').filter((part) => part !== ''));
}

const contentTypes: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.woff': 'font/woff',
};

export function contentTypeOf(path: string): string {
  return contentTypes[extname(path)] ?? 'application/octet-stream';
}

/**
 * The command PostgreSQL runs for archive_command / restore_command when the desktop app made the
 * configuration: the app's own binary in Node mode running the CLI bundle. Inside a packaged app
 * the bundle is unpacked next to app.asar (electron-builder.yml asarUnpack), because PostgreSQL's
 * shell cannot read files inside an asar archive.
 */
export function desktopStrataCommand(execPath: string, appPath: string): string {
  const appDir = appPath.endsWith('.asar') ? `${appPath}.unpacked` : appPath;
  return `ELECTRON_RUN_AS_NODE=1 "${execPath}" "${join(appDir, 'dist', 'strata.mjs')}"`;
}
