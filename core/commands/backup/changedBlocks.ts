import { StrataError } from '../../errors.js';
import { formatLsn, parseLsn, type Lsn } from '../../format/lsn.js';
import { RELSEG_SIZE } from '../../format/page.js';
import { WalReader, type WalSegmentSource } from '../../format/wal/walReader.js';
import type { PgSession } from '../../postgres/connection.js';

/**
 * Changed blocks per relation segment file, keyed by the file's path relative to PGDATA
 * (`base/16384/16385.1`); block numbers are within the segment file.
 */
export type ChangedBlockMap = Map<string, Set<number>>;

/** pg_tablespace OIDs of `global` and `pg_default` (catalog/pg_tablespace.dat). */
const GLOBALTABLESPACE_OID = 1664;
const DEFAULTTABLESPACE_OID = 1663;
const MAIN_FORKNUM = 0;

/** The path of a relation's main-fork segment, as PostgreSQL's relpath() lays it out. */
export function relationSegmentPath(
  spcOid: number,
  dbOid: number,
  relNumber: number,
  segno: number,
  tablespaceVersionDir: string,
): string {
  let base: string;
  if (spcOid === GLOBALTABLESPACE_OID) base = `global/${relNumber}`;
  else if (spcOid === DEFAULTTABLESPACE_OID) base = `base/${dbOid}/${relNumber}`;
  else base = `pg_tblspc/${spcOid}/${tablespaceVersionDir}/${dbOid}/${relNumber}`;
  return segno > 0 ? `${base}.${segno}` : base;
}

function markBlock(
  map: ChangedBlockMap,
  spcOid: number,
  dbOid: number,
  relNumber: number,
  blockNo: number,
  tablespaceVersionDir: string,
): void {
  const segno = Math.floor(blockNo / RELSEG_SIZE);
  const path = relationSegmentPath(spcOid, dbOid, relNumber, segno, tablespaceVersionDir);
  let blocks = map.get(path);
  if (!blocks) map.set(path, (blocks = new Set()));
  blocks.add(blockNo % RELSEG_SIZE);
}

/**
 * PAGE mode: every main-fork block referenced by a WAL record in [fromLsn, toLsn), read from the
 * archive (catalog-format §7.3.3). A gap in the archive fails the backup: a page map with holes
 * would silently miss changed pages.
 */
export async function changedBlocksFromWal(
  source: WalSegmentSource,
  timelineId: number,
  walSegmentSizeBytes: number,
  fromLsn: Lsn,
  toLsn: Lsn,
  tablespaceVersionDir: string,
): Promise<ChangedBlockMap> {
  const map: ChangedBlockMap = new Map();
  const reader = new WalReader({ source, timelineId, walSegmentSizeBytes });
  let next: Lsn | undefined = fromLsn;
  for (;;) {
    const result = await reader.readRecord(next);
    next = undefined;
    if (result.kind === 'end') {
      throw new StrataError(
        'wal',
        `Pagemap extraction failed: WAL between ${formatLsn(fromLsn)} and ${formatLsn(toLsn)} is not readable in the archive (${result.message}). Check archive_command, or take a DELTA or FULL backup`,
      );
    }
    const { record } = result;
    if (record.lsn >= toLsn) break;
    for (const block of record.blocks) {
      if (block.forkNumber !== MAIN_FORKNUM) continue;
      markBlock(
        map,
        block.spcOid,
        block.dbOid,
        block.relNumber,
        block.blockNo,
        tablespaceVersionDir,
      );
    }
  }
  return map;
}

/**
 * PTRACK mode through the ptrack 2.x extension: `ptrack_get_pagemapset(lsn)` returns, per
 * relation segment, a bitmap whose bit `n % 8` of byte `n / 8` marks block n of that segment.
 */
export async function changedBlocksFromPtrack(
  session: PgSession,
  sinceLsn: Lsn,
  parentStartLsn: Lsn,
): Promise<ChangedBlockMap> {
  const extension = await session.query<{ schema: string; version: string }>(
    "SELECT extnamespace::regnamespace::text AS schema, extversion AS version FROM pg_catalog.pg_extension WHERE extname = 'ptrack'",
  );
  const installed = extension[0];
  if (!installed)
    throw new StrataError('postgres', 'This PostgreSQL instance does not support ptrack');
  const schema = `"${installed.schema.replace(/"/g, '""')}"`;
  const version = (await session.query<{ v: string }>(`SELECT ${schema}.ptrack_version() AS v`))[0]!
    .v;
  if (Number.parseFloat(version) < 2) {
    throw new StrataError(
      'postgres',
      `ptrack extension version ${version} is too old: ptrack 2.0 or newer is required`,
    );
  }
  const mapSize = await session.query<{ setting: string }>(
    "SELECT setting FROM pg_catalog.pg_settings WHERE name = 'ptrack.map_size'",
  );
  if (!mapSize[0] || Number(mapSize[0].setting) === 0)
    throw new StrataError('postgres', 'Ptrack is disabled');
  const initLsnText = (
    await session.query<{ lsn: string }>(`SELECT ${schema}.ptrack_init_lsn()::text AS lsn`)
  )[0]!.lsn;
  const initLsn = parseLsn(initLsnText);
  if (initLsn > parentStartLsn) {
    throw new StrataError(
      'postgres',
      `LSN from ptrack_control ${initLsnText} is greater than Start LSN of previous backup ${formatLsn(parentStartLsn)}.\nCreate new full backup before an incremental one.`,
    );
  }
  const rows = await session.query<{ path: string; pagemap: Buffer }>(
    `SELECT path, pagemap FROM ${schema}.ptrack_get_pagemapset($1::pg_lsn) ORDER BY 1`,
    [formatLsn(sinceLsn)],
  );
  const map: ChangedBlockMap = new Map();
  for (const row of rows) {
    const blocks = new Set<number>();
    row.pagemap.forEach((byte, index) => {
      for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) blocks.add(index * 8 + bit);
    });
    map.set(row.path, blocks);
  }
  return map;
}

/**
 * SUMMARY mode (Strata's own, PostgreSQL 17+): the changed blocks come from the server's WAL
 * summaries (`summarize_wal = on`), which must cover [fromLsn, toLsn) on the timeline without a
 * hole. The summarizer writes a summary up to each checkpoint's redo point, so after
 * pg_backup_start the range up to the start LSN is summarised shortly; wait for it.
 */
export async function changedBlocksFromWalSummaries(
  session: PgSession,
  timelineId: number,
  fromLsn: Lsn,
  toLsn: Lsn,
  tablespaceVersionDir: string,
  timeoutMs: number,
): Promise<ChangedBlockMap> {
  const setting = await session.query<{ on: string }>(
    "SELECT current_setting('summarize_wal', true) AS on",
  );
  if (setting[0]?.on === null || setting[0]?.on === undefined) {
    throw new StrataError(
      'postgres',
      'SUMMARY backups need PostgreSQL 17 or newer (WAL summaries); take a DELTA or PAGE backup',
    );
  }
  if (setting[0].on !== 'on') {
    throw new StrataError(
      'postgres',
      'WAL summarization is off on this server: set summarize_wal = on (and reload) before the FULL backup a SUMMARY backup builds on, or take a DELTA backup',
    );
  }
  const started = Date.now();
  let delayMs = 10;
  for (;;) {
    const state = await session.query<{ tli: string; lsn: string }>(
      'SELECT summarized_tli AS tli, summarized_lsn::text AS lsn FROM pg_catalog.pg_get_wal_summarizer_state()',
    );
    const summarized = state[0];
    if (summarized && Number(summarized.tli) === timelineId && parseLsn(summarized.lsn) >= toLsn)
      break;
    if (Date.now() - started > timeoutMs) {
      throw new StrataError(
        'wal',
        `WAL summarizer did not reach ${formatLsn(toLsn)} in ${Math.round(timeoutMs / 1000)} seconds (it is at ${summarized?.lsn ?? 'unknown'}); check that the summarizer process runs`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, delayMs));
    delayMs = Math.min(delayMs * 2, 200);
  }
  const summaries = await session.query<{ start: string; end: string }>(
    'SELECT start_lsn::text AS start, end_lsn::text AS end FROM pg_catalog.pg_available_wal_summaries() WHERE tli = $1 AND end_lsn > $2::pg_lsn AND start_lsn < $3::pg_lsn ORDER BY start_lsn',
    [timelineId, formatLsn(fromLsn), formatLsn(toLsn)],
  );
  let covered = fromLsn;
  for (const summary of summaries) {
    if (parseLsn(summary.start) > covered) break;
    covered = parseLsn(summary.end) > covered ? parseLsn(summary.end) : covered;
  }
  if (covered < toLsn) {
    throw new StrataError(
      'wal',
      `WAL summaries do not cover the range ${formatLsn(fromLsn)} to ${formatLsn(toLsn)} on timeline ${timelineId} (covered up to ${formatLsn(covered)}): summaries older than wal_summary_keep_time are removed, or summarize_wal was off; take a FULL or DELTA backup`,
    );
  }
  const map: ChangedBlockMap = new Map();
  for (const summary of summaries) {
    const rows = await session.query<{
      relfilenode: string;
      reltablespace: string;
      reldatabase: string;
      relforknumber: number;
      relblocknumber: string;
      is_limit_block: boolean;
    }>(
      'SELECT relfilenode::text, reltablespace::text, reldatabase::text, relforknumber, relblocknumber::text, is_limit_block FROM pg_catalog.pg_wal_summary_contents($1, $2::pg_lsn, $3::pg_lsn)',
      [timelineId, summary.start, summary.end],
    );
    for (const row of rows) {
      // A limit block records a truncation; the file's current length (n_blocks) already says it.
      if (row.is_limit_block || row.relforknumber !== MAIN_FORKNUM) continue;
      markBlock(
        map,
        Number(row.reltablespace),
        Number(row.reldatabase),
        Number(row.relfilenode),
        Number(row.relblocknumber),
        tablespaceVersionDir,
      );
    }
  }
  return map;
}
