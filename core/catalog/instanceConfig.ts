import { StrataError, isStrataError } from '../errors.js';
import type { Storage } from '../storage/storage.js';
import { storageErrorCode } from '../storage/storage.js';
import { normalizeKey, parseKeyValueText, quoteValue, assertSingleLine } from './keyValue.js';
import {
  parseBool,
  parseCompressAlgorithm,
  parseLogFormat,
  parseLogLevel,
} from './optionValues.js';
import type { LogFormat, LogLevelName } from './optionValues.js';
import type { CompressAlgorithm } from './types.js';
import { formatWithUnit, parseCInteger } from './units.js';
import type { OptionUnit } from './units.js';

/**
 * The instance configuration `backups/<instance>/pg_probackup.conf` (spec/catalog-format.md §4,
 * spec/cli-behaviour.md §1.5, §3.5). A field is present exactly when the option was set (in the
 * file or on the command line); defaults are applied by `effectiveInstanceConfig`, never written.
 */

export type { LogFormat, LogLevelName };

export interface InstanceConfig {
  pgdata?: string;
  systemIdentifier?: bigint;
  xlogSegSize?: number;
  externalDirs?: string;
  pgdatabase?: string;
  pghost?: string;
  pgport?: string;
  pguser?: string;
  masterDb?: string;
  masterHost?: string;
  masterPort?: string;
  masterUser?: string;
  replicaTimeoutSec?: number;
  archiveTimeoutSec?: number;
  archiveHost?: string;
  archivePort?: string;
  archiveUser?: string;
  restoreCommand?: string;
  logLevelConsole?: LogLevelName;
  logLevelFile?: LogLevelName;
  logFormatConsole?: LogFormat;
  logFormatFile?: LogFormat;
  logFilename?: string;
  errorLogFilename?: string;
  logDirectory?: string;
  logRotationSizeKb?: bigint;
  logRotationAgeMs?: bigint;
  retentionRedundancy?: number;
  retentionWindow?: number;
  walDepth?: number;
  compressAlgorithm?: CompressAlgorithm;
  compressLevel?: number;
  remoteProto?: string;
  remoteHost?: string;
  remotePort?: string;
  remotePath?: string;
  remoteUser?: string;
  sshOptions?: string;
  sshConfig?: string;
}

export type InstanceConfigKey = keyof InstanceConfig;
export type ConfigValue = string | number | bigint | boolean;

export type ConfigGroup =
  | 'Backup instance information'
  | 'Connection parameters'
  | 'Replica parameters'
  | 'Archive parameters'
  | 'Logging parameters'
  | 'Retention parameters'
  | 'Compression parameters'
  | 'Remote access parameters';

export type ConfigOptionType = 'string' | 'bool' | 'uint32' | 'uint64' | 'enum';

export interface ConfigOption {
  /** Long option name = key in the file. */
  name: string;
  /** One-letter command-line alias, which pg_probackup names in type errors (`-D, --pgdata`). */
  shortName?: string;
  field: InstanceConfigKey;
  group: ConfigGroup;
  type: ConfigOptionType;
  unit?: OptionUnit;
  /** Value pg_probackup uses when the option is not set; undefined = unset (not shown). */
  default?: ConfigValue;
  /** Command line only: in the file it is an error (`log-format-console`). */
  cliOnly: boolean;
  /** File only: on the command line it is an error (`system-identifier`, `xlog-seg-size`). */
  fileOnly: boolean;
}

/** pg_probackup's DEFAULT_XLOG_SEG_SIZE: assumed when `xlog-seg-size` is missing or 0. */
export const DEFAULT_XLOG_SEG_SIZE_BYTES = 16 * 1024 * 1024;

function option(
  name: string,
  field: InstanceConfigKey,
  group: ConfigGroup,
  type: ConfigOptionType,
  extra: Partial<
    Pick<ConfigOption, 'shortName' | 'unit' | 'default' | 'cliOnly' | 'fileOnly'>
  > = {},
): ConfigOption {
  return { name, field, group, type, cliOnly: false, fileOnly: false, ...extra };
}

const instanceGroup = 'Backup instance information';
const connectionGroup = 'Connection parameters';
const replicaGroup = 'Replica parameters';
const archiveGroup = 'Archive parameters';
const loggingGroup = 'Logging parameters';
const retentionGroup = 'Retention parameters';
const compressionGroup = 'Compression parameters';
const remoteGroup = 'Remote access parameters';

/** Every instance option in the order pg_probackup writes and shows them (configure.c). */
export const configOptionTable: readonly ConfigOption[] = [
  option('pgdata', 'pgdata', instanceGroup, 'string', { shortName: 'D' }),
  option('system-identifier', 'systemIdentifier', instanceGroup, 'uint64', {
    default: 0n,
    fileOnly: true,
  }),
  option('xlog-seg-size', 'xlogSegSize', instanceGroup, 'uint32', {
    default: DEFAULT_XLOG_SEG_SIZE_BYTES,
    fileOnly: true,
  }),
  option('external-dirs', 'externalDirs', instanceGroup, 'string', { shortName: 'E' }),
  option('pgdatabase', 'pgdatabase', connectionGroup, 'string', { shortName: 'd' }),
  option('pghost', 'pghost', connectionGroup, 'string', { shortName: 'h' }),
  option('pgport', 'pgport', connectionGroup, 'string', { shortName: 'p' }),
  option('pguser', 'pguser', connectionGroup, 'string', { shortName: 'U' }),
  option('master-db', 'masterDb', replicaGroup, 'string'),
  option('master-host', 'masterHost', replicaGroup, 'string'),
  option('master-port', 'masterPort', replicaGroup, 'string'),
  option('master-user', 'masterUser', replicaGroup, 'string'),
  option('replica-timeout', 'replicaTimeoutSec', replicaGroup, 'uint32', {
    unit: 's',
    default: 300,
  }),
  option('archive-timeout', 'archiveTimeoutSec', archiveGroup, 'uint32', {
    unit: 's',
    default: 300,
  }),
  option('archive-host', 'archiveHost', archiveGroup, 'string'),
  option('archive-port', 'archivePort', archiveGroup, 'string'),
  option('archive-user', 'archiveUser', archiveGroup, 'string'),
  option('restore-command', 'restoreCommand', archiveGroup, 'string'),
  option('log-level-console', 'logLevelConsole', loggingGroup, 'enum', { default: 'INFO' }),
  option('log-level-file', 'logLevelFile', loggingGroup, 'enum', { default: 'OFF' }),
  option('log-format-console', 'logFormatConsole', loggingGroup, 'enum', {
    default: 'PLAIN',
    cliOnly: true,
  }),
  option('log-format-file', 'logFormatFile', loggingGroup, 'enum', { default: 'PLAIN' }),
  option('log-filename', 'logFilename', loggingGroup, 'string', { default: 'pg_probackup.log' }),
  option('error-log-filename', 'errorLogFilename', loggingGroup, 'string'),
  option('log-directory', 'logDirectory', loggingGroup, 'string'),
  option('log-rotation-size', 'logRotationSizeKb', loggingGroup, 'uint64', {
    unit: 'kB',
    default: 0n,
  }),
  option('log-rotation-age', 'logRotationAgeMs', loggingGroup, 'uint64', {
    unit: 'ms',
    default: 0n,
  }),
  option('retention-redundancy', 'retentionRedundancy', retentionGroup, 'uint32', { default: 0 }),
  option('retention-window', 'retentionWindow', retentionGroup, 'uint32', { default: 0 }),
  option('wal-depth', 'walDepth', retentionGroup, 'uint32', { default: 0 }),
  option('compress-algorithm', 'compressAlgorithm', compressionGroup, 'enum', { default: 'none' }),
  option('compress-level', 'compressLevel', compressionGroup, 'uint32', { default: 1 }),
  option('remote-proto', 'remoteProto', remoteGroup, 'string', { default: 'ssh' }),
  option('remote-host', 'remoteHost', remoteGroup, 'string'),
  option('remote-port', 'remotePort', remoteGroup, 'string'),
  option('remote-path', 'remotePath', remoteGroup, 'string'),
  option('remote-user', 'remoteUser', remoteGroup, 'string'),
  option('ssh-options', 'sshOptions', remoteGroup, 'string'),
  option('ssh-config', 'sshConfig', remoteGroup, 'string'),
];

/** Options that `add-instance` never saves (pg_probackup's "do not save remote options" kludge). */
export const remoteConfigFields: readonly InstanceConfigKey[] = configOptionTable
  .filter((entry) => entry.group === remoteGroup)
  .map((entry) => entry.field);

/** The option a file key or long option names (case-insensitive, `-`/`_`/space equal). */
export function findConfigOption(key: string): ConfigOption | undefined {
  const wanted = normalizeKey(key);
  return configOptionTable.find((entry) => normalizeKey(entry.name) === wanted);
}

const typeWords: Record<Exclude<ConfigOptionType, 'enum'>, string> = {
  string: 'a valid string',
  bool: 'a boolean',
  uint32: 'a 32bit unsigned integer',
  uint64: 'a 64bit unsigned integer',
};

function optionLabel(entry: ConfigOption): string {
  return entry.shortName ? `-${entry.shortName}, --${entry.name}` : `--${entry.name}`;
}

/**
 * Parses a value for `entry` from the command line or the file, with pg_probackup's rules and
 * messages (`Option --archive-timeout should be a 32bit unsigned integer: '5 years'`). Returns the
 * typed value for the InstanceConfig field: string, boolean, number (uint32) or bigint (uint64).
 */
export function parseOptionValue(entry: ConfigOption, text: string): ConfigValue {
  if (entry.type === 'enum') {
    if (entry.field === 'compressAlgorithm') return parseCompressAlgorithm(text);
    if (entry.field === 'logFormatConsole' || entry.field === 'logFormatFile')
      return parseLogFormat(text);
    return parseLogLevel(text);
  }
  const invalid = new StrataError(
    'usage',
    `Option ${optionLabel(entry)} should be ${typeWords[entry.type]}: '${text}'`,
  );
  switch (entry.type) {
    case 'string':
      if (text === '') throw invalid;
      return text;
    case 'bool': {
      const value = parseBool(text);
      if (value === undefined) throw invalid;
      return value;
    }
    case 'uint32': {
      const value = parseCInteger(text, 'uint32', entry.unit);
      if (value === undefined) throw invalid;
      return Number(value);
    }
    case 'uint64': {
      const value = parseCInteger(text, 'uint64', entry.unit);
      if (value === undefined) throw invalid;
      return value;
    }
  }
}

/** The text of a value as pg_probackup prints it: units scaled unless `baseUnits`. */
export function formatOptionValue(
  entry: ConfigOption,
  value: ConfigValue,
  baseUnits = false,
): string {
  if (
    entry.unit !== undefined &&
    !baseUnits &&
    (typeof value === 'number' || typeof value === 'bigint')
  ) {
    return formatWithUnit(BigInt(value), entry.unit);
  }
  return String(value);
}

function setConfigField(
  config: InstanceConfig,
  field: InstanceConfigKey,
  value: ConfigValue,
): void {
  (config as Record<InstanceConfigKey, ConfigValue | undefined>)[field] = value;
}

function getConfigField(config: InstanceConfig, field: InstanceConfigKey): ConfigValue | undefined {
  return config[field];
}

/** Parses the text of a pg_probackup.conf. `onWarning` switches to `show`'s lenient reading. */
export function parseInstanceConfigText(
  text: string,
  path: string,
  options: { onWarning?: (message: string) => void } = {},
): InstanceConfig {
  const config: InstanceConfig = {};
  for (const { key, value, line } of parseKeyValueText(text, path)) {
    const where = `(file "${path}", line ${line})`;
    const entry = findConfigOption(key);
    if (!entry || entry.cliOnly) {
      const problem = entry
        ? `Option ${entry.name} cannot be specified in file ${where}`
        : `Invalid option "${key}" in file "${path}" (line ${line})`;
      if (!options.onWarning) throw new StrataError('config', problem);
      options.onWarning(problem);
      continue;
    }
    try {
      setConfigField(config, entry.field, parseOptionValue(entry, value));
    } catch (error) {
      if (!isStrataError(error)) throw error;
      throw new StrataError('config', `${error.message} ${where}`, { cause: error });
    }
  }
  return config;
}

/** Reads `pg_probackup.conf`; a syntax error, unknown key or bad value is one StrataError. */
export async function readInstanceConfig(
  storage: Storage,
  path: string,
  options: { onWarning?: (message: string) => void } = {},
): Promise<InstanceConfig> {
  let bytes: Buffer;
  try {
    bytes = await storage.readFile(path);
  } catch (error) {
    if (storageErrorCode(error) === 'ENOENT') {
      throw new StrataError('config', `Configuration file "${path}" doesn't exist`, {
        cause: error,
      });
    }
    throw error;
  }
  return parseInstanceConfigText(bytes.toString('utf8'), path, options);
}

/**
 * The file text: group comments, only options that are set, in table order; never
 * `log-format-console` (fatal for pg_probackup in the file) nor empty values.
 */
export function formatInstanceConfig(config: InstanceConfig): string {
  let text = '';
  let group: ConfigGroup | undefined;
  for (const entry of configOptionTable) {
    const value = getConfigField(config, entry.field);
    if (value === undefined || value === '' || entry.cliOnly) continue;
    const rendered = formatOptionValue(entry, value);
    assertSingleLine(rendered, entry.name);
    if (entry.group !== group) {
      group = entry.group;
      text += `# ${group}\n`;
    }
    text += `${entry.name} = ${quoteValue(rendered)}\n`;
  }
  return text;
}

/** Writes `pg_probackup.conf` atomically: `pg_probackup.conf.tmp`, fsync, rename (§4.3). */
export async function writeInstanceConfig(
  storage: Storage,
  path: string,
  config: InstanceConfig,
): Promise<void> {
  await storage.writeFileAtomic(path, formatInstanceConfig(config), {
    mode: 0o600,
    tmpSuffix: '.tmp',
    sync: true,
  });
}

/** The configuration with pg_probackup's defaults filled in for every option that has one. */
export function effectiveInstanceConfig(config: InstanceConfig): InstanceConfig {
  const effective: InstanceConfig = { ...config };
  for (const entry of configOptionTable) {
    if (getConfigField(effective, entry.field) === undefined && entry.default !== undefined) {
      setConfigField(effective, entry.field, entry.default);
    }
  }
  if (effective.xlogSegSize === 0) effective.xlogSegSize = DEFAULT_XLOG_SEG_SIZE_BYTES;
  return effective;
}

/**
 * `show-config` output (spec/cli-behaviour.md §3.5) for an already merged configuration
 * (command line, file, environment): defaults filled in, unset strings omitted, fixed option
 * order. Plain: `# Group` headers and unquoted `key = value`. JSON: one flat object indented by
 * four spaces, all values strings, except that with `noScaleUnits` integers are bare numbers.
 */
export function renderShowConfig(
  config: InstanceConfig,
  format: 'plain' | 'json',
  noScaleUnits: boolean,
): string {
  const effective = effectiveInstanceConfig(config);
  const rows: Array<{ entry: ConfigOption; text: string }> = [];
  for (const entry of configOptionTable) {
    const value = getConfigField(effective, entry.field);
    if (value === undefined) continue;
    rows.push({ entry, text: formatOptionValue(entry, value, noScaleUnits) });
  }
  if (format === 'plain') {
    let text = '';
    let group: ConfigGroup | undefined;
    for (const { entry, text: value } of rows) {
      if (entry.group !== group) {
        group = entry.group;
        text += `# ${group}\n`;
      }
      text += `${entry.name} = ${value}\n`;
    }
    return text;
  }
  const members = rows.map(({ entry, text: value }) => {
    const bare = noScaleUnits && (entry.type === 'uint32' || entry.type === 'uint64');
    return `\n    ${JSON.stringify(entry.name)}: ${bare ? value : JSON.stringify(value)}`;
  });
  return `{${members.join(',')}\n}\n`;
}
