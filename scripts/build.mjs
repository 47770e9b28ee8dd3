#!/usr/bin/env node
// Bundles the CLI into one file (dist/strata.mjs): it starts fast, which matters for
// archive_command, which PostgreSQL runs once per WAL segment. The file worker threads of `-j N`
// get their own bundle beside it (dist/fileWorker.mjs): a worker starts from a file of its own.
// The remote agent (dist/strata-agent.mjs) is one self-contained file that Strata copies to a
// database host over SSH and runs there with that host's Node.js.
import { build } from 'esbuild';
import { build as buildRenderer } from 'vite';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
await build({
  entryPoints: {
    strata: join(root, 'core', 'cli', 'main.ts'),
    fileWorker: join(root, 'core', 'commands', 'workers', 'fileWorker.ts'),
    'strata-agent': join(root, 'core', 'remote', 'agent', 'main.ts'),
  },
  outdir: join(root, 'dist'),
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  // pg optionally requires pg-native; Strata uses the pure JavaScript client. lz4-napi loads a
  // native addon from its per-platform npm package at run time, so it stays in node_modules (the
  // agent, without it, leaves lz4 to this side). ssh2 is loaded only by remote commands, from
  // node_modules: archive_command starts without it.
  external: ['pg-native', 'lz4-napi', 'ssh2'],
  // The worker pool finds the worker bundle by this name, next to the bundle it runs from.
  // Remote commands find the agent bundle they copy to a host the same way.
  define: {
    STRATA_FILE_WORKER: JSON.stringify('./fileWorker.mjs'),
    STRATA_AGENT_BUNDLE: JSON.stringify('./strata-agent.mjs'),
  },
  banner: {
    js: "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);",
  },
  logLevel: 'warning',
});

// The UI (renderer/) as static files in dist/renderer: `strata ui` serves them over HTTP and the
// Electron app loads them from file://, so every URL in the build is relative (`base: './'`).
// The output has no inline script and no eval, as the strict Content-Security-Policy of both
// requires; the module preload polyfill would be one more script to allow, and every browser
// Strata supports preloads modules natively.
await buildRenderer({
  configFile: false,
  root: join(root, 'renderer'),
  base: './',
  logLevel: 'warn',
  build: {
    outDir: join(root, 'dist', 'renderer'),
    emptyOutDir: true,
    target: 'chrome120',
    modulePreload: { polyfill: false },
    sourcemap: true,
    reportCompressedSize: false,
    rollupOptions: {
      // React libraries mark modules 'use client' for server-component bundlers; in a browser-only
      // bundle the directive means nothing, and the warning about dropping it is noise.
      onwarn(warning, warn) {
        if (warning.code !== 'MODULE_LEVEL_DIRECTIVE') warn(warning);
      },
    },
  },
});
