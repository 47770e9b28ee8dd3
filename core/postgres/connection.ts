/**
 * Connections to a PostgreSQL server through `pg`, with pg_probackup's connection rules
 * (cli-behaviour.md §2.7): libpq-style defaults from the environment, the CVE-2018-1058
 * search_path reset, and its error texts.
 */
import { connect as connectSocket } from 'node:net';
import { userInfo } from 'node:os';
import pg from 'pg';
import { StrataError, errorText } from '../errors.js';
import type { Logger } from '../log.js';

export interface ConnectionOptions {
  pghost?: string;
  pgport?: number | string;
  pguser?: string;
  pgdatabase?: string;
  password?: string;
}

/** The fields of a server ErrorResponse / NoticeResponse that libpq prints. */
interface ServerMessageFields {
  severity?: string | undefined;
  message: string;
  detail?: string | undefined;
  hint?: string | undefined;
}

interface BackendKeyData {
  processID: number;
  secretKey: number;
}

/** CancelRequest code (1234 << 16 | 5678), pqcomm.h CANCEL_REQUEST_CODE. */
const cancelRequestCode = 80877102;
const cancelTimeoutMs = 10_000;

function isServerMessage(error: unknown): error is ServerMessageFields {
  return (
    typeof error === 'object' &&
    error !== null &&
    'severity' in error &&
    'message' in error &&
    typeof (error as { message: unknown }).message === 'string'
  );
}

/**
 * The error text as libpq's PQerrorMessage shows it (`ERROR:  text\nDETAIL:  …\n`), which
 * pg_probackup embeds in its `query failed:` messages.
 */
export function serverErrorText(error: unknown): string {
  if (!isServerMessage(error)) return `${errorText(error)}\n`;
  let text = `${error.severity ?? 'ERROR'}:  ${error.message}\n`;
  if (error.detail) text += `DETAIL:  ${error.detail}\n`;
  if (error.hint) text += `HINT:  ${error.hint}\n`;
  return text;
}

/** Database to connect to when none is given: PGDATABASE, then PGUSER, then the OS user (pg_probackup). */
export function resolveDatabaseName(options: ConnectionOptions): string {
  return (
    options.pgdatabase || process.env['PGDATABASE'] || process.env['PGUSER'] || userInfo().username
  );
}

function parsePort(port: number | string): number {
  const value = typeof port === 'number' ? port : Number(port.trim());
  if (!Number.isInteger(value) || value <= 0 || value > 65535) {
    throw new StrataError('usage', `Invalid port number "${String(port)}"`);
  }
  return value;
}

/**
 * The `pg` client configuration. Unset fields are left to `pg`, which reads PGHOST, PGPORT,
 * PGUSER and PGPASSWORD and then ~/.pgpass as libpq does.
 */
export function clientConfigOf(options: ConnectionOptions): pg.ClientConfig & { database: string } {
  const config: pg.ClientConfig & { database: string } = {
    database: resolveDatabaseName(options),
    keepAlive: true,
    fallback_application_name: 'strata',
  };
  if (options.pghost) config.host = options.pghost;
  if (options.pgport !== undefined && options.pgport !== '')
    config.port = parsePort(options.pgport);
  if (options.pguser) config.user = options.pguser;
  if (options.password !== undefined) config.password = options.password;
  return config;
}

/** Characters libpq's appendConnStrVal leaves unquoted. */
const plainConninfoValue = /^[A-Za-z0-9_.]+$/;

function conninfoValue(value: string): string {
  if (plainConninfoValue.test(value)) return value;
  return `'${value.replace(/[\\']/g, (c) => `\\${c}`)}'`;
}

function sendCancelRequest(host: string, port: number, key: BackendKeyData): Promise<void> {
  const request = Buffer.alloc(16);
  request.writeInt32BE(16, 0);
  request.writeInt32BE(cancelRequestCode, 4);
  request.writeInt32BE(key.processID, 8);
  request.writeInt32BE(key.secretKey | 0, 12);
  return new Promise((resolveCancel, reject) => {
    const socket = host.startsWith('/')
      ? connectSocket({ path: `${host}/.s.PGSQL.${port}` })
      : connectSocket({ host, port });
    socket.setTimeout(cancelTimeoutMs, () =>
      socket.destroy(new Error('timeout sending the cancel request')),
    );
    socket.once('connect', () => socket.end(request));
    socket.once('error', reject);
    socket.once('close', (hadError) => {
      if (!hadError) resolveCancel();
    });
  });
}

/**
 * One server session. A non-exclusive backup lives in the session that started it: start and
 * stop it through the same PgSession.
 */
export class PgSession {
  readonly database: string;
  readonly logger: Logger;
  private readonly client: pg.Client;
  private backendKey: BackendKeyData | null = null;
  private serverVersionReported = '';
  private brokenError: unknown = null;

  private constructor(client: pg.Client, database: string, logger: Logger) {
    this.client = client;
    this.database = database;
    this.logger = logger;
  }

  /** Connects; internal to connectPostgres. */
  static async open(options: ConnectionOptions, logger: Logger): Promise<PgSession> {
    const config = clientConfigOf(options);
    const client = new pg.Client(config);
    const session = new PgSession(client, config.database, logger);
    client.connection.on('backendKeyData', (message: BackendKeyData) => {
      session.backendKey = { processID: message.processID, secretKey: message.secretKey };
    });
    client.connection.on(
      'parameterStatus',
      (message: { parameterName: string; parameterValue: string }) => {
        if (message.parameterName === 'server_version')
          session.serverVersionReported = message.parameterValue;
      },
    );
    client.on('error', (error) => {
      session.brokenError = error;
    });
    client.on('notice', (notice) => {
      const text = notice.message ?? '';
      if (notice.severity === 'WARNING') logger.warning(text);
      else logger.verbose(text);
    });
    try {
      await client.connect();
    } catch (error) {
      throw new StrataError(
        'postgres',
        `could not connect to database ${config.database}: ${errorText(error)}`,
        {
          cause: error,
        },
      );
    }
    try {
      await session.query("SELECT pg_catalog.set_config('search_path', '', false)");
    } catch (error) {
      await session.close();
      throw error;
    }
    return session;
  }

  /** `server_version` as the server reported it at startup, e.g. `17.2`. */
  get serverVersionText(): string {
    return this.serverVersionReported;
  }

  /** Major version from the startup report (10 and later number majors by the first field). */
  get serverMajor(): number {
    return Number.parseInt(this.serverVersionReported, 10);
  }

  get backendPid(): number {
    return this.backendKey?.processID ?? 0;
  }

  /** Runs one statement; rows come back with `pg`'s default type parsing (int8 as string). */
  async query<T extends pg.QueryResultRow = Record<string, unknown>>(
    sql: string,
    params?: unknown[],
  ): Promise<T[]> {
    try {
      const result = await this.client.query<T>(sql, params);
      return result.rows;
    } catch (error) {
      throw new StrataError(
        'postgres',
        `query failed: ${serverErrorText(error)}query was: ${sql}`,
        {
          cause: error,
        },
      );
    }
  }

  /**
   * Asks the server to cancel the statement this session is running, as libpq's PQcancel does:
   * a CancelRequest with the key from BackendKeyData over a new socket, no authentication.
   */
  async cancel(): Promise<void> {
    if (!this.backendKey) return;
    await sendCancelRequest(this.client.host, this.client.port, this.backendKey);
  }

  /** True once the connection has failed (the server closed it, the network broke). */
  get isBroken(): boolean {
    return this.brokenError !== null;
  }

  async close(): Promise<void> {
    try {
      await this.client.end();
    } catch {
      // The socket is already gone: closing has nothing left to do.
    }
  }

  /**
   * `primary_conninfo` for a replica restored from this backup: the session's effective libpq
   * parameters without password, passfile, options, replication, dbname and
   * fallback_application_name, in libpq's PQconninfoOptions order. Keywords a libpq of the
   * server's major would not know are left out, so a standby of that major can parse the string.
   */
  primaryConninfo(): string {
    const major = this.serverMajor;
    const sslmode = process.env['PGSSLMODE'] || 'prefer';
    const pairs: Array<[string, string, number]> = [
      ['user', this.client.user ?? '', 0],
      ['channel_binding', 'prefer', 13],
      ['host', this.client.host, 0],
      ['port', String(this.client.port), 0],
      ['sslmode', sslmode, 0],
      ['sslcompression', '0', 0],
      ['sslsni', '1', 14],
      ['ssl_min_protocol_version', 'TLSv1.2', 13],
      ['gssencmode', 'prefer', 12],
      ['krbsrvname', 'postgres', 0],
      ['target_session_attrs', 'any', 0],
    ];
    return pairs
      .filter(([, value, sinceMajor]) => value !== '' && major >= sinceMajor)
      .map(([key, value]) => `${key}=${conninfoValue(value)}`)
      .join(' ');
  }
}

/** Opens a session and resets search_path (CVE-2018-1058) before any other statement. */
export function connectPostgres(options: ConnectionOptions, logger: Logger): Promise<PgSession> {
  return PgSession.open(options, logger);
}

/**
 * A physical replication connection (startup parameter `replication=true`), which accepts only
 * replication commands and SHOW over the simple query protocol. The caller ends it.
 */
export async function connectReplication(options: ConnectionOptions): Promise<pg.Client> {
  const config: pg.ClientConfig & { replication: string } = {
    ...clientConfigOf(options),
    replication: 'true',
  };
  const client = new pg.Client(config);
  // A broken connection also fails the statement in flight, which is where callers see it; without
  // a listener the client's 'error' event would be an uncaught exception.
  client.on('error', () => undefined);
  try {
    await client.connect();
  } catch (error) {
    throw new StrataError(
      'postgres',
      `could not connect to database ${config.database}: ${errorText(error)}`,
      {
        cause: error,
      },
    );
  }
  return client;
}
