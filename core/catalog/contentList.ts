import { StrataError, isStrataError } from '../errors.js';
import { crc32c } from '../format/crc32c.js';
import { parseInt64Field, requireField, scanControlLine } from './controlLine.js';
import type { ControlLineContext } from './controlLine.js';
import { parseCompressAlgorithm } from './optionValues.js';
import type { FileEntry } from './types.js';

/**
 * `backup_content.control`, the file list of a backup (spec/catalog-format.md §6): one line per
 * file or directory. Read with pg_probackup's tolerant scanner, written byte for byte as
 * pg_probackup 2.5 writes it, so that `content-crc` (CRC32C of the whole file, §6.4) matches.
 */

/** Splits a file into lines without their `\n`; a final line without `\n` still counts. */
export function splitLines(text: string): string[] {
  const lines = text.split('\n');
  if (lines[lines.length - 1] === '') lines.pop();
  return lines;
}

function parseContentLine(context: ControlLineContext): FileEntry {
  const fields = scanControlLine(context);
  const mandatoryInt = (name: string): bigint =>
    parseInt64Field(requireField(fields, name, context), context) ?? -1n;
  const optionalInt = (name: string): bigint | undefined => {
    const value = fields.get(name);
    return value === undefined ? undefined : parseInt64Field(value, context);
  };
  // Values land in C fields of these widths in pg_probackup (int, uint32 Oid/CRC, mode_t).
  const toUint32 = (value: bigint): number => Number(BigInt.asUintN(32, value));
  const int32 = (value: bigint | undefined): number | undefined =>
    value === undefined ? undefined : Number(BigInt.asIntN(32, value));
  const uint32 = (value: bigint | undefined): number | undefined =>
    value === undefined ? undefined : toUint32(value);

  const path = requireField(fields, 'path', context);
  const size = Number(mandatoryInt('size'));
  const mode = toUint32(mandatoryInt('mode'));
  const isDatafile = mandatoryInt('is_datafile') !== 0n;
  const isCfs = (optionalInt('is_cfs') ?? 0n) !== 0n;
  const crc = toUint32(mandatoryInt('crc'));
  let compressAlg: FileEntry['compressAlg'];
  try {
    compressAlg = parseCompressAlgorithm(fields.get('compress_alg') ?? '');
  } catch (error) {
    if (!isStrataError(error)) throw error;
    throw new StrataError(
      'format',
      `${error.message} in line ${context.line} of file "${context.path}"`,
      {
        cause: error,
      },
    );
  }
  const fullSize = optionalInt('full_size');
  const hdrOff = optionalInt('hdr_off');
  const linked = fields.get('linked');
  return {
    path,
    size,
    mode,
    isDatafile,
    isCfs,
    crc,
    compressAlg,
    externalDirNum: int32(optionalInt('external_dir_num')) ?? 0,
    dbOid: uint32(optionalInt('dbOid')) ?? 0,
    fullSize: fullSize === undefined ? undefined : Number(fullSize),
    segno: int32(optionalInt('segno')),
    linked: linked === '' ? undefined : linked,
    nBlocks: int32(optionalInt('n_blocks')),
    nHeaders: int32(optionalInt('n_headers')),
    hdrCrc: uint32(optionalInt('hdr_crc')),
    hdrOff: hdrOff === undefined ? undefined : BigInt.asUintN(64, hdrOff),
    hdrSize: int32(optionalInt('hdr_size')),
  };
}

/**
 * Parses the whole list. A line without a mandatory field (path, size, mode, is_datafile, crc) or
 * with a malformed value is one StrataError('format') naming the file and the line.
 */
export function parseContentList(text: string, path: string): FileEntry[] {
  return splitLines(text).map((line, index) =>
    parseContentLine({ path, line: index + 1, text: line }),
  );
}

function assertRepresentable(value: string, what: string, entry: FileEntry): void {
  if (/["\n]/.test(value)) {
    throw new StrataError(
      'format',
      `${what} of "${entry.path}" contains a double quote or a line break, which backup_content.control cannot store`,
    );
  }
}

/**
 * One line as pg_probackup writes it, without its `\n`: the nine fixed fields joined by `", "`,
 * then `full_size`, `segno` (data files), `linked`, `n_blocks`, `n_headers`, `hdr_crc`, `hdr_off`,
 * `hdr_size` each after a bare `,`.
 */
export function formatContentLine(entry: FileEntry): string {
  assertRepresentable(entry.path, 'Path', entry);
  let line =
    `{"path":"${entry.path}", "size":"${entry.size}", "mode":"${entry.mode}", ` +
    `"is_datafile":"${entry.isDatafile ? 1 : 0}", "is_cfs":"${entry.isCfs ? 1 : 0}", ` +
    `"crc":"${entry.crc}", "compress_alg":"${entry.compressAlg}", ` +
    `"external_dir_num":"${entry.externalDirNum}", "dbOid":"${entry.dbOid}"`;
  if (entry.fullSize !== undefined && entry.fullSize !== 0 && entry.fullSize !== entry.size) {
    line += `,"full_size":"${entry.fullSize}"`;
  }
  if (entry.isDatafile) line += `,"segno":"${entry.segno ?? 0}"`;
  if (entry.linked) {
    assertRepresentable(entry.linked, 'Link target', entry);
    line += `,"linked":"${entry.linked}"`;
  }
  if (entry.nBlocks !== undefined && entry.nBlocks > 0) line += `,"n_blocks":"${entry.nBlocks}"`;
  if (entry.nHeaders !== undefined && entry.nHeaders > 0) {
    line +=
      `,"n_headers":"${entry.nHeaders}","hdr_crc":"${entry.hdrCrc ?? 0}"` +
      `,"hdr_off":"${entry.hdrOff ?? 0n}","hdr_size":"${entry.hdrSize ?? 0}"`;
  }
  return `${line}}`;
}

/** The complete file: every line followed by `\n`. */
export function formatContentList(entries: readonly FileEntry[]): Buffer {
  return Buffer.from(entries.map((entry) => `${formatContentLine(entry)}\n`).join(''), 'utf8');
}

/** `content-crc` of backup.control: CRC32C of the list's bytes exactly as stored. */
export function contentListCrc(bytes: Uint8Array): number {
  return crc32c(bytes);
}
