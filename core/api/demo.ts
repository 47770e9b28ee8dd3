import { execFile } from 'node:child_process';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runBackup } from '../commands/backup/backup.js';
import type { BackupParams } from '../commands/backup/backup.js';
import type { CommandContext } from '../commands/context.js';
import { addInstance, initCatalog } from '../commands/instance/instance.js';
import { restoreBackup } from '../commands/restore/restore.js';
import { StrataError, errorText } from '../errors.js';
import { connectPostgres } from '../postgres/connection.js';
import type { ConnectionOptions, PgSession } from '../postgres/connection.js';
import { shellQuote } from './cliCommand.js';
import type { JobControl } from './jobRunner.js';
import { findPostgresInstallation } from './postgresBinaries.js';
import type { PostgresInstallation } from './postgresBinaries.js';

const execFileAsync = promisify(execFile);

/**
 * The demo a new user gets on first start: a sandbox PostgreSQL cluster with a few databases,
 * archiving into a demo catalog through `strata archive-push`, a FULL, a DELTA and a PAGE backup
 * with changes and archived WAL in between, a named restore point, and a point-in-time restore
 * that is promoted onto timeline 2 and backed up there — all made by the engine itself, so every
 * screen has real content. The server is stopped at the end; its data directory stays in the demo
 * directory so the user can start it again (`pg_ctl -D <demo>/pgdata start`) and take backups.
 */

export const DEMO_INSTANCE = 'demo';
/** The sandbox listens on a Unix socket only (listen_addresses = ''); the port names the socket file. */
const DEMO_PORT = 54329;
/** sun_path is 108 bytes on Linux, 104 on macOS; PostgreSQL needs room for `/.s.PGSQL.<port>`. */
const MAX_SOCKET_DIR_BYTES = 80;
const STEPS = 12;

export interface DemoOptions {
  demoDir: string;
  /** How PostgreSQL runs Strata in archive_command / restore_command: a quoted command prefix. */
  strataCommand: string;
  /** Where to look for a source checkout's PostgreSQL packages (node_modules). */
  searchDirs: readonly string[];
  postgresBinDir?: string;
}

export interface DemoLayout {
  demoDir: string;
  catalog: string;
  pgdata: string;
  /** The restored cluster that becomes timeline 2, renamed to `pgdata` at the end. */
  forkPgdata: string;
  serverLog: string;
  /** Written last: a demo without it is unfinished and is made again. */
  completeMarker: string;
}

export function demoLayout(demoDir: string): DemoLayout {
  return {
    demoDir,
    catalog: join(demoDir, 'catalog'),
    pgdata: join(demoDir, 'pgdata'),
    forkPgdata: join(demoDir, 'pgdata-timeline2'),
    serverLog: join(demoDir, 'server.log'),
    completeMarker: join(demoDir, 'demo-complete'),
  };
}

/**
 * The per-user demo directory: STRATA_DEMO_DIR, else the platform's place for application data
 * (XDG_DATA_HOME or ~/.local/share on Linux, ~/Library/Application Support on macOS, LOCALAPPDATA
 * on Windows).
 */
export function defaultDemoDir(
  env: NodeJS.ProcessEnv = process.env,
  platform: NodeJS.Platform = process.platform,
): string {
  const explicit = env['STRATA_DEMO_DIR'];
  if (explicit !== undefined && explicit !== '') return explicit;
  if (platform === 'darwin')
    return join(homedir(), 'Library', 'Application Support', 'Strata', 'demo');
  if (platform === 'win32')
    return join(env['LOCALAPPDATA'] ?? join(homedir(), 'AppData', 'Local'), 'Strata', 'demo');
  const dataHome = env['XDG_DATA_HOME'];
  return join(
    dataHome !== undefined && dataHome !== '' ? dataHome : join(homedir(), '.local', 'share'),
    'strata',
    'demo',
  );
}

/** The demo catalog when a demo was completed in `demoDir`, else null. */
export async function existingDemoCatalog(
  ctx: Pick<CommandContext, 'storage'>,
  demoDir: string,
): Promise<string | null> {
  const layout = demoLayout(demoDir);
  return (await ctx.storage.stat(layout.completeMarker))?.type === 'file' ? layout.catalog : null;
}

function checkNotCancelled(ctx: CommandContext): void {
  if (ctx.signal?.aborted)
    throw new StrataError(
      'interrupted',
      'The demo was cancelled; it is made again from the start next time',
    );
}

/** A value for postgresql.conf: single-quoted, a quote doubled (guc-file.l). */
function confValue(value: string): string {
  return `'${value.replace(/'/g, "''")}'`;
}

async function run(binary: string, args: string[], what: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(binary, args, {
      timeout: 180_000,
      maxBuffer: 16 * 1024 * 1024,
    });
    return stdout;
  } catch (error) {
    const stderr = (error as { stderr?: string }).stderr?.trim();
    throw new StrataError('postgres', `${what} failed: ${stderr || errorText(error)}`, {
      cause: error,
    });
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolveDelay) => setTimeout(resolveDelay, ms));
}

/** A sandbox server of the demo: started and stopped with pg_ctl, reached over its Unix socket. */
class DemoServer {
  running = false;

  constructor(
    private readonly installation: PostgresInstallation,
    readonly pgdata: string,
    readonly socketDir: string,
    private readonly serverLog: string,
  ) {}

  get connection(): ConnectionOptions {
    return {
      pghost: this.socketDir,
      pgport: DEMO_PORT,
      pguser: 'postgres',
      pgdatabase: 'postgres',
    };
  }

  async start(): Promise<void> {
    await run(
      join(this.installation.binDir, 'pg_ctl'),
      ['-D', this.pgdata, '-l', this.serverLog, '-w', '-t', '120', 'start'],
      'pg_ctl start',
    );
    this.running = true;
  }

  async stop(mode: 'fast' | 'immediate' = 'fast'): Promise<void> {
    if (!this.running) return;
    await run(
      join(this.installation.binDir, 'pg_ctl'),
      ['-D', this.pgdata, '-m', mode, '-w', '-t', '120', 'stop'],
      'pg_ctl stop',
    );
    this.running = false;
  }

  async withSession<T>(
    ctx: CommandContext,
    database: string,
    work: (session: PgSession) => Promise<T>,
  ): Promise<T> {
    const session = await connectPostgres({ ...this.connection, pgdatabase: database }, ctx.logger);
    try {
      return await work(session);
    } finally {
      await session.close();
    }
  }
}

async function socketDirFor(ctx: CommandContext, demoDir: string): Promise<string> {
  const inDemo = join(demoDir, 'run');
  const dir =
    Buffer.byteLength(inDemo) <= MAX_SOCKET_DIR_BYTES
      ? inDemo
      : join(tmpdir(), `strata-demo-${process.getuid?.() ?? 'user'}`);
  await ctx.storage.mkdir(dir, { mode: 0o700, recursive: true });
  return dir;
}

async function appendToConfig(
  ctx: CommandContext,
  pgdata: string,
  settings: Record<string, string>,
): Promise<void> {
  const path = join(pgdata, 'postgresql.conf');
  const current = (await ctx.storage.readFile(path)).toString('utf8');
  const lines = Object.entries(settings).map(([key, value]) => `${key} = ${value}`);
  await ctx.storage.writeFile(path, `${current}\n# Strata demo\n${lines.join('\n')}\n`);
}

/** What the sandbox holds: an order system, HR and an event log, in three databases. */
async function createDemoData(ctx: CommandContext, server: DemoServer): Promise<void> {
  for (const database of ['shop', 'hr', 'analytics']) {
    await server.withSession(ctx, 'postgres', (session) =>
      session.query(`CREATE DATABASE ${database}`),
    );
  }
  await server.withSession(ctx, 'shop', async (session) => {
    await session.query(`
      CREATE TABLE public.customers (id int PRIMARY KEY, name text NOT NULL, city text NOT NULL);
      INSERT INTO public.customers SELECT g, 'customer ' || g, (ARRAY['Berlin','Lisbon','Osaka','Quito','Perth'])[1 + g % 5]
        FROM pg_catalog.generate_series(1, 2000) g;
      CREATE TABLE public.orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES public.customers,
        amount numeric(10,2) NOT NULL, note text, created_at timestamptz NOT NULL DEFAULT pg_catalog.now());
      CREATE INDEX orders_customer ON public.orders (customer_id);
      INSERT INTO public.orders (id, customer_id, amount, note)
        SELECT g, 1 + g % 2000, (g * 7.31) % 500, pg_catalog.md5(g::text) FROM pg_catalog.generate_series(1, 30000) g;`);
  });
  await server.withSession(ctx, 'hr', async (session) => {
    await session.query(`
      CREATE TABLE public.staff (id int PRIMARY KEY, name text NOT NULL, department text NOT NULL, salary int NOT NULL);
      INSERT INTO public.staff SELECT g, 'employee ' || g, (ARRAY['ops','sales','dev','finance'])[1 + g % 4], 30000 + (g * 37) % 50000
        FROM pg_catalog.generate_series(1, 3000) g;`);
  });
  await server.withSession(ctx, 'analytics', async (session) => {
    await session.query(`
      CREATE TABLE public.events (id bigint PRIMARY KEY, kind text NOT NULL, payload text, at timestamptz NOT NULL);
      INSERT INTO public.events SELECT g, (ARRAY['view','click','buy'])[1 + g % 3], pg_catalog.repeat(pg_catalog.md5(g::text), 4),
        TIMESTAMPTZ '2026-01-01' + g * INTERVAL '1 minute' FROM pg_catalog.generate_series(1, 60000) g;`);
  });
}

/** Switches to a new WAL segment and waits until the archiver has pushed the one it closed. */
async function switchAndArchiveWal(
  ctx: CommandContext,
  server: DemoServer,
  serverLog: string,
): Promise<void> {
  await server.withSession(ctx, 'postgres', async (session) => {
    // pg_switch_wal does nothing when no WAL was written since the last switch (a backup's stop
    // just switched): a committed transaction with an XID writes a commit record first.
    await session.query('SELECT pg_catalog.txid_current()');
    const [closed] = await session.query<{ name: string }>(
      'SELECT pg_catalog.pg_walfile_name(pg_catalog.pg_switch_wal()) AS name',
    );
    const deadline = Date.now() + 120_000;
    // The archiver is another process with no notification to wait on: poll its statistics.
    for (;;) {
      const [archiver] = await session.query<{ last: string | null }>(
        'SELECT last_archived_wal AS last FROM pg_catalog.pg_stat_archiver',
      );
      if (archiver?.last && closed && archiver.last >= closed.name) return;
      if (Date.now() > deadline) {
        throw new StrataError(
          'wal',
          `WAL segment ${closed?.name ?? ''} was not archived within 120 s: see "${serverLog}"`,
        );
      }
      checkNotCancelled(ctx);
      await delay(100);
    }
  });
}

async function waitForPromotion(
  ctx: CommandContext,
  server: DemoServer,
  serverLog: string,
): Promise<void> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const inRecovery = await server
      .withSession(ctx, 'postgres', async (session) => {
        const [row] = await session.query<{ recovering: boolean }>(
          'SELECT pg_catalog.pg_is_in_recovery() AS recovering',
        );
        return row?.recovering ?? true;
      })
      .catch(() => true);
    if (!inRecovery) return;
    if (Date.now() > deadline) {
      throw new StrataError(
        'restore',
        `The restored demo cluster did not finish recovery within 120 s: see "${serverLog}"`,
      );
    }
    checkNotCancelled(ctx);
    await delay(200);
  }
}

async function removeLeftovers(
  ctx: CommandContext,
  layout: DemoLayout,
  installation: PostgresInstallation,
): Promise<void> {
  for (const pgdata of [layout.pgdata, layout.forkPgdata]) {
    if ((await ctx.storage.stat(join(pgdata, 'postmaster.pid'))) !== null) {
      // A server of an interrupted demo may still run; stopping an already stopped one fails harmlessly.
      await run(
        join(installation.binDir, 'pg_ctl'),
        ['-D', pgdata, '-m', 'immediate', '-w', 'stop'],
        'pg_ctl stop',
      ).catch(() => '');
    }
  }
  for (const path of [layout.catalog, layout.pgdata, layout.forkPgdata, layout.serverLog]) {
    await ctx.storage.removeTree(path);
  }
}

function backupParams(
  catalog: string,
  server: DemoServer,
  fields: Pick<BackupParams, 'backupMode' | 'stream' | 'note'> & Partial<BackupParams>,
): BackupParams {
  return {
    backupPath: catalog,
    instance: DEMO_INSTANCE,
    tempSlot: false,
    permSlot: false,
    smoothCheckpoint: false,
    threads: 2,
    progress: false,
    pgdata: server.pgdata,
    connection: server.connection,
    compressAlgorithm: 'zlib',
    compressLevel: 1,
    noValidate: false,
    noSync: false,
    skipBlockValidation: false,
    backupPgLog: false,
    ...fields,
  };
}

/**
 * Makes the demo in `options.demoDir` (see the file comment) and returns its catalog; a demo that
 * is already complete is returned as it is. Refuses to run as root, as PostgreSQL does.
 */
export async function createDemo(
  ctx: CommandContext,
  control: JobControl,
  options: DemoOptions,
): Promise<string> {
  const { logger, storage } = ctx;
  const layout = demoLayout(options.demoDir);
  const existing = await existingDemoCatalog(ctx, options.demoDir);
  if (existing !== null) {
    logger.info(`The demo catalog already exists: "${existing}"`);
    return existing;
  }
  if (process.getuid?.() === 0) {
    throw new StrataError(
      'usage',
      'The demo starts a PostgreSQL server, and PostgreSQL refuses to run as root ("initdb: cannot be run as root"). ' +
        'Start Strata as a normal user to create the demo; as root you can still open existing catalogs.',
    );
  }
  const installation = await findPostgresInstallation(storage, {
    ...(options.postgresBinDir !== undefined ? { explicitBinDir: options.postgresBinDir } : {}),
    startDirs: options.searchDirs,
  });
  if (!installation) {
    throw new StrataError(
      'config',
      'No PostgreSQL installation found for the demo: install PostgreSQL (its initdb, pg_ctl and postgres), ' +
        'or point STRATA_PG_BIN at the directory that holds them.',
    );
  }
  let step = 0;
  const advance = (message: string) => {
    checkNotCancelled(ctx);
    control.setProgress(step++, STEPS, 'steps');
    logger.info(`Demo: ${message}`);
  };

  advance(
    `preparing "${options.demoDir}" with ${installation.version} from "${installation.binDir}"`,
  );
  await storage.mkdir(options.demoDir, { mode: 0o700, recursive: true });
  await removeLeftovers(ctx, layout, installation);
  const socketDir = await socketDirFor(ctx, options.demoDir);
  const server = new DemoServer(installation, layout.pgdata, socketDir, layout.serverLog);
  let fork: DemoServer | undefined;
  try {
    advance('creating a cluster with data checksums and 1 MB WAL segments (initdb)');
    await run(
      join(installation.binDir, 'initdb'),
      [
        '-D',
        layout.pgdata,
        '-k',
        '-U',
        'postgres',
        '-A',
        'trust',
        '-E',
        'UTF8',
        '--locale=C',
        '--wal-segsize=1',
      ],
      'initdb',
    );
    const archiveCommand = [
      options.strataCommand,
      'archive-push',
      '-B',
      shellQuote(layout.catalog),
      `--instance=${DEMO_INSTANCE}`,
      '--wal-file-path=%p',
      '--wal-file-name=%f',
      '--compress',
    ].join(' ');
    await appendToConfig(ctx, layout.pgdata, {
      port: String(DEMO_PORT),
      listen_addresses: "''",
      unix_socket_directories: confValue(socketDir),
      wal_level: 'replica',
      max_wal_senders: '4',
      archive_mode: 'on',
      archive_command: confValue(archiveCommand),
      // A sandbox: speed over durability of the sandbox's own data (the catalog is always synced).
      fsync: 'off',
      synchronous_commit: 'off',
      shared_buffers: '32MB',
      max_connections: '20',
    });

    advance(`creating the catalog "${layout.catalog}" and instance '${DEMO_INSTANCE}'`);
    await initCatalog(ctx, layout.catalog);
    await addInstance(ctx, {
      backupPath: layout.catalog,
      instance: DEMO_INSTANCE,
      pgdata: layout.pgdata,
      overrides: {
        pghost: socketDir,
        pgport: String(DEMO_PORT),
        pguser: 'postgres',
        retentionRedundancy: 3,
        retentionWindow: 7,
      },
    });

    advance('starting the sandbox server and loading databases shop, hr and analytics');
    await server.start();
    await createDemoData(ctx, server);

    advance('FULL backup (STREAM, zlib)');
    await runBackup(
      ctx,
      backupParams(layout.catalog, server, {
        backupMode: 'FULL',
        stream: true,
        note: 'demo: first full backup',
      }),
    );

    advance('changes, then a DELTA backup (ARCHIVE)');
    await server.withSession(ctx, 'shop', (session) =>
      session.query(`UPDATE public.orders SET amount = amount * 1.1 WHERE id % 10 = 0;
        INSERT INTO public.orders (id, customer_id, amount, note)
          SELECT g, 1 + g % 2000, 42, 'after full' FROM pg_catalog.generate_series(30001, 33000) g;`),
    );
    await switchAndArchiveWal(ctx, server, layout.serverLog);
    await runBackup(
      ctx,
      backupParams(layout.catalog, server, {
        backupMode: 'DELTA',
        stream: false,
        note: 'demo: delta',
      }),
    );

    advance('changes, then a PAGE backup (ARCHIVE, blocks found in the archived WAL)');
    await server.withSession(ctx, 'hr', (session) =>
      session.query("UPDATE public.staff SET salary = salary + 1000 WHERE department = 'dev'"),
    );
    await server.withSession(ctx, 'analytics', (session) =>
      session.query('DELETE FROM public.events WHERE id % 7 = 0'),
    );
    await switchAndArchiveWal(ctx, server, layout.serverLog);
    await runBackup(
      ctx,
      backupParams(layout.catalog, server, {
        backupMode: 'PAGE',
        stream: false,
        note: 'demo: page',
      }),
    );

    advance("changes after the last backup, restore point 'before-cleanup', more WAL archived");
    await server.withSession(ctx, 'shop', async (session) => {
      await session.query(`INSERT INTO public.orders (id, customer_id, amount, note)
        SELECT g, 1 + g % 2000, 7, 'after page' FROM pg_catalog.generate_series(33001, 34000) g`);
      await session.query("SELECT pg_catalog.pg_create_restore_point('before-cleanup')");
      await session.query("DELETE FROM public.orders WHERE note = 'after full'");
    });
    await switchAndArchiveWal(ctx, server, layout.serverLog);
    await server.stop('fast');

    advance("point-in-time restore to 'before-cleanup' and promotion: timeline 2");
    await restoreBackup(ctx, {
      backupPath: layout.catalog,
      instance: DEMO_INSTANCE,
      pgdata: layout.forkPgdata,
      target: { name: 'before-cleanup', action: 'promote' },
      restoreAsReplica: false,
      noValidate: false,
      force: false,
      skipBlockValidation: false,
      threads: 2,
      noSync: false,
      strataCommandPath: options.strataCommand,
      progress: false,
    });
    fork = new DemoServer(installation, layout.forkPgdata, socketDir, layout.serverLog);
    await fork.start();
    await waitForPromotion(ctx, fork, layout.serverLog);

    advance('FULL backup on timeline 2');
    await fork.withSession(ctx, 'shop', (session) =>
      session.query("UPDATE public.customers SET city = 'Lisbon' WHERE id % 50 = 0"),
    );
    const forkServer = fork;
    await runBackup(
      ctx,
      backupParams(layout.catalog, forkServer, {
        backupMode: 'FULL',
        stream: true,
        note: 'demo: full on timeline 2',
      }),
    );
    await switchAndArchiveWal(ctx, forkServer, layout.serverLog);

    advance("stopping the sandbox; its timeline-2 data directory becomes the instance's PGDATA");
    await forkServer.stop('fast');
    await storage.removeTree(layout.pgdata);
    await storage.rename(layout.forkPgdata, layout.pgdata);

    advance('done');
    await storage.writeFileAtomic(
      layout.completeMarker,
      `${JSON.stringify({ catalog: layout.catalog, createdAt: new Date(ctx.now()).toISOString() })}\n`,
      { mode: 0o600, sync: true },
    );
    control.setProgress(STEPS, STEPS, 'steps');
    logger.info(
      `Demo: the catalog is "${layout.catalog}"; start the sandbox again with ` +
        `pg_ctl -D ${shellQuote(layout.pgdata)} -l ${shellQuote(layout.serverLog)} start (socket ${socketDir}, port ${DEMO_PORT})`,
    );
    return layout.catalog;
  } catch (error) {
    for (const running of [fork, server]) {
      await running?.stop('immediate').catch((stopError: unknown) => {
        logger.warning(`Could not stop the demo server: ${errorText(stopError)}`);
      });
    }
    throw error;
  }
}
