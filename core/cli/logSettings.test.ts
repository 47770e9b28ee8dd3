import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LocalStorage } from '../storage/local/localStorage.js';
import { createSyntheticInstance } from '../testing/catalogBuilder.js';
import { resolveLogSettings } from './logSettings.js';
import { Options, parseArgs } from './options.js';

let catalog: string;

beforeEach(() => {
  catalog = mkdtempSync(join(tmpdir(), 'strata-log-settings-'));
  createSyntheticInstance(catalog, 'main', {
    extraLines: [
      '# Logging parameters',
      'log-level-console = WARNING',
      'log-level-file = VERBOSE',
      'log-format-file = JSON',
      "log-filename = 'strata-%Y.log'",
      'log-rotation-size = 10MB',
      'log-rotation-age = 1d',
    ],
  });
  createSyntheticInstance(catalog, 'plain');
});

afterEach(() => rmSync(catalog, { recursive: true, force: true }));

function settingsFor(argv: string[], backupPath: string | undefined = catalog) {
  const parsed = parseArgs(argv);
  return resolveLogSettings(new LocalStorage(), new Options(parsed), parsed.command!, backupPath);
}

describe('logging settings of a command', () => {
  it('are off for files by default; the console level defaults to INFO', async () => {
    expect(await settingsFor(['show', '--instance', 'plain'])).toEqual({
      levelConsole: 'INFO',
      levelFile: 'OFF',
      formatConsole: 'PLAIN',
      formatFile: 'PLAIN',
      filename: 'pg_probackup.log',
      rotationSizeKb: 0n,
      rotationAgeMs: 0n,
    });
  });

  it('come from pg_probackup.conf, with the catalog log/ directory by default', async () => {
    expect(await settingsFor(['backup', '--instance', 'main'])).toEqual({
      levelConsole: 'WARNING',
      levelFile: 'VERBOSE',
      formatConsole: 'PLAIN',
      formatFile: 'JSON',
      filename: 'strata-%Y.log',
      directory: join(catalog, 'log'),
      rotationSizeKb: 10240n,
      rotationAgeMs: 86_400_000n,
    });
  });

  it('take the command line over pg_probackup.conf', async () => {
    const settings = await settingsFor([
      'backup',
      '--instance',
      'main',
      '--log-level-file=err',
      '--log-format-file=plain',
      '--log-directory=/var/log/strata',
      '--error-log-filename=errors.log',
      '--log-rotation-size=1GB',
      '--log-level-console=off',
      '--log-format-console=json',
    ]);
    expect(settings).toMatchObject({
      levelConsole: 'OFF',
      levelFile: 'ERROR',
      formatConsole: 'JSON',
      formatFile: 'PLAIN',
      directory: '/var/log/strata',
      errorFilename: 'errors.log',
      rotationSizeKb: 1024n * 1024n,
    });
  });

  it('add-instance and archive-get read no pg_probackup.conf', async () => {
    expect(await settingsFor(['archive-get', '--instance', 'main'])).toMatchObject({
      levelFile: 'OFF',
      levelConsole: 'INFO',
    });
  });

  it('archive-push to a remote catalog logs to the console only', async () => {
    const settings = await settingsFor([
      'archive-push',
      '--instance',
      'main',
      '--remote-host=backup.example',
    ]);
    expect(settings.levelFile).toBe('OFF');
    expect(settings.directory).toBeUndefined();
  });

  it('reject bad values with pg_probackup messages', async () => {
    await expect(settingsFor(['show', '--log-level-file=loud'])).rejects.toThrow(
      'invalid log-level "loud"',
    );
    await expect(settingsFor(['show', '--log-format-file=xml'])).rejects.toThrow(
      'invalid log-format "xml"',
    );
    await expect(settingsFor(['show', '--log-rotation-age=1 week'])).rejects.toThrow(
      "Option --log-rotation-age should be a 64bit unsigned integer: '1 week'",
    );
  });

  it('catchup and checkdb without a catalog need --log-directory to log to a file', async () => {
    await expect(settingsFor(['catchup', '--log-level-file=info'], undefined)).rejects.toThrow(
      'Cannot save catchup logs to a file. You must specify --log-directory option when running catchup with --log-level-file option enabled.',
    );
    await expect(settingsFor(['checkdb', '--log-level-file=info'], undefined)).rejects.toThrow(
      'Cannot save checkdb logs to a file.',
    );
    expect(
      await settingsFor(['catchup', '--log-level-file=info', '--log-directory=/tmp/x'], undefined),
    ).toMatchObject({ levelFile: 'INFO', directory: '/tmp/x' });
  });
});
