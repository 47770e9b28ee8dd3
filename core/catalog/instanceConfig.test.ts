import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StrataError } from '../errors.js';
import { LocalStorage } from '../storage/local/localStorage.js';
import {
  configOptionTable,
  findConfigOption,
  formatInstanceConfig,
  parseInstanceConfigText,
  parseOptionValue,
  readInstanceConfig,
  renderShowConfig,
  writeInstanceConfig,
} from './instanceConfig.js';
import type { InstanceConfig } from './instanceConfig.js';

const storage = new LocalStorage();
let dir: string;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'strata-config-'));
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

function option(name: string) {
  const entry = findConfigOption(name);
  if (!entry) throw new Error(`no option ${name}`);
  return entry;
}

async function configError(text: string): Promise<StrataError> {
  const path = join(dir, 'pg_probackup.conf');
  writeFileSync(path, text);
  try {
    await readInstanceConfig(storage, path);
  } catch (error) {
    if (error instanceof StrataError) return error;
    throw error;
  }
  throw new Error('expected an error');
}

describe('option table', () => {
  it('has every pg_probackup.conf key in pg_probackup order', () => {
    expect(configOptionTable.map((entry) => entry.name)).toEqual([
      'pgdata',
      'system-identifier',
      'xlog-seg-size',
      'external-dirs',
      'pgdatabase',
      'pghost',
      'pgport',
      'pguser',
      'master-db',
      'master-host',
      'master-port',
      'master-user',
      'replica-timeout',
      'archive-timeout',
      'archive-host',
      'archive-port',
      'archive-user',
      'restore-command',
      'log-level-console',
      'log-level-file',
      'log-format-console',
      'log-format-file',
      'log-filename',
      'error-log-filename',
      'log-directory',
      'log-rotation-size',
      'log-rotation-age',
      'retention-redundancy',
      'retention-window',
      'wal-depth',
      'compress-algorithm',
      'compress-level',
      'remote-proto',
      'remote-host',
      'remote-port',
      'remote-path',
      'remote-user',
      'ssh-options',
      'ssh-config',
    ]);
    expect(option('ARCHIVE_TIMEOUT')).toMatchObject({
      field: 'archiveTimeoutSec',
      unit: 's',
      default: 300,
    });
    expect(option('log-format-console').cliOnly).toBe(true);
    expect(option('system-identifier').fileOnly).toBe(true);
  });
});

describe('parseOptionValue', () => {
  it('parses with units, enums and prefixes', () => {
    expect(parseOptionValue(option('archive-timeout'), '5min')).toBe(300);
    expect(parseOptionValue(option('archive-timeout'), 'INFINITE')).toBe(4294967295);
    expect(parseOptionValue(option('log-rotation-size'), '10MB')).toBe(10240n);
    expect(parseOptionValue(option('log-rotation-age'), '1d')).toBe(86400000n);
    expect(parseOptionValue(option('system-identifier'), '7711864751650477886')).toBe(
      7711864751650477886n,
    );
    expect(parseOptionValue(option('compress-algorithm'), 'ZL')).toBe('zlib');
    expect(parseOptionValue(option('compress-algorithm'), 'p')).toBe('pglz');
    expect(parseOptionValue(option('log-level-file'), 'o')).toBe('OFF');
    expect(parseOptionValue(option('log-level-console'), 'warn')).toBe('WARNING');
    expect(parseOptionValue(option('log-format-file'), 'JSON')).toBe('JSON');
  });

  it.each([
    [
      'archive-timeout',
      '5 years',
      "Option --archive-timeout should be a 32bit unsigned integer: '5 years'",
    ],
    [
      'retention-window',
      '7d',
      "Option --retention-window should be a 32bit unsigned integer: '7d'",
    ],
    [
      'log-rotation-size',
      'big',
      "Option --log-rotation-size should be a 64bit unsigned integer: 'big'",
    ],
    ['pgdata', '', "Option -D, --pgdata should be a valid string: ''"],
    ['compress-algorithm', 'lzma', 'Invalid compress algorithm value "lzma"'],
    ['log-level-console', 'loud', 'invalid log-level "loud"'],
    ['log-format-file', 'xml', 'invalid log-format "xml"'],
  ])('rejects %s = %j with pg_probackup message', (name, text, message) => {
    expect(() => parseOptionValue(option(name), text)).toThrow(message);
  });
});

describe('reading pg_probackup.conf', () => {
  it('reads every kind of value', async () => {
    const path = join(dir, 'pg_probackup.conf');
    writeFileSync(
      path,
      [
        '# Backup instance information',
        'pgdata = /data/pg',
        'system-identifier = 7365432109876543210',
        'xlog-seg-size = 16777216',
        "external-dirs = '/etc/pg conf:/srv/x'",
        'archive_timeout = 10min',
        'Log-Level-File = verbose',
        'log-rotation-age = 1h',
        'retention-window = 7',
        'compress-algorithm = zlib',
        'compress-level = 0x3',
        'remote-host = db1',
      ].join('\n') + '\n',
    );
    expect(await readInstanceConfig(storage, path)).toEqual({
      pgdata: '/data/pg',
      systemIdentifier: 7365432109876543210n,
      xlogSegSize: 16777216,
      externalDirs: '/etc/pg conf:/srv/x',
      archiveTimeoutSec: 600,
      logLevelFile: 'VERBOSE',
      logRotationAgeMs: 3600000n,
      retentionWindow: 7,
      compressAlgorithm: 'zlib',
      compressLevel: 3,
      remoteHost: 'db1',
    } satisfies InstanceConfig);
  });

  it('refuses an unknown key naming the file and line', async () => {
    const error = await configError('pgdata = /x\nSMOOTH_CHECKPOINT=FOO\n');
    expect(error.code).toBe('config');
    expect(error.message).toBe(
      `Invalid option "SMOOTH_CHECKPOINT" in file "${join(dir, 'pg_probackup.conf')}" (line 2)`,
    );
  });

  it('refuses log-format-console in the file', async () => {
    const error = await configError('log-format-console = json\n');
    expect(error.message).toBe(
      `Option log-format-console cannot be specified in file (file "${join(dir, 'pg_probackup.conf')}", line 1)`,
    );
  });

  it('refuses a bad value and a garbled line naming the file and line', async () => {
    const path = join(dir, 'pg_probackup.conf');
    const badValue = await configError('pgdata = /x\narchive-timeout = soon\n');
    expect(badValue.code).toBe('config');
    expect(badValue.message).toBe(
      `Option --archive-timeout should be a 32bit unsigned integer: 'soon' (file "${path}", line 2)`,
    );
    const truncated = await configError(
      '# Backup instance information\npgdata = /x\nsystem-identif',
    );
    expect(truncated.message).toBe(`Syntax error in "system-identif" (file "${path}", line 3)`);
    const missing = await readInstanceConfig(storage, join(dir, 'absent.conf')).catch(
      (error: unknown) => error,
    );
    expect(missing).toBeInstanceOf(StrataError);
    expect((missing as StrataError).message).toBe(
      `Configuration file "${join(dir, 'absent.conf')}" doesn't exist`,
    );
  });

  it('only warns in show mode', () => {
    const warnings: string[] = [];
    const config = parseInstanceConfigText(
      'pgdata = /x\nbogus = 1\nlog-format-console = json\n',
      '/c',
      {
        onWarning: (message) => warnings.push(message),
      },
    );
    expect(config).toEqual({ pgdata: '/x' });
    expect(warnings).toEqual([
      'Invalid option "bogus" in file "/c" (line 2)',
      'Option log-format-console cannot be specified in file (file "/c", line 3)',
    ]);
  });
});

describe('writing pg_probackup.conf', () => {
  it('writes set options only, grouped, scaled and quoted, atomically', async () => {
    const path = join(dir, 'pg_probackup.conf');
    const config: InstanceConfig = {
      pgdata: '/var/lib/postgresql/16/main',
      systemIdentifier: 7365432109876543210n,
      xlogSegSize: 16777216,
      archiveTimeoutSec: 300,
      logFormatConsole: 'JSON',
      logRotationSizeKb: 10240n,
      retentionRedundancy: 3,
      compressAlgorithm: 'zlib',
      sshOptions: "-o Port=2222 -o 'x'",
      restoreCommand: '',
    };
    await writeInstanceConfig(storage, path, config);
    const text = readFileSync(path, 'utf8');
    expect(text).toBe(
      [
        '# Backup instance information',
        'pgdata = /var/lib/postgresql/16/main',
        'system-identifier = 7365432109876543210',
        'xlog-seg-size = 16777216',
        '# Archive parameters',
        'archive-timeout = 5min',
        '# Logging parameters',
        'log-rotation-size = 10MB',
        '# Retention parameters',
        'retention-redundancy = 3',
        '# Compression parameters',
        'compress-algorithm = zlib',
        '# Remote access parameters',
        "ssh-options = '-o Port=2222 -o ''x'''",
        '',
      ].join('\n'),
    );
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(readdirSync(dir)).toEqual(['pg_probackup.conf']);
    const reread = await readInstanceConfig(storage, path);
    expect(reread.sshOptions).toBe("-o Port=2222 -o 'x'");
    expect(reread.logFormatConsole).toBeUndefined();
    expect(formatInstanceConfig(reread)).toBe(text);
  });

  it('refuses a value with a line break', () => {
    expect(() => formatInstanceConfig({ pgdata: '/a\nb' })).toThrow('contains a line break');
  });
});

describe('renderShowConfig', () => {
  const config: InstanceConfig = {
    pgdata: '/data/pg',
    systemIdentifier: 7711864751650477886n,
    xlogSegSize: 1048576,
    pgdatabase: 'postgres',
    archiveTimeoutSec: 301,
    logRotationSizeKb: 0n,
  };

  it('prints the effective configuration in plain format', () => {
    expect(renderShowConfig(config, 'plain', false)).toBe(
      [
        '# Backup instance information',
        'pgdata = /data/pg',
        'system-identifier = 7711864751650477886',
        'xlog-seg-size = 1048576',
        '# Connection parameters',
        'pgdatabase = postgres',
        '# Replica parameters',
        'replica-timeout = 5min',
        '# Archive parameters',
        'archive-timeout = 301s',
        '# Logging parameters',
        'log-level-console = INFO',
        'log-level-file = OFF',
        'log-format-console = PLAIN',
        'log-format-file = PLAIN',
        'log-filename = pg_probackup.log',
        'log-rotation-size = 0TB',
        'log-rotation-age = 0d',
        '# Retention parameters',
        'retention-redundancy = 0',
        'retention-window = 0',
        'wal-depth = 0',
        '# Compression parameters',
        'compress-algorithm = none',
        'compress-level = 1',
        '# Remote access parameters',
        'remote-proto = ssh',
        '',
      ].join('\n'),
    );
    expect(renderShowConfig(config, 'plain', true)).toContain(
      '\nreplica-timeout = 300\n# Archive parameters\narchive-timeout = 301\n',
    );
  });

  it('prints JSON with strings, or bare numbers with --no-scale-units', () => {
    const json = renderShowConfig(config, 'json', false);
    expect(
      json.startsWith(
        '{\n    "pgdata": "/data/pg",\n    "system-identifier": "7711864751650477886",\n',
      ),
    ).toBe(true);
    expect(json.endsWith(',\n    "remote-proto": "ssh"\n}\n')).toBe(true);
    expect(JSON.parse(json)).toMatchObject({
      'archive-timeout': '301s',
      'log-rotation-age': '0d',
      'log-level-file': 'OFF',
    });
    const bare = renderShowConfig(config, 'json', true);
    expect(bare).toContain('"archive-timeout": 301,');
    expect(bare).toContain('"retention-redundancy": 0,');
    expect(bare).toContain('"compress-algorithm": "none",');
    expect(bare).toContain('"system-identifier": 7711864751650477886,');
  });
});
