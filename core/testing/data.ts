import type { TestCluster } from './cluster.js';

/** Per-table fingerprints of every user database: `db.schema.table` → `rows:md5`. */
export type ClusterFingerprint = Record<string, string>;

export interface GeneratedDataOptions {
  /** Databases to create besides `postgres`, each with its own tables. */
  databases: string[];
  /** Rows in each database's main table. */
  rowsPerTable: number;
}

/**
 * Fills a cluster with data that exercises a physical backup: several databases, heap tables with
 * btree indexes, a TOASTed column, a table in `postgres` itself, and an unlogged-free layout so
 * every table must survive a restore.
 */
export async function generateData(
  cluster: TestCluster,
  options: GeneratedDataOptions,
): Promise<void> {
  for (const database of options.databases) {
    await cluster.query('postgres', `CREATE DATABASE "${database}"`);
  }
  for (const database of ['postgres', ...options.databases]) {
    await cluster.withClient(database, async (client) => {
      await client.query(`
        CREATE TABLE accounts (id int PRIMARY KEY, owner text NOT NULL, balance numeric(12,2), opened date);
        CREATE INDEX accounts_owner ON accounts (owner);
        INSERT INTO accounts
          SELECT g, 'owner-' || (g % 997), (g * 7.31) % 10000, DATE '2020-01-01' + (g % 1500)
          FROM generate_series(1, ${options.rowsPerTable}) g;
        CREATE TABLE documents (id serial PRIMARY KEY, body text);
        INSERT INTO documents (body)
          SELECT string_agg(md5(g::text || '-' || i::text), '') FROM generate_series(1, 40) g, generate_series(1, 20) i GROUP BY i;
      `);
    });
  }
}

/** Rows and an order-independent content hash of every user table of every non-template database. */
export async function fingerprintCluster(cluster: TestCluster): Promise<ClusterFingerprint> {
  const databases = await cluster.query<{ datname: string }>(
    'postgres',
    'SELECT datname FROM pg_database WHERE datallowconn AND NOT datistemplate ORDER BY datname',
  );
  const fingerprint: ClusterFingerprint = {};
  for (const { datname } of databases) {
    await cluster.withClient(datname, async (client) => {
      const tables = await client.query<{ schema: string; name: string }>(`
        SELECT n.nspname AS schema, c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
        ORDER BY 1, 2`);
      for (const { schema, name } of tables.rows) {
        const qualified = `"${schema}"."${name}"`;
        const result = await client.query<{ rows: string; hash: string }>(
          `SELECT count(*)::text AS rows, coalesce(md5(string_agg(t::text, E'\\n' ORDER BY t::text)), '') AS hash FROM ${qualified} t`,
        );
        const row = result.rows[0]!;
        fingerprint[`${datname}.${schema}.${name}`] = `${row.rows}:${row.hash}`;
      }
      // Read through the btree itself, so a restored but broken index shows up too.
      const hasOwnerIndex = await client.query(
        "SELECT 1 FROM pg_class WHERE relname = 'accounts_owner'",
      );
      if (hasOwnerIndex.rowCount) {
        await client.query('SET enable_seqscan = off');
        const byIndex = await client.query<{ n: string; hash: string }>(
          "SELECT count(*)::text AS n, md5(string_agg(owner || id, ',' ORDER BY owner, id)) AS hash FROM accounts WHERE owner >= ''",
        );
        await client.query('RESET enable_seqscan');
        fingerprint[`${datname}.accounts_owner`] = `${byIndex.rows[0]!.n}:${byIndex.rows[0]!.hash}`;
      }
    });
  }
  return fingerprint;
}
