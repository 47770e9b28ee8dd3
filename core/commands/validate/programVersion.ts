import { StrataError } from '../../errors.js';

/**
 * pg_probackup's `parse_program_version`: `X.Y.Z` as `X*10000 + Y*100 + Z` (2.4.16 → 20416), the
 * number its format rules are keyed on (catalog-format.md §16.1). 0 when the backup has no
 * program-version; anything but three numeric fields is an error, as in pg_probackup.
 */
export function programVersionNumber(version: string | undefined): number {
  if (version === undefined || version === '') return 0;
  const match = /^(\d+)\.(\d+)\.(\d+)$/.exec(version.trim());
  if (!match) throw new StrataError('format', `Invalid program version "${version}"`);
  return Number(match[1]) * 10000 + Number(match[2]) * 100 + Number(match[3]);
}

/** 2.0.22 to 2.0.24 computed file CRCs with the traditional CRC-32; every other version with CRC-32C (§9). */
export function usesCrc32c(programVersionNum: number): boolean {
  return programVersionNum <= 20021 || programVersionNum >= 20025;
}

/** Since 2.0.25 the list's `crc` of global/pg_control is the CRC stored inside pg_control (§9). */
export const FIRST_VERSION_WITH_PG_CONTROL_CRC = 20025;
/** Since 2.0.23 a record of 8192 bytes is always a raw page; before, it could hold compressed data (§16.1). */
export const FIRST_VERSION_WITHOUT_RAW_SIZE_BUG = 20023;
/** Since 2.4.0 data files have page_header_map slices and unpadded payloads (§7.3.5, §8). */
export const FIRST_VERSION_WITH_HEADER_MAP = 20400;
