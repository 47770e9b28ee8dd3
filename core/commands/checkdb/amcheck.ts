import { StrataError, isStrataError } from '../../errors.js';
import type { Logger } from '../../log.js';
import {
  connectPostgres,
  serverErrorText,
  type ConnectionOptions,
  type PgSession,
} from '../../postgres/connection.js';

export interface AmcheckOptions {
  connection: ConnectionOptions;
  heapallindexed: boolean;
  checkunique: boolean;
  /** Parallel sessions per database (`-j`). */
  threads: number;
  progress: boolean;
  logger: Logger;
  signal?: AbortSignal;
}

export interface AmcheckIndexFailure {
  database: string;
  schema: string;
  index: string;
  /** The server's error as libpq prints it (`ERROR:  …`). */
  error: string;
}

export interface AmcheckSummary {
  checkedDatabases: string[];
  /** Databases without amcheck / amcheck_next, or not accepting connections. */
  skippedDatabases: string[];
  checkedIndexes: number;
  failures: AmcheckIndexFailure[];
}

/** The amcheck installation of one database. */
interface AmcheckExtension {
  name: string;
  schema: string;
  version: string;
  heapallindexedSupported: boolean;
  checkuniqueSupported: boolean;
}

interface IndexToCheck {
  oid: string;
  name: string;
  schema: string;
}

function quoteIdent(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * The newest of amcheck / amcheck_next in the database (pg_probackup's get_index_list), and
 * which bt_index_check arguments it takes. amcheck 1.0 has no `heapallindexed`; `checkunique`
 * exists from amcheck 1.4 (PostgreSQL 16) and is detected from the function's signature, which
 * also covers builds that backported it. pg_probackup never passes checkunique on vanilla builds.
 */
async function findAmcheck(session: PgSession): Promise<AmcheckExtension | undefined> {
  const [row] = await session.query<{ extname: string; nspname: string; extversion: string }>(
    'SELECT e.extname, n.nspname, e.extversion FROM pg_catalog.pg_namespace n' +
      ' JOIN pg_catalog.pg_extension e ON n.oid = e.extnamespace' +
      " WHERE e.extname IN ('amcheck'::name, 'amcheck_next'::name)" +
      ' ORDER BY e.extversion DESC LIMIT 1',
  );
  if (!row) return undefined;
  const checkunique = await session.query(
    'SELECT 1 FROM pg_catalog.pg_proc p WHERE p.pronamespace =' +
      ' (SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1)' +
      " AND p.proname = 'bt_index_check' AND 'checkunique' = ANY (p.proargnames)",
    [row.nspname],
  );
  return {
    name: row.extname,
    schema: row.nspname,
    version: row.extversion,
    heapallindexedSupported: row.extversion !== '1.0' && row.extversion !== '1',
    checkuniqueSupported: checkunique.length > 0,
  };
}

/**
 * Persistent, non-partitioned btree indexes. Indexes of shared catalogs (tablespace pg_global)
 * are the same in every database: they are checked only in the first database checked.
 */
async function listIndexes(session: PgSession, includeShared: boolean): Promise<IndexToCheck[]> {
  const sharedFilter = includeShared
    ? ''
    : " AND (cls.reltablespace IN (SELECT oid FROM pg_catalog.pg_tablespace WHERE spcname <> 'pg_global') OR cls.reltablespace = 0)";
  return session.query<IndexToCheck>(
    'SELECT cls.oid::text AS oid, cls.relname AS name, nmspc.nspname AS schema' +
      ' FROM pg_catalog.pg_index idx' +
      ' LEFT JOIN pg_catalog.pg_class cls ON idx.indexrelid = cls.oid' +
      ' LEFT JOIN pg_catalog.pg_namespace nmspc ON cls.relnamespace = nmspc.oid' +
      ' LEFT JOIN pg_catalog.pg_am am ON cls.relam = am.oid' +
      " WHERE am.amname = 'btree' AND cls.relpersistence <> 't' AND cls.relkind <> 'I'" +
      sharedFilter +
      ' ORDER BY nmspc.nspname DESC',
  );
}

function checkQuery(
  extension: AmcheckExtension,
  options: AmcheckOptions,
): { sql: string; params: unknown[] } {
  const fn = `${quoteIdent(extension.schema)}.bt_index_check`;
  if (extension.checkuniqueSupported) {
    return {
      sql: `SELECT ${fn}(index => $1::pg_catalog.regclass, heapallindexed => $2::boolean, checkunique => $3::boolean)`,
      params: [options.heapallindexed, options.checkunique],
    };
  }
  if (extension.heapallindexedSupported) {
    return {
      sql: `SELECT ${fn}(index => $1::pg_catalog.regclass, heapallindexed => $2::boolean)`,
      params: [options.heapallindexed],
    };
  }
  return { sql: `SELECT ${fn}(index => $1::pg_catalog.regclass)`, params: [] };
}

/**
 * bt_index_check on every index of one database in `threads` sessions that take the next index
 * from a shared list; failures are WARNINGs naming the index (pg_probackup's check_indexes).
 */
async function checkDatabaseIndexes(
  database: string,
  extension: AmcheckExtension,
  indexes: IndexToCheck[],
  options: AmcheckOptions,
): Promise<AmcheckIndexFailure[]> {
  const { logger } = options;
  const failures: AmcheckIndexFailure[] = [];
  const query = checkQuery(extension, options);
  let next = 0;
  const runThread = async (threadNo: number): Promise<void> => {
    let session: PgSession | undefined;
    try {
      while (next < indexes.length) {
        const position = next++;
        const index = indexes[position]!;
        if (options.signal?.aborted) {
          throw new StrataError(
            'interrupted',
            `Thread [${threadNo}]: interrupted during checkdb --amcheck`,
          );
        }
        if (options.progress) {
          logger.info(
            `Thread [${threadNo}]. Progress: (${position + 1}/${indexes.length}). Amchecking index '${index.schema}.${index.name}'`,
          );
        }
        session ??= await connectPostgres({ ...options.connection, pgdatabase: database }, logger);
        try {
          await session.query(query.sql, [index.oid, ...query.params]);
          logger.log(
            'LOG',
            `Thread [${threadNo}]. Amcheck succeeded in database '${database}' for index: '${index.schema}.${index.name}'`,
          );
        } catch (error) {
          if (!isStrataError(error) || error.code !== 'postgres' || session.isBroken) throw error;
          const text = serverErrorText(error.cause).trimEnd();
          logger.warning(
            `Thread [${threadNo}]. Amcheck failed in database '${database}' for index: '${index.schema}.${index.name}': ${text}`,
          );
          failures.push({ database, schema: index.schema, index: index.name, error: text });
        }
      }
    } finally {
      await session?.close();
    }
  };
  const threadCount = Math.max(1, Math.min(options.threads, indexes.length));
  await Promise.all(Array.from({ length: threadCount }, (_, i) => runThread(i + 1)));
  return failures;
}

/**
 * `checkdb --amcheck` (cli-behaviour.md §10): every database but template0/template1 that has
 * amcheck (or amcheck_next) gets its btree indexes checked. The summary messages and the final
 * ERROR are the caller's (they depend on block validation too).
 */
export async function amcheckInstance(options: AmcheckOptions): Promise<AmcheckSummary> {
  const { logger } = options;
  logger.info('Start amchecking PostgreSQL instance');
  const summary: AmcheckSummary = {
    checkedDatabases: [],
    skippedDatabases: [],
    checkedIndexes: 0,
    failures: [],
  };
  const main = await connectPostgres(options.connection, logger);
  let databases: Array<{ datname: string; datallowconn: boolean }>;
  try {
    databases = await main.query(
      'SELECT datname, datallowconn FROM pg_catalog.pg_database' +
        " WHERE datname NOT IN ('template0'::name, 'template1'::name) ORDER BY oid",
    );
  } finally {
    await main.close();
  }
  for (const { datname, datallowconn } of databases) {
    if (options.signal?.aborted)
      throw new StrataError('interrupted', 'checkdb --amcheck is interrupted.');
    if (!datallowconn) {
      logger.warning(`Database '${datname}' does not allow connections, it is not amchecked`);
      summary.skippedDatabases.push(datname);
      continue;
    }
    const session = await connectPostgres({ ...options.connection, pgdatabase: datname }, logger);
    let extension: AmcheckExtension | undefined;
    let indexes: IndexToCheck[] = [];
    try {
      extension = await findAmcheck(session);
      if (extension) {
        logger.info(
          `Amchecking database '${datname}' using extension '${extension.name}' version ${extension.version} from schema '${extension.schema}'`,
        );
        if (!extension.heapallindexedSupported && options.heapallindexed) {
          logger.warning(
            `Extension '${extension.name}' version ${extension.version} in schema '${extension.schema}' do not support 'heapallindexed' option`,
          );
        }
        if (!extension.checkuniqueSupported && options.checkunique) {
          logger.warning(
            `Extension '${extension.name}' version ${extension.version} in schema '${extension.schema}' do not support 'checkunique' parameter`,
          );
        }
        indexes = await listIndexes(session, summary.checkedDatabases.length === 0);
      }
    } finally {
      await session.close();
    }
    if (!extension) {
      logger.warning(
        `Extension 'amcheck' or 'amcheck_next' are not installed in database ${datname}`,
      );
      summary.skippedDatabases.push(datname);
      continue;
    }
    summary.checkedDatabases.push(datname);
    const failures = await checkDatabaseIndexes(datname, extension, indexes, options);
    summary.checkedIndexes += indexes.length;
    summary.failures.push(...failures);
    if (failures.length === 0) logger.info(`Amcheck succeeded for database '${datname}'`);
    else logger.warning(`Amcheck failed for database '${datname}'`);
  }
  return summary;
}
