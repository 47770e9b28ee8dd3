#!/usr/bin/env node
// Bundles the desktop app's processes into dist/electron/: main.mjs (Electron main), apiHost.mjs
// (the engine's utilityProcess) with the -j file workers beside it (fileWorker.mjs), and
// preload.cjs — sandboxed preloads cannot load ES modules or other files, so it is one CommonJS
// file. The CLI bundle and the renderer (dist/renderer) are built by scripts/build.mjs.
import { build } from 'esbuild';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// `--outdir DIR` builds elsewhere (the Electron launch test builds into a scratch app directory).
const outdirFlag = process.argv.indexOf('--outdir');
const outdir = outdirFlag > 0 ? process.argv[outdirFlag + 1] : join(root, 'dist', 'electron');
const common = { bundle: true, platform: 'node', sourcemap: true, logLevel: 'warning' };

await build({
  ...common,
  entryPoints: {
    main: join(root, 'electron', 'main.ts'),
    apiHost: join(root, 'electron', 'apiHost.ts'),
    fileWorker: join(root, 'core', 'commands', 'workers', 'fileWorker.ts'),
  },
  outdir,
  outExtension: { '.js': '.mjs' },
  format: 'esm',
  target: 'node20',
  // Electron provides `electron`; lz4-napi loads its native addon and ssh2 its optional one from
  // node_modules at run time (as in scripts/build.mjs).
  external: ['electron', 'pg-native', 'lz4-napi', 'ssh2'],
  // The -j workers start from the bundle beside this one; remote commands copy the agent bundle
  // that scripts/build.mjs puts in dist/.
  define: {
    STRATA_FILE_WORKER: JSON.stringify('./fileWorker.mjs'),
    STRATA_AGENT_BUNDLE: JSON.stringify('../strata-agent.mjs'),
  },
  banner: {
    js: "import { createRequire as strataCreateRequire } from 'node:module'; const require = strataCreateRequire(import.meta.url);",
  },
});

await build({
  ...common,
  entryPoints: [join(root, 'electron', 'preload.ts')],
  outfile: join(outdir, 'preload.cjs'),
  format: 'cjs',
  target: 'chrome120',
  external: ['electron'],
});
