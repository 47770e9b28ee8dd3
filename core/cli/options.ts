import { StrataError } from '../errors.js';

/**
 * pg_probackup registers every option globally: any subcommand parses all of them and ignores the
 * ones it does not use (cli-behaviour.md §1.2). This table is that registry.
 */
export interface OptionSpec {
  long: string;
  short?: string;
  /** `flag` takes no argument; `value` takes one; `list` takes one and may repeat. */
  kind: 'flag' | 'value' | 'list';
  aliases?: string[];
}

const spec = (
  long: string,
  kind: OptionSpec['kind'],
  short?: string,
  aliases?: string[],
): OptionSpec => ({
  long,
  kind,
  ...(short ? { short } : {}),
  ...(aliases ? { aliases } : {}),
});

export const optionTable: OptionSpec[] = [
  spec('backup-path', 'value', 'B'),
  spec('instance', 'value'),
  spec('pgdata', 'value', 'D'),
  spec('backup-id', 'value', 'i'),
  spec('threads', 'value', 'j'),
  spec('progress', 'flag'),
  spec('no-sync', 'flag'),
  spec('no-color', 'flag'),
  spec('help', 'flag', '?'),
  spec('version', 'flag', 'V'),
  spec('backup-mode', 'list', 'b'),
  spec('smooth-checkpoint', 'flag', 'C'),
  spec('stream', 'flag'),
  spec('slot', 'value', 'S', ['primary-slot-name']),
  spec('temp-slot', 'flag'),
  spec('perm-slot', 'flag', 'P'),
  spec('backup-pg-log', 'flag'),
  spec('external-dirs', 'value', 'E'),
  spec('archive-timeout', 'value'),
  spec('no-validate', 'flag'),
  spec('skip-block-validation', 'flag'),
  spec('note', 'value'),
  spec('ttl', 'value'),
  spec('expire-time', 'value'),
  spec('delete-expired', 'flag', undefined, ['expired']),
  spec('merge-expired', 'flag'),
  spec('delete-wal', 'flag', undefined, ['wal']),
  spec('retention-redundancy', 'value'),
  spec('retention-window', 'value'),
  spec('wal-depth', 'value'),
  spec('start-time', 'value'),
  spec('dry-run', 'flag'),
  spec('recovery-target', 'value'),
  spec('immediate', 'flag'),
  spec('recovery-target-time', 'value', undefined, ['time']),
  spec('recovery-target-xid', 'value', undefined, ['xid']),
  spec('recovery-target-lsn', 'value', undefined, ['lsn']),
  spec('recovery-target-name', 'value'),
  spec('recovery-target-inclusive', 'value', undefined, ['inclusive']),
  spec('recovery-target-timeline', 'value', undefined, ['timeline']),
  spec('recovery-target-action', 'value'),
  spec('restore-as-replica', 'flag', 'R'),
  spec('primary-conninfo', 'value'),
  spec('tablespace-mapping', 'list', 'T'),
  spec('external-mapping', 'list'),
  spec('skip-external-dirs', 'flag'),
  spec('waldir', 'value', 'X'),
  spec('incremental-mode', 'list', 'I'),
  spec('db-include', 'list'),
  spec('db-exclude', 'list'),
  spec('destroy-all-other-dbs', 'flag'),
  spec('force', 'flag'),
  spec('restore-command', 'value'),
  spec('archive-host', 'value'),
  spec('archive-port', 'value'),
  spec('archive-user', 'value'),
  spec('status', 'value'),
  spec('wal-file-name', 'value'),
  spec('wal-file-path', 'value'),
  spec('batch-size', 'value'),
  spec('overwrite', 'flag'),
  spec('no-ready-rename', 'flag'),
  spec('compress', 'flag'),
  spec('compress-algorithm', 'list'),
  spec('compress-level', 'value'),
  spec('prefetch-dir', 'value'),
  spec('no-validate-wal', 'flag'),
  spec('port', 'value'),
  spec('demo', 'flag'),
  spec('format', 'list'),
  spec('archive', 'flag'),
  spec('no-scale-units', 'flag'),
  spec('amcheck', 'flag'),
  spec('heapallindexed', 'flag'),
  spec('checkunique', 'flag'),
  spec('parent', 'flag'),
  spec('source-pgdata', 'value'),
  spec('destination-pgdata', 'value'),
  spec('exclude-path', 'list', 'x'),
  spec('pgdatabase', 'value', 'd'),
  spec('pghost', 'value', 'h'),
  spec('pgport', 'value', 'p'),
  spec('pguser', 'value', 'U'),
  spec('no-password', 'flag', 'w'),
  spec('password', 'flag', 'W'),
  spec('log-level-console', 'list'),
  spec('log-level-file', 'list'),
  spec('log-format-console', 'list'),
  spec('log-format-file', 'list'),
  spec('log-filename', 'value'),
  spec('error-log-filename', 'value'),
  spec('log-directory', 'value'),
  spec('log-rotation-size', 'value'),
  spec('log-rotation-age', 'value'),
  spec('remote-proto', 'value'),
  spec('remote-host', 'value'),
  spec('remote-port', 'value'),
  spec('remote-path', 'value'),
  spec('remote-user', 'value'),
  spec('ssh-options', 'value'),
  spec('ssh-config', 'value'),
  spec('master-db', 'value'),
  spec('master-host', 'value'),
  spec('master-port', 'value'),
  spec('master-user', 'value'),
  spec('replica-timeout', 'value'),
  spec('system-identifier', 'value'),
  spec('xlog-seg-size', 'value'),
];

/** Parsed options by long name; list options keep every value, scalar ones the single value. */
export interface ParsedArgs {
  command: string | undefined;
  values: Map<string, string[]>;
  positionals: string[];
}

const byLong = new Map<string, OptionSpec>();
const byShort = new Map<string, OptionSpec>();
for (const option of optionTable) {
  byLong.set(option.long, option);
  for (const alias of option.aliases ?? []) byLong.set(alias, option);
  if (option.short) byShort.set(option.short, option);
}

function missingArgument(token: string): StrataError {
  return new StrataError(
    'usage',
    `Option '${token}' requires an argument. Try "pg_probackup --help" for more information.`,
  );
}

function optionLabel(option: OptionSpec): string {
  return option.short ? `-${option.short}, --${option.long}` : `--${option.long}`;
}

/** getopt_long also accepts an unambiguous prefix of a long option name. */
function findLong(name: string): OptionSpec | undefined {
  const exact = byLong.get(name);
  if (exact) return exact;
  const candidates = new Set<OptionSpec>();
  for (const [long, option] of byLong) if (long.startsWith(name)) candidates.add(option);
  return candidates.size === 1 ? [...candidates][0] : undefined;
}

/** GNU getopt_long semantics with argument permutation; the subcommand must be argv[1]. */
export function parseArgs(argv: string[]): ParsedArgs {
  const values = new Map<string, string[]>();
  const positionals: string[] = [];
  const store = (option: OptionSpec, value: string) => {
    const existing = values.get(option.long);
    if (existing && option.kind !== 'list') {
      throw new StrataError(
        'usage',
        `Option ${optionLabel(option)} should be specified only once: '${value}'`,
      );
    }
    values.set(option.long, [...(existing ?? []), value]);
  };
  let command: string | undefined = argv[0];
  let i = 1;
  if (command === '--help' || command === '-?') command = 'help';
  else if (command === '--version' || command === '-V') command = 'version';
  else if (command?.startsWith('-')) {
    command = undefined;
    i = 0;
  }
  for (; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (token.startsWith('--')) {
      const eq = token.indexOf('=');
      const name = token.slice(2, eq < 0 ? undefined : eq);
      const option = findLong(name);
      if (!option) throw missingArgument(token);
      if (option.kind === 'flag') {
        if (eq >= 0)
          throw new StrataError('usage', `option '--${option.long}' doesn't allow an argument`);
        store(option, 'true');
      } else if (eq >= 0) {
        store(option, token.slice(eq + 1));
      } else {
        const next = argv[++i];
        if (next === undefined) throw missingArgument(token);
        store(option, next);
      }
    } else if (token.startsWith('-') && token.length > 1) {
      for (let k = 1; k < token.length; k++) {
        const option = byShort.get(token[k]!);
        if (!option) throw missingArgument(token);
        if (option.kind === 'flag') {
          store(option, 'true');
          continue;
        }
        const rest = token.slice(k + 1);
        if (rest.length > 0) store(option, rest);
        else {
          const next = argv[++i];
          if (next === undefined) throw missingArgument(token);
          store(option, next);
        }
        break;
      }
    } else {
      positionals.push(token);
    }
  }
  return { command, values, positionals };
}

/** Read access to parsed options with pg_probackup's type errors. */
export class Options {
  constructor(private readonly parsed: ParsedArgs) {}

  has(long: string): boolean {
    return this.parsed.values.has(long);
  }

  flag(long: string): boolean {
    return this.parsed.values.has(long);
  }

  /** Last value of the option (scalar options have one; repeatable ones: last wins). */
  string(long: string): string | undefined {
    const list = this.parsed.values.get(long);
    if (!list) return undefined;
    const value = list[list.length - 1]!;
    if (value === '')
      throw new StrataError('usage', `Option --${long} should be a valid string: '${value}'`);
    return value;
  }

  list(long: string): string[] {
    return this.parsed.values.get(long) ?? [];
  }

  /** C strtol base 0 semantics: decimal, 0x hex, leading-0 octal. */
  int(
    long: string,
    kind: 'a 32bit signed integer' | 'a 32bit unsigned integer' = 'a 32bit signed integer',
  ): number | undefined {
    const text = this.string(long);
    if (text === undefined) return undefined;
    const value = parseCInteger(text);
    const unsigned = kind === 'a 32bit unsigned integer';
    if (value === undefined || (unsigned && value < 0) || Math.abs(value) > 0xffffffff) {
      throw new StrataError('usage', `Option --${long} should be ${kind}: '${text}'`);
    }
    return value;
  }
}

export function parseCInteger(text: string): number | undefined {
  const trimmed = text.trim();
  let match = /^([+-]?)0[xX]([0-9a-fA-F]+)$/.exec(trimmed);
  if (match) return (match[1] === '-' ? -1 : 1) * parseInt(match[2]!, 16);
  match = /^([+-]?)0([0-7]+)$/.exec(trimmed);
  if (match) return (match[1] === '-' ? -1 : 1) * parseInt(match[2]!, 8);
  if (/^[+-]?\d+$/.test(trimmed)) return Number(trimmed);
  return undefined;
}
