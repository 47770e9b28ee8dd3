import { StrataError } from '../errors.js';
import { splitLines } from './contentList.js';
import { parseInt64Field, requireField, scanControlLine } from './controlLine.js';
import type { DatabaseMapEntry } from './types.js';

/**
 * `database/database_map` (spec/catalog-format.md §14.1): one `{"dbOid":"<oid>", "datname":"<name>"}`
 * line per database except the templates, in the quoted-field syntax of the file list.
 */

export function parseDatabaseMap(text: string, path: string): DatabaseMapEntry[] {
  return splitLines(text).map((line, index) => {
    const context = { path, line: index + 1, text: line };
    const fields = scanControlLine(context);
    const dbOid = parseInt64Field(requireField(fields, 'dbOid', context), context) ?? -1n;
    return {
      dbOid: Number(BigInt.asUintN(32, dbOid)),
      datname: requireField(fields, 'datname', context),
    };
  });
}

export function formatDatabaseMap(entries: readonly DatabaseMapEntry[]): string {
  return entries
    .map((entry) => {
      if (/["\n]/.test(entry.datname)) {
        throw new StrataError(
          'format',
          `Database name "${entry.datname}" contains a double quote or a line break, which database_map cannot store`,
        );
      }
      return `{"dbOid":"${entry.dbOid}", "datname":"${entry.datname}"}\n`;
    })
    .join('');
}
