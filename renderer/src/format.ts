/**
 * Human-readable values for a dense DBA screen, each paired with its exact form for a `title`
 * (hover) attribute. Pure functions, no DOM.
 */

const SIZE_UNITS = ['kB', 'MB', 'GB', 'TB', 'PB'] as const;

/**
 * Sizes as PostgreSQL's pg_size_pretty prints them (1024-based units named kB, MB, …), with one
 * decimal below 10 of a unit so small differences between backups stay visible.
 */
export function formatBytes(sizeBytes: number | null): string {
  if (sizeBytes === null || sizeBytes < 0) return '—';
  if (sizeBytes < 1024) return `${sizeBytes} B`;
  let value = sizeBytes;
  let unit = -1;
  while (value >= 1024 && unit < SIZE_UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const shown = value < 10 ? value.toFixed(1) : Math.round(value).toString();
  return `${shown} ${SIZE_UNITS[unit]}`;
}

/** The exact byte count with thousands separators, for hover text. */
export function exactBytes(sizeBytes: number | null): string {
  if (sizeBytes === null || sizeBytes < 0) return 'unknown';
  return `${sizeBytes.toLocaleString('en-US')} bytes`;
}

/** A duration as `4s`, `2m 05s`, `3h 07m`, `2d 04h`. */
export function formatDuration(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds) || seconds < 0) return '—';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  const pad = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m ${pad(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${pad(Math.floor((s % 3600) / 60))}m`;
  return `${Math.floor(s / 86400)}d ${pad(Math.floor((s % 86400) / 3600))}h`;
}

/**
 * Unix seconds as `YYYY-MM-DD HH:MM:SS+00` in UTC: the form pg_probackup's `show` prints and
 * PostgreSQL's recovery_target_time accepts, so a time copied from the screen is a valid target.
 */
export function formatTime(unixSeconds: number | null): string {
  if (unixSeconds === null) return '—';
  const iso = new Date(unixSeconds * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}+00`;
}

/** The backup ratio pg_probackup shows as Zratio: bytes before compression over bytes stored. */
export function compressionRatio(uncompressedBytes: number, dataBytes: number | null): string {
  if (dataBytes === null || dataBytes <= 0 || uncompressedBytes <= 0) return '—';
  return (uncompressedBytes / dataBytes).toFixed(2);
}

/** `X/Y` (PostgreSQL's %X/%X) to a 64-bit position; null when the text is not an LSN. */
export function parseLsnText(text: string): bigint | null {
  const match = /^\s*([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})\s*$/.exec(text);
  if (!match) return null;
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** A 64-bit position as PostgreSQL prints an LSN: high and low 32 bits in upper-case hex. */
export function formatLsnText(lsn: bigint): string {
  const high = (lsn >> 32n).toString(16).toUpperCase();
  const low = (lsn & 0xffffffffn).toString(16).toUpperCase();
  return `${high}/${low}`;
}

/**
 * The first LSN of a WAL segment named `TTTTTTTTXXXXXXXXYYYYYYYY` (timeline, then the segment
 * number split as XLogSegmentsPerXLogId segments per 4 GB "xlogid"; see XLogFileName in
 * xlog_internal.h). Null when the name is not a segment name.
 */
export function segmentNameToLsn(name: string, walSegmentSizeBytes: number): bigint | null {
  if (!/^[0-9A-F]{24}$/i.test(name) || walSegmentSizeBytes <= 0) return null;
  const segSize = BigInt(walSegmentSizeBytes);
  const segmentsPerXlogId = 0x100000000n / segSize;
  const xlogId = BigInt(`0x${name.slice(8, 16)}`);
  const segInId = BigInt(`0x${name.slice(16, 24)}`);
  return (xlogId * segmentsPerXlogId + segInId) * segSize;
}
