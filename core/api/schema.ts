import { z } from 'zod';
import { StrataError } from '../errors.js';
import { parseCatalogLocation, splitRemoteHostId } from './catalogLocation.js';
import type { ApiArgs, ApiMethodName } from './methods.js';

/**
 * Runtime checks of every argument that crosses a process boundary into StrataApi: the web
 * server's POST bodies and Electron's IPC messages go through `parseApiArguments` before the API
 * sees them, so a renderer (or anything else that reaches the port) cannot hand the engine a value
 * the contract does not allow. Objects are strict: an unknown key is a mistake worth reporting.
 */

const absolutePath = z
  .string()
  .min(1)
  .refine((path) => path.startsWith('/'), 'must be an absolute path')
  .refine((path) => !path.includes('\0'), 'must not contain a NUL byte');

/** An absolute path here, or `ssh://user@host:port/path` on a connected host (catalogLocation.ts). */
const catalogLocation = z
  .string()
  .min(1)
  .refine((location) => !location.includes('\0'), 'must not contain a NUL byte')
  .refine((location) => {
    try {
      parseCatalogLocation(location);
      return true;
    } catch {
      return false;
    }
  }, 'must be an absolute path or ssh://user@host:port/absolute/path');

/** `user@host:port` of a connected host. */
const hostId = z
  .string()
  .refine((id) => splitRemoteHostId(id) !== undefined, 'must be a host ID such as postgres@db1:22');

/** Host names and users as OpenSSH takes them: no blanks, no shell or option characters. */
const sshName = z
  .string()
  .min(1)
  .max(255)
  .regex(/^[A-Za-z0-9_.:%[\]-]+$/, 'must be a host name, an address or a user name')
  .refine((name) => !name.startsWith('-'), 'must not start with "-"');

const remoteHostRequest = {
  host: sshName,
  port: z.int().min(1).max(65_535).optional(),
  user: sshName.optional(),
  remotePath: absolutePath.optional(),
  sshOptions: z.string().max(4096).optional(),
};

const connectHostRequest = z.strictObject({
  ...remoteHostRequest,
  trustHostKey: z
    .string()
    .regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'must be a fingerprint such as SHA256:…')
    .optional(),
  passphrase: z.string().max(1024).optional(),
});

/** Instance names are directory names in `backups/` (core/catalog checkedInstanceName). */
const instanceName = z
  .string()
  .min(1)
  .refine(
    (name) => name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0'),
    'must be a directory name (no "/", not "." or "..")',
  );

/** Backup IDs are base36 start times (catalog-format §1.1). */
const backupId = z.string().regex(/^[0-9A-Za-z]{1,16}$/, 'must be a backup ID such as TP11R6');

/** `X/X`, each half up to 8 hex digits (pg_lsn's text form). */
const lsnText = z
  .string()
  .regex(/^[0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8}$/, 'must be an LSN such as 0/3000028');

/** TransactionId is 32 bits (pg_probackup parses --recovery-target-xid with parse_uint32). */
const xidText = z
  .string()
  .regex(/^[0-9]{1,10}$/, 'must be a transaction ID (decimal)')
  .refine((text) => Number(text) <= 0xffffffff, 'must fit in 32 bits');

/** MAXFNAMELEN - 1: a restore point name is stored in a 64-byte field with its terminator. */
const restorePointName = z.string().min(1).max(63);

/** A typed time, checked again by core/catalog parseProbackupTime when the plan is made. */
const timeText = z.string().min(1).max(64);

/** A number, `current` or `latest` (--recovery-target-timeline). */
const timelineText = z
  .string()
  .regex(/^([1-9][0-9]{0,9}|current|latest)$/, 'must be a timeline number, "current" or "latest"');

const threads = z.int().min(1).max(128);
const nonEmptyText = z.string().min(1);

const recoveryTarget = z.discriminatedUnion('kind', [
  z.strictObject({ kind: z.literal('latest') }),
  z.strictObject({ kind: z.literal('immediate') }),
  z.strictObject({ kind: z.literal('time'), time: timeText }),
  z.strictObject({ kind: z.literal('lsn'), lsn: lsnText }),
  z.strictObject({ kind: z.literal('xid'), xid: xidText }),
  z.strictObject({ kind: z.literal('name'), name: restorePointName }),
]);

const pathMapping = z.strictObject({ from: absolutePath, to: absolutePath });

const restoreRequest = z.strictObject({
  backupPath: catalogLocation,
  instance: instanceName,
  backupId: backupId.optional(),
  target: recoveryTarget,
  timeline: timelineText.optional(),
  action: z.enum(['pause', 'promote', 'shutdown']).optional(),
  destination: absolutePath,
  incrementalMode: z.enum(['none', 'checksum', 'lsn']).optional(),
  tablespaceMapping: z.array(pathMapping).max(256).optional(),
  externalMapping: z.array(pathMapping).max(256).optional(),
  restoreAsReplica: z
    .strictObject({ primaryConninfo: nonEmptyText.optional(), slotName: nonEmptyText.optional() })
    .optional(),
  includeDatabases: z.array(nonEmptyText).min(1).max(10_000).optional(),
  threads: threads.optional(),
  destinationHost: hostId.optional(),
});

const compressionName = z.enum(['none', 'zlib', 'pglz', 'lz4', 'zstd']);

const backupRequest = z.strictObject({
  backupPath: catalogLocation,
  instance: instanceName,
  mode: z.enum(['FULL', 'PAGE', 'PTRACK', 'DELTA', 'SUMMARY']),
  stream: z.boolean(),
  compressAlg: compressionName.optional(),
  // zstd levels go to 19 (core/catalog/optionValues.ts checkCompressLevel); the engine checks per algorithm.
  compressLevel: z.int().min(0).max(19).optional(),
  threads: threads.optional(),
  // MAX_NOTE_SIZE of pg_probackup, in bytes; the engine keeps the first line.
  note: z
    .string()
    .min(1)
    .refine((note) => new TextEncoder().encode(note).length <= 1024, 'must not exceed 1024 bytes')
    .optional(),
  ttlSeconds: z.int().min(0).optional(),
  connection: z
    .strictObject({
      host: nonEmptyText.optional(),
      port: z.int().min(1).max(65_535).optional(),
      user: nonEmptyText.optional(),
      database: nonEmptyText.optional(),
    })
    .optional(),
});

const filePage = z.strictObject({
  offset: z.int().min(0),
  limit: z.int().min(1).max(10_000),
  pathFilter: z.string().max(4096).optional(),
});

const pin = z
  .strictObject({
    ttlSeconds: z.int().min(0).optional(),
    expireTime: timeText.optional(),
    note: z.string().min(1).max(1024).optional(),
  })
  .refine((value) => !(value.ttlSeconds !== undefined && value.expireTime !== undefined), {
    message:
      "ttlSeconds and expireTime cannot be given together (pg_probackup's --ttl and --expire-time)",
  });

const jobId = z.string().regex(/^[0-9a-z-]{1,64}$/, 'must be a job ID');

type ArgumentSchemas = { [M in ApiMethodName]: z.ZodType<ApiArgs<M>> };

/** Argument names for messages, in the contract's order. */
const argumentNames: { [M in ApiMethodName]: string[] } = {
  openCatalog: ['backupPath'],
  listBackups: ['backupPath', 'instance'],
  getBackup: ['backupPath', 'instance', 'backupId'],
  listBackupFiles: ['backupPath', 'instance', 'backupId', 'page'],
  listTimelines: ['backupPath', 'instance'],
  planRestore: ['request'],
  startRestore: ['request'],
  startBackup: ['request'],
  startValidate: ['backupPath', 'instance', 'backupId'],
  startMerge: ['backupPath', 'instance', 'backupId'],
  startDelete: ['backupPath', 'instance', 'backupId'],
  setPin: ['backupPath', 'instance', 'backupId', 'pin'],
  cancelJob: ['jobId'],
  listJobs: [],
  getJobLog: ['jobId'],
  connectHost: ['request'],
  listHosts: [],
  disconnectHost: ['hostId'],
  demoCatalog: [],
  startDemo: [],
};

export const apiArgumentSchemas: ArgumentSchemas = {
  openCatalog: z.tuple([catalogLocation]),
  listBackups: z.tuple([catalogLocation, instanceName]),
  getBackup: z.tuple([catalogLocation, instanceName, backupId]),
  listBackupFiles: z.tuple([catalogLocation, instanceName, backupId, filePage]),
  listTimelines: z.tuple([catalogLocation, instanceName]),
  planRestore: z.tuple([restoreRequest]),
  startRestore: z.tuple([restoreRequest]),
  startBackup: z.tuple([backupRequest]),
  startValidate: z.tuple([catalogLocation, instanceName, backupId.optional()]),
  startMerge: z.tuple([catalogLocation, instanceName, backupId]),
  startDelete: z.tuple([catalogLocation, instanceName, backupId]),
  setPin: z.tuple([catalogLocation, instanceName, backupId, pin]),
  cancelJob: z.tuple([jobId]),
  listJobs: z.tuple([]),
  getJobLog: z.tuple([jobId]),
  connectHost: z.tuple([connectHostRequest]),
  listHosts: z.tuple([]),
  disconnectHost: z.tuple([hostId]),
  demoCatalog: z.tuple([]),
  startDemo: z.tuple([]),
};

function issuePath(method: ApiMethodName, path: readonly PropertyKey[]): string {
  const [index, ...rest] = path;
  if (index === undefined) return 'arguments';
  const name =
    typeof index === 'number'
      ? (argumentNames[method][index] ?? `argument ${index + 1}`)
      : String(index);
  return [name, ...rest.map(String)].join('.');
}

/**
 * The arguments of a call to `method` as the contract types them, or StrataError('usage') naming
 * the method, the argument and what is wrong with it (`planRestore: request.target.lsn must be an
 * LSN such as 0/3000028`). JSON turns a missing trailing argument into `null`; those are dropped
 * first so an optional last argument may arrive either way.
 */
export function parseApiArguments<M extends ApiMethodName>(method: M, args: unknown): ApiArgs<M> {
  if (!Array.isArray(args)) {
    throw new StrataError('usage', `${method}: the arguments must be a JSON array`);
  }
  const trimmed = [...args];
  while (trimmed.length > 0 && (trimmed.at(-1) === null || trimmed.at(-1) === undefined))
    trimmed.pop();
  const schema = apiArgumentSchemas[method] as z.ZodType<ApiArgs<M>>;
  const result = schema.safeParse(trimmed);
  if (result.success) return result.data;
  const problems = result.error.issues.map((issue) => {
    const message =
      issue.code === 'custom' ? issue.message : issue.message.replace(/^Invalid input: /, '');
    return `${issuePath(method, issue.path)} ${message}`;
  });
  throw new StrataError('usage', `${method}: ${problems.join('; ')}`);
}
