// Plain JavaScript so that vitest loads it without transpiling: the suite runs as an
// unprivileged user who cannot write to node_modules/.vite-temp.
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  cacheDir: join(tmpdir(), 'strata-vitest-cache'),
  test: {
    include: [
      'core/**/*.test.ts',
      'electron/**/*.test.ts',
      'e2e/**/*.test.ts',
      'renderer/**/*.test.ts',
    ],
    testTimeout: 120_000,
    hookTimeout: 180_000,
    pool: 'forks',
    // Most of a test's time is spent waiting on PostgreSQL and the disk, so two test files at a
    // time keep both cores busy on a two-core machine.
    maxWorkers: 2,
    globalSetup: ['core/testing/globalSetup.ts'],
  },
});
