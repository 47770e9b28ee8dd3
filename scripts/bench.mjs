#!/usr/bin/env node
// `npm run bench`: builds the CLI and the benchmark, then runs the benchmark as an unprivileged
// user (PostgreSQL refuses root), like scripts/test.mjs.
import { spawnSync } from 'node:child_process';
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTestUser, runAsTestUser } from './unprivileged.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
// Two levels below the root like core/testing/, whose code finds the repository from its own path.
const outfile = join(root, 'build', 'bench', 'bench.mjs');
await build({
  entryPoints: [join(root, 'bench', 'fullBackup.bench.ts')],
  outfile,
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  packages: 'external',
  logLevel: 'warning',
});
ensureTestUser(root);
process.exit(runAsTestUser([process.execPath, outfile], { cwd: root }));
