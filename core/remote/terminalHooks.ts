import type { Logger } from '../log.js';
import type { SshHooks } from './ssh/sshConnection.js';

/** The environment variable the CLI reads an encrypted private key's passphrase from. */
export const PASSPHRASE_ENV = 'STRATA_SSH_PASSPHRASE';

const CTRL_C = '\u0003';
const CTRL_D = '\u0004';
const BACKSPACE = '\u007f';

/** Reads a line from the terminal without echoing it; undefined when stdin is not a terminal. */
async function promptHidden(question: string): Promise<string | undefined> {
  const input = process.stdin;
  if (!input.isTTY) return undefined;
  process.stderr.write(question);
  input.setRawMode(true);
  input.resume();
  try {
    return await new Promise<string | undefined>((resolve) => {
      let typed = '';
      const onData = (chunk: Buffer) => {
        for (const char of chunk.toString('utf8')) {
          if (char === '\r' || char === '\n' || char === CTRL_D) {
            input.off('data', onData);
            resolve(typed);
            return;
          }
          if (char === CTRL_C) {
            input.off('data', onData);
            resolve(undefined);
            return;
          }
          typed = char === BACKSPACE ? typed.slice(0, -1) : typed + char;
        }
      };
      input.on('data', onData);
    });
  } finally {
    input.setRawMode(false);
    input.pause();
    process.stderr.write('\n');
  }
}

/**
 * The CLI's answers to SSH decisions: a key's passphrase from STRATA_SSH_PASSPHRASE, else asked
 * on the terminal; unknown host keys are never confirmed interactively (the CLI refuses them
 * unless `-o StrictHostKeyChecking=accept-new`); notes go to the log at LOG level.
 */
export function terminalSshHooks(logger: Logger): SshHooks {
  return {
    passphrase: async (keyPath) =>
      process.env[PASSPHRASE_ENV] ??
      (await promptHidden(`Enter passphrase for key '${keyPath}': `)),
    log: (message) => logger.log('LOG', message),
  };
}
