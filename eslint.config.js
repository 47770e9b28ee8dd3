import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';
import { builtinModules } from 'node:module';

const fsModules = ['fs', 'node:fs', 'fs/promises', 'node:fs/promises'];
const nodeBuiltins = builtinModules.filter((name) => !name.startsWith('_'));
const uiModules = ['electron', 'react', 'react-dom', 'zustand', '@tanstack/react-table'];

/** Layer rules of shared/DESIGN.md, enforced per folder so a broken layer fails `npm run lint`. */
function restrictImports(paths, patterns = []) {
  return {
    'no-restricted-imports': [
      'error',
      {
        paths: paths.map((name) => ({
          name,
          message: 'This layer may not import it (DESIGN.md).',
        })),
        patterns,
      },
    ],
  };
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'build/', 'test-results/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
    },
  },
  {
    files: ['core/**/*.ts'],
    rules: restrictImports(uiModules, [
      { group: ['**/renderer/**', '**/electron/**'], message: 'core/ never imports the UI.' },
    ]),
  },
  {
    files: ['core/format/**/*.ts'],
    ignores: ['core/format/**/*.test.ts', 'core/format/**/fixtures/**'],
    rules: restrictImports(
      [...uiModules, ...fsModules, 'pg', 'node:net', 'node:child_process'],
      [
        {
          group: ['../storage/**', '../catalog/**', '../postgres/**', '../commands/**'],
          message: 'core/format is bytes only.',
        },
      ],
    ),
  },
  {
    files: [
      'core/catalog/**/*.ts',
      'core/commands/**/*.ts',
      'core/postgres/**/*.ts',
      'core/cli/**/*.ts',
      'core/api/**/*.ts',
    ],
    ignores: ['**/*.test.ts'],
    rules: restrictImports(
      [...uiModules, ...fsModules],
      [{ group: ['**/renderer/**', '**/electron/**'], message: 'core/ never imports the UI.' }],
    ),
  },
  {
    // renderer/ runs in a browser page (Electron's sandboxed renderer or `strata ui`): no Node
    // APIs, and of core/ only the browser-safe API pieces (DESIGN.md: it talks to StrataApi only).
    files: ['renderer/**/*.{ts,tsx}'],
    languageOptions: { globals: { ...globals.browser } },
    rules: restrictImports(
      ['electron', ...nodeBuiltins],
      [
        { group: ['node:*'], message: 'renderer/ runs in a browser: no Node APIs (DESIGN.md).' },
        {
          regex:
            '(^|/)core/(?!api/(contract|httpClient|cliCommand|desktopBridge|catalogLocation)\\.js$)',
          message: 'renderer/ reaches the engine only through StrataApi (core/api/contract.ts).',
        },
      ],
    ),
  },
);
