import { execFile, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, appendFileSync, existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { postgresBinDir, strataCliPath } from './pgBinaries.js';

const execFileAsync = promisify(execFile);

export interface TestClusterOptions {
  major: number;
  /** Extra initdb arguments (for example `--wal-segsize=1`). Data checksums are always on. */
  initdbArgs?: string[];
  /** postgresql.conf settings added before the first start. */
  settings?: Record<string, string>;
  /** Archive WAL with `strata archive-push` into this catalog and instance. */
  archiveTo?: { backupPath: string; instance: string; compress?: boolean };
  /** Use an existing data directory (for example a restored one) instead of running initdb. */
  dataDir?: string;
  /** Settings passed as `-c` on every start, overriding the data directory's configuration. */
  startSettings?: Record<string, string>;
}

/** Every cluster started by this process, so an exit handler can stop what a failed test left. */
const liveClusters = new Set<TestCluster>();

process.on('exit', () => {
  for (const cluster of liveClusters) cluster.stopSync();
});

async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** The archive_command that pushes WAL through the built Strata CLI. */
export function strataArchiveCommand(
  backupPath: string,
  instance: string,
  compress = false,
): string {
  const parts = [
    `"${process.execPath}"`,
    `"${strataCliPath}"`,
    'archive-push',
    `-B "${backupPath}"`,
    `--instance "${instance}"`,
    '--wal-file-path=%p',
    '--wal-file-name=%f',
  ];
  if (compress) parts.push('--compress');
  return parts.join(' ');
}

/**
 * A real PostgreSQL server for tests: its own temporary directory, a free port on 127.0.0.1,
 * a unix socket in the same directory, data checksums on, wal_level replica. Runs as the current
 * user, which must not be root (scripts/test.mjs drops privileges first).
 */
export class TestCluster {
  readonly major: number;
  readonly baseDir: string;
  dataDir: string;
  port = 0;
  private running = false;
  private readonly startSettings: Record<string, string>;

  private constructor(
    major: number,
    baseDir: string,
    dataDir: string,
    startSettings: Record<string, string>,
  ) {
    this.major = major;
    this.baseDir = baseDir;
    this.dataDir = dataDir;
    this.startSettings = startSettings;
  }

  get binDir(): string {
    return postgresBinDir(this.major);
  }

  get socketDir(): string {
    return this.baseDir;
  }

  static async create(options: TestClusterOptions): Promise<TestCluster> {
    if (process.getuid?.() === 0) {
      throw new Error(
        'PostgreSQL refuses to run as root: run the tests through `npm test`, which drops privileges.',
      );
    }
    const baseDir = mkdtempSync(join(tmpdir(), `strata-pg${options.major}-`));
    const dataDir = options.dataDir ?? join(baseDir, 'data');
    const cluster = new TestCluster(options.major, baseDir, dataDir, options.startSettings ?? {});
    if (!options.dataDir) {
      await execFileAsync(join(cluster.binDir, 'initdb'), [
        '-D',
        dataDir,
        '-k',
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--locale=C',
        ...(options.initdbArgs ?? []),
      ]);
      const settings: Record<string, string> = {
        wal_level: 'replica',
        max_wal_senders: '10',
        fsync: 'off',
        full_page_writes: 'on',
        shared_buffers: '32MB',
        max_connections: '40',
        log_min_messages: 'warning',
        ...options.settings,
      };
      if (options.archiveTo) {
        settings['archive_mode'] = 'on';
        settings['archive_command'] =
          `'${strataArchiveCommand(options.archiveTo.backupPath, options.archiveTo.instance, options.archiveTo.compress).replace(/'/g, "''")}'`;
      }
      cluster.appendConfig(settings);
      appendFileSync(
        join(dataDir, 'pg_hba.conf'),
        'host replication all 127.0.0.1/32 trust\nlocal replication all trust\n',
      );
    }
    return cluster;
  }

  /** Appends settings to postgresql.auto.conf-free postgresql.conf; values must already be quoted where needed. */
  appendConfig(settings: Record<string, string>): void {
    const lines = Object.entries(settings).map(([key, value]) => `${key} = ${value}`);
    appendFileSync(join(this.dataDir, 'postgresql.conf'), `\n${lines.join('\n')}\n`);
  }

  async start(): Promise<void> {
    this.port = await freePort();
    const extra = Object.entries(this.startSettings).map(([key, value]) => ` -c ${key}='${value}'`);
    const options = `-p ${this.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='${this.socketDir}'${extra.join('')}`;
    await execFileAsync(join(this.binDir, 'pg_ctl'), [
      '-D',
      this.dataDir,
      '-o',
      options,
      '-l',
      join(this.baseDir, 'server.log'),
      '-w',
      '-t',
      '120',
      'start',
    ]);
    this.running = true;
    liveClusters.add(this);
  }

  /** Fast shutdown (a shutdown checkpoint), waiting for the server to exit. */
  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.running) return;
    await execFileAsync(join(this.binDir, 'pg_ctl'), [
      '-D',
      this.dataDir,
      '-m',
      mode,
      '-w',
      'stop',
    ]);
    this.running = false;
    liveClusters.delete(this);
  }

  stopSync(): void {
    if (!this.running) return;
    try {
      execFileSync(
        join(this.binDir, 'pg_ctl'),
        ['-D', this.dataDir, '-m', 'immediate', '-w', 'stop'],
        {
          stdio: 'ignore',
        },
      );
    } catch {
      // Already gone: nothing left to stop.
    }
    this.running = false;
    liveClusters.delete(this);
  }

  /** Stops the server and removes every file of this cluster. */
  async destroy(): Promise<void> {
    await this.stop('immediate');
    rmSync(this.baseDir, { recursive: true, force: true });
  }

  serverLog(): string {
    const path = join(this.baseDir, 'server.log');
    return existsSync(path) ? execFileSync('tail', ['-n', '40', path]).toString() : '';
  }

  /** The `-h -p -U -d` options with which the strata CLI reaches this server. */
  connectionArgs(database = 'postgres'): string[] {
    return ['-h', '127.0.0.1', '-p', String(this.port), '-U', 'postgres', '-d', database];
  }

  connectionConfig(database = 'postgres'): pg.ClientConfig {
    return { host: '127.0.0.1', port: this.port, user: 'postgres', database };
  }

  async withClient<T>(database: string, work: (client: pg.Client) => Promise<T>): Promise<T> {
    const client = new pg.Client(this.connectionConfig(database));
    await client.connect();
    try {
      return await work(client);
    } finally {
      await client.end();
    }
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    database: string,
    sql: string,
    params: unknown[] = [],
  ): Promise<R[]> {
    return this.withClient(database, async (client) => (await client.query<R>(sql, params)).rows);
  }

  /** Writes a file into the data directory (recovery settings, signals) for tests. */
  writeDataFile(relativePath: string, content: string): void {
    writeFileSync(join(this.dataDir, relativePath), content);
  }
}

/**
 * Starts a restored data directory with archiving off, so the restored server never pushes WAL
 * into the catalog the test is still using.
 */
export async function startRestoredCluster(major: number, dataDir: string): Promise<TestCluster> {
  const cluster = await TestCluster.create({
    major,
    dataDir,
    startSettings: { archive_mode: 'off' },
  });
  await cluster.start();
  return cluster;
}

/** Creates a scratch directory that is removed by the returned cleanup function. */
export function makeTempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
