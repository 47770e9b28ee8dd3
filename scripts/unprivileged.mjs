// PostgreSQL refuses to run as root and CI runs as root. Tests and benchmarks therefore run as an
// unprivileged user: as root, the user `strata` (or STRATA_TEST_USER) is created when missing and
// the command runs as that user; as any other user, it runs as is. Servers and the tool then run
// as the same user, as in production.
import { execFileSync, spawnSync } from 'node:child_process';
import { dirname } from 'node:path';

export const testUser = process.env.STRATA_TEST_USER ?? 'strata';
const home = `/var/lib/${testUser}-home`;

export function ensureTestUser(root) {
  if (process.getuid() !== 0) return;
  const exists = spawnSync('id', ['-u', testUser], { stdio: 'ignore' }).status === 0;
  if (!exists) {
    execFileSync(
      'useradd',
      ['--system', '--create-home', '--home-dir', home, '--shell', '/bin/bash', testUser],
      {
        stdio: 'inherit',
      },
    );
  }
  // The checkout may sit under a root-only directory: the test user must reach and read it.
  let dir = root;
  while (dir !== '/') {
    spawnSync('chmod', ['o+x', dir]);
    dir = dirname(dir);
  }
  spawnSync('chmod', ['-R', 'o+rX', root]);
  // The UI's end-to-end tests save a screenshot of each screen into docs/screenshots (committed,
  // shown in the README): the one place in the checkout the test user writes to.
  const screenshots = `${root}/docs/screenshots`;
  spawnSync('mkdir', ['-p', screenshots]);
  spawnSync('chown', ['-R', testUser, screenshots]);
}

/** Runs `command` (argv) and returns its exit status. */
export function runAsTestUser(command, options = {}) {
  const [program, ...args] = command;
  const result =
    process.getuid() === 0
      ? spawnSync('runuser', ['-u', testUser, '--', program, ...args], {
          stdio: 'inherit',
          ...options,
          env: { ...process.env, HOME: home, USER: testUser, LOGNAME: testUser },
        })
      : spawnSync(program, args, { stdio: 'inherit', ...options });
  return result.status ?? 1;
}
