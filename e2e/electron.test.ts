import { execFile, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../core/testing/pgBinaries.js';

// Launches the real desktop app where an Electron binary exists: main process, app:// protocol,
// sandboxed preload, engine utilityProcess. The app runs in its smoke mode
// (STRATA_ELECTRON_SMOKE=1): once the page has loaded it checks the bridge from inside the page,
// prints one `STRATA_SMOKE {json}` line and quits. Where there is no binary (npm install does not
// download it: package.json allowScripts denies electron's postinstall) or no display, the test
// is skipped and says why.

const require = createRequire(import.meta.url);

function which(command: string): string | undefined {
  const found = spawnSync('sh', ['-c', `command -v ${command}`], { encoding: 'utf8' });
  return found.status === 0 ? found.stdout.trim() : undefined;
}

function findElectron(): { binary: string; wrapper: string[] } | { reason: string } {
  let binary: string;
  try {
    binary = require('electron') as string;
  } catch (error) {
    return {
      reason: `the electron package has no binary (${error instanceof Error ? error.message.split('\n')[0] : String(error)}); npm start downloads it`,
    };
  }
  if (!existsSync(binary))
    return { reason: `the Electron binary ${binary} is missing; npm start downloads it` };
  if (process.platform !== 'linux' || process.env['DISPLAY'] || process.env['WAYLAND_DISPLAY'])
    return { binary, wrapper: [] };
  const xvfb = which('xvfb-run');
  if (xvfb === undefined)
    return { reason: 'there is no display (DISPLAY, WAYLAND_DISPLAY) and no xvfb-run to make one' };
  return { binary, wrapper: [xvfb, '-a'] };
}

const electron = findElectron();
if ('reason' in electron)
  console.log(`e2e/electron.test.ts: the Electron launch test is skipped: ${electron.reason}`);

describe('the desktop app', () => {
  let appDir: string | undefined;
  afterAll(() => {
    if (appDir !== undefined) rmSync(appDir, { recursive: true, force: true });
  });

  it.skipIf('reason' in electron)(
    'starts, serves its page from app:// with a sandboxed bridge and reaches the engine process',
    { timeout: 180_000 },
    async () => {
      if ('reason' in electron) return;
      const dir = mkdtempSync(join(tmpdir(), 'strata-electron-'));
      appDir = dir;
      // The app's bundles, built by the project's own script into a scratch app directory.
      const built = spawnSync(
        process.execPath,
        [join(repoRoot, 'scripts', 'buildElectron.mjs'), '--outdir', join(dir, 'dist', 'electron')],
        {
          encoding: 'utf8',
        },
      );
      expect(built.status, built.stderr).toBe(0);
      writeFileSync(
        join(dir, 'package.json'),
        JSON.stringify({ name: 'strata', version: '0.1.0', main: 'dist/electron/main.mjs' }),
      );

      const [command, ...args] = [...electron.wrapper, electron.binary, dir];
      const output = await new Promise<string>((resolve, reject) => {
        execFile(
          command!,
          args,
          {
            env: {
              ...process.env,
              STRATA_ELECTRON_SMOKE: '1',
              STRATA_DEMO_DIR: join(dir, 'demo'),
            },
            timeout: 150_000,
          },
          (error, stdout, stderr) =>
            error && !stdout.includes('STRATA_SMOKE')
              ? reject(new Error(`${error.message}\n${stderr}`))
              : resolve(stdout),
        );
      });
      const line = output.split('\n').find((text) => text.startsWith('STRATA_SMOKE '));
      expect(line, output).toBeDefined();
      expect(JSON.parse(line!.slice('STRATA_SMOKE '.length))).toEqual({
        ok: true,
        url: 'app://strata/index.html',
        strata: true,
        desktop: true,
        node: false,
        jobs: 0,
        refused:
          'openCatalog: backupPath must be an absolute path or ssh://user@host:port/absolute/path',
      });
    },
  );
});
