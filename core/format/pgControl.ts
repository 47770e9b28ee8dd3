/**
 * global/pg_control: ControlFileData of src/include/catalog/pg_control.h, PostgreSQL 11 to 18, as
 * laid out by x86-64 / ARM64 compilers (little-endian, 8-byte alignment of 64-bit fields). The
 * layout is chosen by pg_control_version, which PostgreSQL keeps at offset 8 in every version.
 */
import { StrataError } from '../errors.js';
import { crc32c } from './crc32c.js';
import type { Lsn } from './lsn.js';

/** PG_CONTROL_FILE_SIZE: the file is always 8192 bytes; the struct is zero-padded to that size. */
export const PG_CONTROL_FILE_SIZE_BYTES = 8192;

/** Offsets every version shares (fields before checkPointCopy). */
const SYSTEM_IDENTIFIER = 0;
const PG_CONTROL_VERSION = 8;
const CATALOG_VERSION_NO = 12;
const STATE = 16;
const TIME = 24;
const CHECKPOINT = 32;
const CHECKPOINT_COPY = 40;

/** Byte offsets of the fields Strata reads, for one ControlFileData layout. */
interface ControlFileLayout {
  /** Oldest major that writes this pg_control_version. */
  major: number;
  /** Offsets inside CheckPoint, relative to checkPointCopy. */
  checkPoint: {
    redo: number;
    thisTimeLineId: number;
    prevTimeLineId: number;
    fullPageWrites: number;
    /** PG 11: uint32 nextXidEpoch followed by uint32 nextXid; PG 12+: FullTransactionId. */
    nextXid: number;
    nextXidIsEpochPair: boolean;
    nextOid: number;
    time: number;
    oldestActiveXid: number;
  };
  minRecoveryPoint: number;
  minRecoveryPointTli: number;
  backupStartPoint: number;
  backupEndPoint: number;
  backupEndRequired: number;
  walLevel: number;
  maxConnections: number;
  blcksz: number;
  relsegSize: number;
  xlogBlcksz: number;
  xlogSegSize: number;
  dataChecksumVersion: number;
  crc: number;
}

/**
 * PG 11 (pg_control_version 1100): prevCheckPoint is gone (removed in 11) and CheckPoint still
 * carries nextXidEpoch + nextXid as two uint32, so CheckPoint is 80 bytes; ControlFileData has no
 * max_wal_senders yet and keeps float4ByVal.
 */
const LAYOUT_11: ControlFileLayout = {
  major: 11,
  checkPoint: {
    redo: 0,
    thisTimeLineId: 8,
    prevTimeLineId: 12,
    fullPageWrites: 16,
    nextXid: 20,
    nextXidIsEpochPair: true,
    nextOid: 28,
    time: 56,
    oldestActiveXid: 72,
  },
  minRecoveryPoint: 128,
  minRecoveryPointTli: 136,
  backupStartPoint: 144,
  backupEndPoint: 152,
  backupEndRequired: 160,
  walLevel: 164,
  maxConnections: 172,
  blcksz: 208,
  relsegSize: 212,
  xlogBlcksz: 216,
  xlogSegSize: 220,
  dataChecksumVersion: 244,
  crc: 280,
};

/**
 * PG 12 (1201) introduced FullTransactionId nextXid (8-byte aligned, so CheckPoint grows to 88
 * bytes) and max_wal_senders. PG 13 (1300, also used by 14, 15 and 16) dropped float4ByVal, and
 * PG 17 (1700) put wal_level into CheckPoint's padding after fullPageWrites: neither moves a
 * field Strata reads.
 */
const LAYOUT_12: ControlFileLayout = {
  major: 12,
  checkPoint: {
    redo: 0,
    thisTimeLineId: 8,
    prevTimeLineId: 12,
    fullPageWrites: 16,
    nextXid: 24,
    nextXidIsEpochPair: false,
    nextOid: 32,
    time: 64,
    oldestActiveXid: 80,
  },
  minRecoveryPoint: 136,
  minRecoveryPointTli: 144,
  backupStartPoint: 152,
  backupEndPoint: 160,
  backupEndRequired: 168,
  walLevel: 172,
  maxConnections: 180,
  blcksz: 216,
  relsegSize: 220,
  xlogBlcksz: 224,
  xlogSegSize: 228,
  dataChecksumVersion: 252,
  crc: 288,
};

/** PG 18 (1800) added bool default_char_signedness before the 32-byte mock authentication nonce. */
const LAYOUT_18: ControlFileLayout = { ...LAYOUT_12, major: 18, crc: 292 };

const layouts = new Map<number, ControlFileLayout>([
  [1100, LAYOUT_11],
  [1201, LAYOUT_12],
  [1300, { ...LAYOUT_12, major: 13 }],
  [1700, { ...LAYOUT_12, major: 17 }],
  [1800, LAYOUT_18],
]);

/**
 * pg_control_version 1300 is shared by PostgreSQL 13 to 16; catalog_version_no tells them apart.
 * Each entry is the catalog version of that major's release (catversion.h), which its minor
 * releases keep; betas and development snapshots of the next major carry newer ones. A 1300 file
 * newer than 15's release is therefore 16.
 */
const CATALOG_VERSION_UPPER_BOUNDS_1300: ReadonlyArray<
  [major: number, lastCatalogVersion: number]
> = [
  [13, 202007201],
  [14, 202107181],
  [15, 202209061],
];

export interface ControlFile {
  systemIdentifier: bigint;
  pgControlVersion: number;
  catalogVersionNo: number;
  /** DBState: 0 starting up, 1 shut down, 2 shut down in recovery, 3 shutting down, 4 in crash recovery, 5 in archive recovery, 6 in production. */
  state: number;
  /** pg_time_t of the last pg_control update, seconds since the Unix epoch. */
  time: bigint;
  checkPoint: Lsn;
  checkPointCopy: {
    redo: Lsn;
    thisTimeLineId: number;
    prevTimeLineId: number;
    fullPageWrites: boolean;
    /** Full 64-bit next transaction ID (epoch << 32 | xid). */
    nextXid: bigint;
    nextOid: number;
    time: bigint;
    oldestActiveXid: number;
  };
  minRecoveryPoint: Lsn;
  minRecoveryPointTli: number;
  backupStartPoint: Lsn;
  backupEndPoint: Lsn;
  backupEndRequired: boolean;
  /** WalLevel: 0 minimal, 1 replica, 2 logical. */
  walLevel: number;
  maxConnections: number;
  blcksz: number;
  relsegSize: number;
  xlogBlcksz: number;
  xlogSegSize: number;
  /** 0 without data checksums, 1 (PG_DATA_CHECKSUM_VERSION) with them. */
  dataChecksumVersion: number;
  /** The CRC32C stored in the file (what pg_probackup lists as the file's `crc`). */
  crc: number;
  /** offsetof(ControlFileData, crc): the CRC covers bytes [0, crcOffset). */
  crcOffset: number;
  major: number;
}

/**
 * The oldest PostgreSQL major that writes this pg_control_version (1300 is shared by 13 to 16;
 * parseControlFile resolves those with the catalog version). Throws for unknown versions.
 */
export function controlFileMajor(pgControlVersion: number): number {
  return layoutFor(pgControlVersion).major;
}

function layoutFor(pgControlVersion: number): ControlFileLayout {
  const layout = layouts.get(pgControlVersion);
  if (layout === undefined) {
    throw new StrataError(
      'format',
      `Unsupported pg_control version ${pgControlVersion} in global/pg_control: Strata reads PostgreSQL 11 to 18 (pg_control versions ${[...layouts.keys()].join(', ')})`,
    );
  }
  return layout;
}

function majorOf(
  pgControlVersion: number,
  catalogVersionNo: number,
  layout: ControlFileLayout,
): number {
  if (pgControlVersion !== 1300) return layout.major;
  for (const [major, lastCatalogVersion] of CATALOG_VERSION_UPPER_BOUNDS_1300) {
    if (catalogVersionNo <= lastCatalogVersion) return major;
  }
  return 16;
}

function dataView(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function checkSize(buf: Uint8Array): void {
  if (buf.length !== PG_CONTROL_FILE_SIZE_BYTES) {
    throw new StrataError(
      'format',
      `global/pg_control has ${buf.length} bytes, expected ${PG_CONTROL_FILE_SIZE_BYTES}: the file is truncated or not a PostgreSQL control file`,
    );
  }
}

/** Layout of a pg_control image, from its version field; throws for unknown versions. */
function layoutOf(buf: Uint8Array): ControlFileLayout {
  checkSize(buf);
  return layoutFor(dataView(buf).getUint32(PG_CONTROL_VERSION, true));
}

/** True when the stored CRC32C matches the control data (false for unknown versions too). */
export function controlFileCrcValid(buf: Uint8Array): boolean {
  if (buf.length !== PG_CONTROL_FILE_SIZE_BYTES) return false;
  const layout = layouts.get(dataView(buf).getUint32(PG_CONTROL_VERSION, true));
  if (layout === undefined) return false;
  return crc32c(buf.subarray(0, layout.crc)) === dataView(buf).getUint32(layout.crc, true);
}

export function parseControlFile(buf: Uint8Array): ControlFile {
  const layout = layoutOf(buf);
  const view = dataView(buf);
  const u32 = (offset: number): number => view.getUint32(offset, true);
  const u64 = (offset: number): bigint => view.getBigUint64(offset, true);
  const i64 = (offset: number): bigint => view.getBigInt64(offset, true);
  const bool = (offset: number): boolean => view.getUint8(offset) !== 0;

  const storedCrc = u32(layout.crc);
  const computedCrc = crc32c(buf.subarray(0, layout.crc));
  if (storedCrc !== computedCrc) {
    throw new StrataError(
      'format',
      `global/pg_control has an invalid CRC (stored ${storedCrc}, computed ${computedCrc}): the file is corrupt`,
    );
  }

  const cp = layout.checkPoint;
  const nextXid = cp.nextXidIsEpochPair
    ? (BigInt(u32(CHECKPOINT_COPY + cp.nextXid)) << 32n) |
      BigInt(u32(CHECKPOINT_COPY + cp.nextXid + 4))
    : u64(CHECKPOINT_COPY + cp.nextXid);
  const pgControlVersion = u32(PG_CONTROL_VERSION);
  const catalogVersionNo = u32(CATALOG_VERSION_NO);
  return {
    systemIdentifier: u64(SYSTEM_IDENTIFIER),
    pgControlVersion,
    catalogVersionNo,
    state: u32(STATE),
    time: i64(TIME),
    checkPoint: u64(CHECKPOINT),
    checkPointCopy: {
      redo: u64(CHECKPOINT_COPY + cp.redo),
      thisTimeLineId: u32(CHECKPOINT_COPY + cp.thisTimeLineId),
      prevTimeLineId: u32(CHECKPOINT_COPY + cp.prevTimeLineId),
      fullPageWrites: bool(CHECKPOINT_COPY + cp.fullPageWrites),
      nextXid,
      nextOid: u32(CHECKPOINT_COPY + cp.nextOid),
      time: i64(CHECKPOINT_COPY + cp.time),
      oldestActiveXid: u32(CHECKPOINT_COPY + cp.oldestActiveXid),
    },
    minRecoveryPoint: u64(layout.minRecoveryPoint),
    minRecoveryPointTli: u32(layout.minRecoveryPointTli),
    backupStartPoint: u64(layout.backupStartPoint),
    backupEndPoint: u64(layout.backupEndPoint),
    backupEndRequired: bool(layout.backupEndRequired),
    walLevel: view.getInt32(layout.walLevel, true),
    maxConnections: view.getInt32(layout.maxConnections, true),
    blcksz: u32(layout.blcksz),
    relsegSize: u32(layout.relsegSize),
    xlogBlcksz: u32(layout.xlogBlcksz),
    xlogSegSize: u32(layout.xlogSegSize),
    dataChecksumVersion: u32(layout.dataChecksumVersion),
    crc: storedCrc,
    crcOffset: layout.crc,
    major: majorOf(pgControlVersion, catalogVersionNo, layout),
  };
}

/**
 * A copy of a valid pg_control with minRecoveryPoint (and, when given, minRecoveryPointTLI) replaced
 * and the CRC recomputed: what pg_probackup's set_min_recovery_point() stores for a backup taken
 * from a standby (it sets minRecoveryPoint to the stop LSN and leaves the TLI as it was).
 */
export function withMinRecoveryPoint(buf: Uint8Array, lsn: Lsn, tli?: number): Buffer {
  const layout = layoutOf(buf);
  if (!controlFileCrcValid(buf)) {
    throw new StrataError(
      'format',
      'global/pg_control has an invalid CRC: refusing to set its minimum recovery point',
    );
  }
  if (lsn < 0n || lsn > 0xffffffffffffffffn) {
    throw new StrataError('internal', `Invalid minimum recovery point ${lsn}`);
  }
  const copy = Buffer.from(buf);
  const view = dataView(copy);
  view.setBigUint64(layout.minRecoveryPoint, lsn, true);
  if (tli !== undefined) view.setUint32(layout.minRecoveryPointTli, tli, true);
  view.setUint32(layout.crc, crc32c(copy.subarray(0, layout.crc)), true);
  return copy;
}
