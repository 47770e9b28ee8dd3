import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultBackupMeta } from '../../catalog/backupControl.js';
import type { CatalogBackup } from '../../catalog/catalog.js';
import type { FileEntry } from '../../catalog/types.js';
import { StrataError } from '../../errors.js';
import { LocalStorage } from '../../storage/local/localStorage.js';
import { checkPartialRestoreOptions, selectExcludedDatabases } from './partialRestore.js';

const MAP =
  '{"dbOid":"5", "datname":"postgres"}\n' +
  '{"dbOid":"16384", "datname":"sales"}\n' +
  '{"dbOid":"16385", "datname":"hr"}\n' +
  '{"dbOid":"16390", "datname":"Sales"}\n';

const mapEntry: FileEntry = {
  path: 'database_map',
  size: MAP.length,
  mode: 0o100600,
  isDatafile: false,
  isCfs: false,
  crc: 0,
  compressAlg: 'none',
  externalDirNum: 0,
  dbOid: 0,
  fullSize: undefined,
  segno: undefined,
  linked: undefined,
  nBlocks: undefined,
  nHeaders: undefined,
  hdrCrc: undefined,
  hdrOff: undefined,
  hdrSize: undefined,
};

let root: string;
const storage = new LocalStorage();

function backupWithMap(name: string, map: string | undefined): CatalogBackup {
  const dir = join(root, name);
  mkdirSync(join(dir, 'database'), { recursive: true });
  if (map !== undefined) writeFileSync(join(dir, 'database', 'database_map'), map);
  return { ...defaultBackupMeta(), id: name, status: 'OK', dir, problems: [] };
}

async function failure(run: Promise<unknown>): Promise<string> {
  try {
    await run;
  } catch (error) {
    expect(error).toBeInstanceOf(StrataError);
    return (error as StrataError).message;
  }
  throw new Error('expected a failure');
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'strata-partial-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('selectExcludedDatabases', () => {
  it('turns --db-include into the OIDs of every other database of the map, postgres included', async () => {
    const backup = backupWithMap('INC001', MAP);
    const excluded = await selectExcludedDatabases(storage, backup, [mapEntry], {
      dbInclude: ['sales'],
    });
    expect([...excluded.oids].sort()).toEqual([16385, 16390, 5]);
    expect(excluded.names).toEqual(['postgres', 'hr', 'Sales']);
  });

  it('turns --db-exclude into the OIDs of the named databases, matching names exactly', async () => {
    const backup = backupWithMap('EXC001', MAP);
    const excluded = await selectExcludedDatabases(storage, backup, [mapEntry], {
      dbExclude: ['hr', 'Sales'],
    });
    expect([...excluded.oids]).toEqual([16385, 16390]);
    expect(excluded.names).toEqual(['hr', 'Sales']);
  });

  it('refuses names that are not in the map, templates included', async () => {
    const backup = backupWithMap('UNK001', MAP);
    expect(
      await failure(
        selectExcludedDatabases(storage, backup, [mapEntry], { dbExclude: ['template1'] }),
      ),
    ).toBe("Failed to find a database 'template1' in database_map of backup UNK001");
    expect(
      await failure(
        selectExcludedDatabases(storage, backup, [mapEntry], { dbInclude: ['sales', 'nope'] }),
      ),
    ).toBe("Failed to find a database 'nope' in database_map of backup UNK001");
  });

  it('refuses an include list naming every database (nothing left to exclude)', async () => {
    const backup = backupWithMap('ALL001', MAP);
    expect(
      await failure(
        selectExcludedDatabases(storage, backup, [mapEntry], {
          dbInclude: ['postgres', 'sales', 'hr', 'Sales'],
        }),
      ),
    ).toBe('Failed to find a match in database_map of backup ALL001 for partial restore');
  });

  it('refuses a backup without a listed, readable and non-empty database_map', async () => {
    const unlisted = backupWithMap('NOM001', MAP);
    expect(
      await failure(selectExcludedDatabases(storage, unlisted, [], { dbExclude: ['hr'] })),
    ).toBe("Backup NOM001 doesn't contain a database_map, partial restore is impossible.");
    const empty = backupWithMap('EMP001', '');
    expect(
      await failure(selectExcludedDatabases(storage, empty, [mapEntry], { dbExclude: ['hr'] })),
    ).toBe('Backup EMP001 has empty or mangled database_map, partial restore is impossible.');
    const garbled = backupWithMap('GAR001', '{"datname":"hr"}\n');
    expect(
      await failure(selectExcludedDatabases(storage, garbled, [mapEntry], { dbExclude: ['hr'] })),
    ).toBe('Backup GAR001 has empty or mangled database_map, partial restore is impossible.');
    const missing = backupWithMap('MIS001', undefined);
    expect(
      await failure(selectExcludedDatabases(storage, missing, [mapEntry], { dbExclude: ['hr'] })),
    ).toBe(
      `Cannot open "${join(missing.dir, 'database', 'database_map')}": No such file or directory`,
    );
  });
});

describe('checkPartialRestoreOptions', () => {
  it('refuses both lists together and templates in the include list', () => {
    expect(() => checkPartialRestoreOptions({ dbInclude: ['a'], dbExclude: ['b'] })).toThrow(
      "You cannot specify '--db-include' and '--db-exclude' together",
    );
    expect(() => checkPartialRestoreOptions({ dbInclude: ['template0'] })).toThrow(
      "Databases 'template0' and 'template1' cannot be used for partial restore or validation",
    );
    expect(() => checkPartialRestoreOptions({ dbExclude: ['template1'] })).not.toThrow();
  });
});
