import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { strataCliPath } from '../core/testing/pgBinaries.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the built `strata` CLI as a separate process, as a DBA's shell or archive_command would. */
export function runStrata(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  return new Promise((resolveResult) => {
    execFile(
      process.execPath,
      [strataCliPath, ...args],
      { cwd: options.cwd, env: { ...process.env, ...options.env }, maxBuffer: 64 << 20 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolveResult({ code, stdout, stderr });
      },
    );
  });
}

/** Like runStrata, but fails the test with the command's output when it exits non-zero. */
export async function strata(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<CliResult> {
  const result = await runStrata(args, options);
  if (result.code !== 0) {
    throw new Error(
      `strata ${args.join(' ')} exited ${result.code}\n${result.stderr}${result.stdout}`,
    );
  }
  return result;
}

/** Starts the CLI without waiting, for tests that kill it. */
export function spawnStrata(args: string[]): ChildProcess {
  return spawn(process.execPath, [strataCliPath, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
}

/** The backup ID from pg_probackup's `INFO: Backup <ID> completed` line. */
export function completedBackupId(stderr: string): string {
  const match = /INFO: Backup (\w+) completed/.exec(stderr);
  if (!match) throw new Error(`no "Backup … completed" line in:\n${stderr}`);
  return match[1]!;
}
