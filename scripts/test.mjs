#!/usr/bin/env node
// `npm test`: builds the CLI bundle the end-to-end tests run, then runs vitest as an unprivileged
// user (see unprivileged.mjs). Extra arguments go to vitest (a file, `-t name`).
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ensureTestUser, runAsTestUser } from './unprivileged.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const built = spawnSync(process.execPath, [join(root, 'scripts', 'build.mjs')], {
  stdio: 'inherit',
});
if (built.status !== 0) process.exit(built.status ?? 1);

ensureTestUser(root);
// The config is plain JavaScript loaded natively: the test user cannot write next to it.
const vitest = [
  join(root, 'node_modules', 'vitest', 'vitest.mjs'),
  'run',
  '--configLoader',
  'native',
];
process.exit(runAsTestUser([process.execPath, ...vitest, ...process.argv.slice(2)], { cwd: root }));
