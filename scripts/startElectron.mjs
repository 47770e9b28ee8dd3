#!/usr/bin/env node
// `npm start`: builds the CLI bundle (PostgreSQL runs it as archive_command / restore_command),
// the renderer and the Electron bundles, then opens the desktop app. The Electron binary is not
// fetched by `npm install` (package.json allowScripts denies electron's postinstall, so installs
// work offline and in CI); the first `npm start` downloads it with electron's own installer.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

function step(args) {
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  if (result.status !== 0) process.exit(result.status ?? 1);
}

// The CLI, the agent and the renderer (dist/), then the Electron processes (dist/electron/).
step([join(root, 'scripts', 'build.mjs')]);
step([join(root, 'scripts', 'buildElectron.mjs')]);

const require = createRequire(import.meta.url);
function electronBinary() {
  try {
    return require('electron');
  } catch {
    return undefined;
  }
}
let binary = electronBinary();
if (binary === undefined || !existsSync(binary)) {
  console.log('Downloading the Electron binary (once; npm install skips it on purpose)…');
  step([join(root, 'node_modules', 'electron', 'install.js')]);
  binary = electronBinary();
}
if (binary === undefined || !existsSync(binary)) {
  console.error(
    'The Electron binary is missing and could not be downloaded: check the network, then run npm start again.',
  );
  process.exit(1);
}
const app = spawn(binary, [root, ...process.argv.slice(2)], { cwd: root, stdio: 'inherit' });
app.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));
