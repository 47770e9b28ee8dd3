import { runCli } from './runCli.js';

// The entry point of the `strata` command (bundled to dist/strata.mjs). A first SIGINT/SIGTERM
// asks the running command to stop cleanly (a backup marks itself ERROR); the exit code is set
// rather than forced so pending writes finish.
const controller = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => controller.abort());
}

const exitCode = await runCli(process.argv.slice(2), {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
  signal: controller.signal,
  programName: process.argv[1] ?? 'strata',
});
process.exitCode = exitCode;
