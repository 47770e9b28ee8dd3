#!/usr/bin/env node
// Bundles the CLI into one file (dist/strata.mjs): it starts fast, which matters for
// archive_command, which PostgreSQL runs once per WAL segment.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: [join(root, 'core', 'cli', 'main.ts')],
  outfile: join(root, 'dist', 'strata.mjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  // pg optionally requires pg-native; Strata uses the pure JavaScript client.
  external: ['pg-native'],
  banner: {
    js: "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
