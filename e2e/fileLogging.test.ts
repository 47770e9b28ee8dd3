import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { strataCliPath } from '../core/testing/pgBinaries.js';
import { createCatalogCluster, type CatalogCluster } from './catalogCluster.js';
import { completedBackupId, runStrata, strata } from './strataCli.js';

const major = 15;
const env = { TZ: 'UTC' };
/** `YYYY-MM-DD HH:MM:SS UTC [pid]: LEVEL: message`, pg_probackup's plain file line. */
const plainLine =
  /^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC \[(\d+)\]: (VERBOSE|LOG|INFO|NOTICE|WARNING|ERROR): /;

interface FileLine {
  timeSec: number;
  pid: number;
  text: string;
}

/** The lines of a plain log file; a line without the prefix continues a multi-line message. */
function parseLogText(text: string): FileLine[] {
  const lines: FileLine[] = [];
  for (const line of text.split('\n').slice(0, -1)) {
    const match = plainLine.exec(line);
    if (!match) {
      lines.at(-1)!.text += `\n${line}`;
      continue;
    }
    lines.push({
      timeSec: Date.parse(`${match[1]!.replace(' ', 'T')}Z`) / 1000,
      pid: Number(match[2]),
      text: line.slice(match[0].length - match[3]!.length - 2),
    });
  }
  return lines;
}

/**
 * File logging (cli-behaviour.md §1.7): with `--log-level-file` (or the instance's
 * `log-level-file`) above off, the CLI appends pg_probackup's lines to
 * `$BACKUP_PATH/log/pg_probackup.log`, keeps its `.rotation` file and rotates by age on the
 * command clock (STRATA_NOW).
 */
describe('file logging of the CLI', () => {
  let setup: CatalogCluster;
  let catalog: string;
  const instance = 'node';
  const logPath = () => join(catalog, 'log', 'pg_probackup.log');
  const logText = () => readFileSync(logPath(), 'utf8');

  const backupArgs = (extra: string[]): string[] =>
    setup.backupArgs(['-b', 'FULL', '--stream', '--no-sync', ...extra]);

  beforeAll(async () => {
    setup = await createCatalogCluster({ major, instance });
    catalog = setup.catalog;
  });

  afterAll(async () => {
    await setup?.destroy();
  });

  it('backup --log-level-file=info writes the command line and every INFO+ message', async () => {
    const startSec = Math.floor(Date.now() / 1000);
    const args = backupArgs(['--log-level-file=info']);
    const result = await strata(args, { env });
    const endSec = Math.ceil(Date.now() / 1000);
    const id = completedBackupId(result.stderr);

    const lines = parseLogText(logText());
    expect(lines[0]!.text).toBe(`INFO: command: ${strataCliPath} ${args.join(' ')} `);
    expect(new Set(lines.map((line) => line.pid)).size).toBe(1);
    for (const line of lines) {
      expect(line.timeSec).toBeGreaterThanOrEqual(startSec);
      expect(line.timeSec).toBeLessThanOrEqual(endSec);
    }
    // The console's threshold is INFO too: the file holds exactly the console's lines.
    expect(
      lines
        .slice(1)
        .map((line) => `${line.text}\n`)
        .join(''),
    ).toBe(result.stderr);
    expect(lines.map((line) => line.text)).toContain(`INFO: Backup ${id} completed`);
    expect(lines.some((line) => line.text.startsWith('LOG: '))).toBe(false);

    const rotationSec = Number(readFileSync(`${logPath()}.rotation`, 'utf8'));
    expect(rotationSec).toBeGreaterThanOrEqual(startSec);
    expect(rotationSec).toBeLessThanOrEqual(endSec);
  });

  it('set-config --log-level-file=verbose is honoured by the next commands', async () => {
    const before = logText();
    await strata(
      ['set-config', '-B', catalog, '--instance', instance, '--log-level-file=verbose'],
      { env },
    );
    const shown = await strata(['show-config', '-B', catalog, '--instance', instance]);
    expect(shown.stdout).toContain('log-level-file = VERBOSE');

    const result = await strata(backupArgs([]), { env });
    const id = completedBackupId(result.stderr);
    const added = parseLogText(logText().slice(before.length));
    const texts = added.map((line) => line.text);
    expect(texts[0]).toBe(
      `INFO: command: ${strataCliPath} set-config -B ${catalog} --instance ${instance} --log-level-file=verbose `,
    );
    expect(texts).toContain(`INFO: command: ${strataCliPath} ${backupArgs([]).join(' ')} `);
    expect(texts).toContain(`INFO: Backup ${id} completed`);
    // LOG lines reach the file only: the console stays at INFO.
    expect(texts.some((text) => text.startsWith('LOG: started streaming WAL at'))).toBe(true);
    expect(result.stderr).not.toContain('LOG: ');
  });

  it('writes JSON lines, ERROR lines to the error log file, and rotates by age on the command clock', async () => {
    const futureSec = Math.floor(Date.now() / 1000) + 2 * 3600;
    const failed = await runStrata(
      [
        'validate',
        '-B',
        catalog,
        '--instance',
        instance,
        '-i',
        'ZZZZZZ',
        '--log-format-file=json',
        '--error-log-filename=errors-%Y.log',
        '--log-rotation-age=1h',
      ],
      { env: { ...env, STRATA_NOW: String(futureSec) } },
    );
    expect(failed.code).toBe(1);
    const errorLine = failed.stderr.split('\n').find((line) => line.startsWith('ERROR: '))!;
    expect(errorLine).toBeDefined();

    // Rotated: the file was older than an hour on the command's clock, so only this run is in it.
    const records = logText()
      .split('\n')
      .slice(0, -1)
      .map((line) => JSON.parse(line) as Record<string, string>);
    expect(records[0]!.msg).toMatch(/^command: .* validate -B /);
    expect(records.at(-1)).toMatchObject({
      level: 'ERROR',
      msg: errorLine.slice('ERROR: '.length),
      my_thread_num: '[1-1]',
    });
    const stamp = new Date(futureSec * 1000).toISOString().slice(0, 10);
    for (const record of records) {
      expect(Object.keys(record)).toEqual(['ts', 'pid', 'level', 'msg', 'my_thread_num']);
      expect(record.ts!.startsWith(stamp)).toBe(true);
      expect(record.ts!.endsWith(' UTC')).toBe(true);
    }
    expect(Number(readFileSync(`${logPath()}.rotation`, 'utf8'))).toBeGreaterThanOrEqual(futureSec);

    const year = new Date(futureSec * 1000).getUTCFullYear();
    const errorLog = readFileSync(join(catalog, 'log', `errors-${year}.log`), 'utf8');
    expect(
      errorLog
        .split('\n')
        .slice(0, -1)
        .map((line) => JSON.parse(line).level),
    ).toEqual(['ERROR']);
    expect(existsSync(join(catalog, 'log', `errors-${year}.log.rotation`))).toBe(true);
  });
});
