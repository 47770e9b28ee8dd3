#!/usr/bin/env node
// `npm run bench`: builds the CLI and the benchmark, then runs the benchmark as an unprivileged
// user (PostgreSQL refuses root), like scripts/test.mjs.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTestUser, runAsTestUser } from './unprivileged.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
  stdio: 'inherit',
});
if (built.status !== 0) process.exit(built.status ?? 1);
// Two levels below the root like core/testing/, whose code finds the repository from its own path.
const outdir = join(root, 'build', 'bench');
// The local benchmark, then the remote one (PGDATA reached through OpenSSH on 127.0.0.1).
const benches = { bench: 'fullBackup.bench.ts', remote: 'remote.bench.ts' };
await build({
  entryPoints: Object.fromEntries(
    Object.entries(benches).map(([name, file]) => [name, join(root, 'bench', file)]),
  ),
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
});
ensureTestUser(root);
let status = 0;
for (const name of Object.keys(benches)) {
  status = runAsTestUser([process.execPath, join(outdir, `${name}.mjs`)], { cwd: root }) || status;
}
process.exit(status);
