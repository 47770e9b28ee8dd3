import { existsSync } from 'node:fs';
import { strataCliPath } from './pgBinaries.js';

/** Vitest global setup: the integration tests need the built CLI bundle and a non-root user. */
export default function setup(): void {
  if (process.getuid?.() === 0) {
    throw new Error(
      'Tests start PostgreSQL, which refuses root: run them with `npm test`, which drops privileges.',
    );
  }
  if (!existsSync(strataCliPath)) {
    throw new Error(`${strataCliPath} is missing: run \`npm run build\` first (npm test does it).`);
  }
}
