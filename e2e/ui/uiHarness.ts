import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, constants, cpSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { chromium } from 'playwright-core';
import type { Browser, Page } from 'playwright-core';
import { repoRoot, strataCliPath } from '../../core/testing/pgBinaries.js';

/**
 * What the UI's end-to-end tests need: `strata ui` started as a separate process exactly as a DBA
 * starts it (the URL with its session token read from its output), Debian's Chromium driven by
 * playwright-core (never a downloaded browser), and screenshots saved where the README shows them.
 */

export const chromiumPath = process.env['STRATA_CHROMIUM'] ?? '/usr/bin/chromium';

export interface RunningUi {
  /** The printed URL, `?token=…` included. */
  url: string;
  output(): string;
  stop(): Promise<void>;
}

/**
 * Starts `strata ui --port 0` and resolves with the URL it prints. It serves a copy of the built
 * renderer taken now (STRATA_RENDERER_DIR), so a `npm run build` running meanwhile, which empties
 * dist/renderer, cannot pull the page's files away in the middle of a test.
 */
export function startStrataUi(extraArgs: string[] = []): Promise<RunningUi> {
  const rendererCopy = mkdtempSync(join(tmpdir(), 'strata-renderer-'));
  cpSync(join(dirname(strataCliPath), 'renderer'), rendererCopy, { recursive: true });
  const child: ChildProcess = spawn(
    process.execPath,
    [strataCliPath, 'ui', '--port', '0', ...extraArgs],
    {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, STRATA_RENDERER_DIR: rendererCopy },
    },
  );
  child.once('exit', () => rmSync(rendererCopy, { recursive: true, force: true }));
  let output = '';
  return new Promise((resolveUi, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`strata ui printed no URL within 30 s:\n${output}`)),
      30_000,
    );
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Strata UI: (http:\/\/\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolveUi({
          url: match[1]!,
          output: () => output,
          stop: () =>
            new Promise<void>((resolveStop) => {
              if (child.exitCode !== null) return resolveStop();
              child.once('exit', () => resolveStop());
              child.kill('SIGINT');
            }),
        });
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`strata ui exited ${code} before printing its URL:\n${output}`));
    });
  });
}

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--headless=new',
    ],
  });
}

/**
 * docs/screenshots of the checkout (scripts/unprivileged.mjs lets the test user write there), or
 * STRATA_SCREENSHOT_DIR. Fails loudly when it cannot be written: the README shows these files.
 */
export function screenshotDir(): string {
  const dir = process.env['STRATA_SCREENSHOT_DIR'] ?? join(repoRoot, 'docs', 'screenshots');
  mkdirSync(dir, { recursive: true });
  try {
    accessSync(dir, constants.W_OK);
  } catch {
    throw new Error(
      `${dir} is not writable by this user: run the tests with \`npm test\` (it grants the test user access) or set STRATA_SCREENSHOT_DIR`,
    );
  }
  return dir;
}

/** A screenshot of the whole window, after animations and pending requests have settled. */
export async function saveScreenshot(page: Page, name: string): Promise<void> {
  await page.waitForLoadState('networkidle');
  await page.screenshot({ path: join(screenshotDir(), `${name}.png`), animations: 'disabled' });
}
