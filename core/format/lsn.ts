import { StrataError } from '../errors.js';

/** A WAL position (XLogRecPtr): a 64-bit byte offset into the WAL stream. */
export type Lsn = bigint;

export const InvalidLsn: Lsn = 0n;

const lsnPattern = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

/** Parses `HI/LO` (1–8 hex digits each side), as pg_probackup and PostgreSQL print LSNs. */
export function parseLsn(text: string): Lsn {
  const match = lsnPattern.exec(text.trim());
  if (!match) throw new StrataError('usage', `Invalid LSN "${text}"`);
  return (BigInt(`0x${match[1]}`) << 32n) | BigInt(`0x${match[2]}`);
}

/** `%X/%X`: upper-case hex, no zero padding. */
export function formatLsn(lsn: Lsn): string {
  const hi = Number(lsn >> 32n);
  const lo = Number(lsn & 0xffffffffn);
  return `${hi.toString(16).toUpperCase()}/${lo.toString(16).toUpperCase()}`;
}
