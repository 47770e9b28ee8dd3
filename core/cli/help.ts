import { COMPATIBLE_PROBACKUP_VERSION, STRATA_VERSION } from '../commands/context.js';

export function versionLine(): string {
  return `strata (pg_probackup ${COMPATIBLE_PROBACKUP_VERSION} compatible) ${STRATA_VERSION}`;
}

const commandHelp: Record<string, string> = {
  init: 'strata init -B backup-path',
  'add-instance':
    'strata add-instance -B backup-path -D pgdata-path --instance=instance_name\n                 [-E external-directories-paths] [config options]',
  'set-config': 'strata set-config -B backup-path --instance=instance_name [config options]',
  'show-config':
    'strata show-config -B backup-path --instance=instance_name [--format=plain|json] [--no-scale-units]',
  backup:
    'strata backup -B backup-path -b backup-mode --instance=instance_name\n' +
    '                 [-D pgdata-path] [-C] [--stream [-S slot-name] [--temp-slot | --perm-slot]]\n' +
    '                 [-j num-threads] [--progress] [--no-validate] [--skip-block-validation]\n' +
    '                 [--compress-algorithm=zlib|pglz|lz4|zstd|none] [--compress-level=0..9] [--compress]\n' +
    '                 [--archive-timeout=timeout] [--note=text] [--no-sync]\n' +
    '                 [--ttl=interval] [--expire-time=time]\n' +
    '                 [--delete-expired] [--merge-expired] [--delete-wal]\n' +
    '                 [--retention-redundancy=retention-redundancy] [--retention-window=retention-window]\n' +
    '                 [--log-level-console=log-level-console] [--log-level-file=log-level-file]\n' +
    '                 [--log-format-file=log-format-file] [--log-filename=log-filename]\n' +
    '                 [--error-log-filename=error-log-filename] [--log-directory=log-directory]\n' +
    '                 [--log-rotation-size=log-rotation-size] [--log-rotation-age=log-rotation-age]\n' +
    '                 [-d dbname] [-h host] [-p port] [-U username]',
  restore:
    'strata restore -B backup-path --instance=instance_name [-D pgdata-path] [-i backup-id]\n' +
    '                 [--recovery-target-time=time | --recovery-target-xid=xid | --recovery-target-lsn=lsn |\n' +
    '                  --recovery-target-name=name | --recovery-target=immediate|latest]\n' +
    '                 [--recovery-target-inclusive=boolean] [--recovery-target-timeline=timeline]\n' +
    '                 [--recovery-target-action=pause|promote|shutdown] [-R] [--primary-conninfo=conninfo]\n' +
    '                 [-S slot-name] [--restore-command=cmdline] [-j num-threads] [--progress]\n' +
    '                 [-I incremental-mode] [--force] [--destroy-all-other-dbs]\n' +
    '                 [--db-include=dbname | --db-exclude=dbname]\n' +
    '                 [-T OLDDIR=NEWDIR] [--external-mapping=OLDDIR=NEWDIR] [--skip-external-dirs]\n' +
    '                 [-X WALDIR] [--no-validate] [--skip-block-validation] [--no-sync]',
  validate:
    'strata validate -B backup-path [--instance=instance_name] [-i backup-id]\n' +
    '                 [--recovery-target-time=time | --recovery-target-xid=xid | --recovery-target-lsn=lsn]\n' +
    '                 [-j num-threads] [--progress] [--skip-block-validation]',
  merge:
    'strata merge -B backup-path --instance=instance_name -i backup-id\n' +
    '                 [-j num-threads] [--progress] [--no-validate] [--no-sync]',
  show: 'strata show -B backup-path [--instance=instance_name [-i backup-id]] [--format=plain|json] [--archive]',
  delete:
    'strata delete -B backup-path --instance=instance_name\n' +
    '                 [-i backup-id | --delete-expired | --merge-expired | --status=backup_status]\n' +
    '                 [--delete-wal] [--dry-run] [--no-validate] [--no-sync] [-j num-threads] [--progress]\n' +
    '                 [--retention-redundancy=retention-redundancy] [--retention-window=retention-window]\n' +
    '                 [--wal-depth=wal-depth]',
  'set-backup':
    'strata set-backup -B backup-path --instance=instance_name -i backup-id\n' +
    '                 [--ttl=interval] [--expire-time=time] [--note=text]',
  'del-instance': 'strata del-instance -B backup-path --instance=instance_name',
  'archive-push':
    'strata archive-push -B backup-path --instance=instance_name --wal-file-name=wal-file-name\n' +
    '                 [--wal-file-path=wal-file-path] [-j num-threads] [--batch-size=batch_size]\n' +
    '                 [--archive-timeout=timeout] [--no-ready-rename] [--no-sync] [--overwrite]\n' +
    '                 [--compress-algorithm=zlib|none] [--compress-level=0..9] [--compress]',
  'archive-get':
    'strata archive-get -B backup-path --instance=instance_name --wal-file-path=wal-file-path\n' +
    '                 --wal-file-name=wal-file-name [-j num-threads] [--batch-size=batch_size]\n' +
    '                 [--no-validate-wal] [--prefetch-dir=path]',
  checkdb:
    'strata checkdb [-B backup-path] [--instance=instance_name] [-D pgdata-path]\n' +
    '                 [--progress] [-j num-threads] [--amcheck] [--skip-block-validation]\n' +
    '                 [--heapallindexed] [--checkunique] [-d dbname] [-h host] [-p port] [-U username]',
  catchup:
    'strata catchup -b catchup-mode --source-pgdata=path_to_pgdata_on_remote_server\n' +
    '                 --destination-pgdata=path_to_local_dir [--stream [-S slot-name] [--temp-slot | --perm-slot]]\n' +
    '                 [-j num-threads] [-T OLDDIR=NEWDIR] [--exclude-path=path_prefix] [--dry-run]\n' +
    '                 [--no-sync] [--progress] [-d dbname] [-h host] [-p port] [-U username]',
  ui: 'strata ui [--port=port] [--demo] [-B backup-path]',
};

export function helpText(command?: string): string {
  if (command && commandHelp[command]) return `\n${commandHelp[command]}\n\n`;
  const lines = [
    '',
    'strata - PostgreSQL backup and point-in-time recovery, compatible with pg_probackup 2.5.',
    '',
    'strata help [COMMAND]',
    '',
    'strata version',
    '',
    ...Object.values(commandHelp).flatMap((text) => [text, '']),
    'See README.md for details.',
    '',
  ];
  return lines.join('\n');
}
