#!/usr/bin/env node
// `npm test`: builds the CLI, then runs vitest as an unprivileged user. PostgreSQL refuses to run
// as root and CI runs as root, so as root this script creates the user `strata` (when missing)
// and runs the whole suite as that user: servers and the tool run as the same user, as in
// production.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const testUser = process.env.STRATA_TEST_USER ?? 'strata';
const run = (command, args, options = {}) => {
  const result = spawnSync(command, args, { stdio: 'inherit', cwd: root, ...options });
  if (result.status !== 0) process.exit(result.status ?? 1);
};

run(process.execPath, [join(root, 'scripts', 'build.mjs')]);

const vitest = [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', '--configLoader', 'native', ...process.argv.slice(2)];
if (process.getuid() !== 0) {
  run(process.execPath, vitest);
} else {
  const exists = spawnSync('id', ['-u', testUser], { stdio: 'ignore' }).status === 0;
  if (!exists) {
    execFileSync('useradd', ['--system', '--create-home', '--home-dir', `/var/lib/${testUser}-home`, '--shell', '/bin/bash', testUser], { stdio: 'inherit' });
  }
  // The checkout may sit under a root-only directory: the test user needs to reach and read it.
  let dir = root;
  while (dir !== '/') {
    spawnSync('chmod', ['o+x', dir]);
    dir = dirname(dir);
  }
  spawnSync('chmod', ['-R', 'o+rX', root]);
  const env = { ...process.env, HOME: `/var/lib/${testUser}-home`, USER: testUser, LOGNAME: testUser };
  run('runuser', ['-u', testUser, '--', process.execPath, ...vitest], { env });
}
