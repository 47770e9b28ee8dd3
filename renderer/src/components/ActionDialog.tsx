import { useState } from 'react';
import type { BackupSummary } from '../../../core/api/contract.js';
import { chainTo, descendantsOf } from '../chainLayout.js';
import {
  deleteCommandLine,
  mergeCommandLine,
  setBackupCommandLine,
  validateCommandLine,
} from '../../../core/api/cliCommand.js';
import { useActions, useStrata } from '../store/context.js';
import type { BackupAction, Dialog, PinRequest } from '../store/strataStore.js';
import { CliCommand, JobProgress, JobStateBadge, Modal, StatusBadge } from './common.js';

const TITLES: Record<BackupAction, string> = {
  validate: 'Validate',
  merge: 'Merge',
  delete: 'Delete',
  pin: 'Pin',
};

function BackupList({ backups }: { backups: BackupSummary[] }) {
  return (
    <ul className="plain">
      {backups.map((backup) => (
        <li key={backup.id}>
          <span className="mono strong">{backup.id}</span> {backup.mode}{' '}
          <StatusBadge status={backup.status} />
        </li>
      ))}
    </ul>
  );
}

function pinRequestOf(
  ttlDays: string,
  expireTime: string,
  note: string,
  unpin: boolean,
): PinRequest {
  const pin: PinRequest = {};
  if (unpin) pin.ttlSeconds = 0;
  else if (expireTime.trim() !== '') pin.expireTime = expireTime.trim();
  else if (ttlDays.trim() !== '' && Number(ttlDays) > 0)
    pin.ttlSeconds = Math.round(Number(ttlDays) * 86400);
  if (note.trim() !== '') pin.note = note.trim();
  return pin;
}

export function ActionDialog({ dialog }: { dialog: Extract<Dialog, { kind: 'action' }> }) {
  const catalog = useStrata((state) => state.catalog);
  const instance = useStrata((state) => state.instance);
  const backups = useStrata((state) => state.backups);
  const jobs = useStrata((state) => state.jobs);
  const actions = useActions();
  const [ttlDays, setTtlDays] = useState('30');
  const [expireTime, setExpireTime] = useState('');
  const [note, setNote] = useState('');
  const [unpin, setUnpin] = useState(false);
  if (!catalog || !instance) return null;
  const path = catalog.backupPath;
  const selected = backups.filter((backup) => dialog.backupIds.includes(backup.id));
  const pin = pinRequestOf(ttlDays, expireTime, note, unpin);
  const commands =
    dialog.action === 'validate'
      ? dialog.backupIds.length === 0
        ? [validateCommandLine(path, instance)]
        : dialog.backupIds.map((id) => validateCommandLine(path, instance, id))
      : dialog.action === 'merge'
        ? dialog.backupIds.map((id) => mergeCommandLine(path, instance, id))
        : dialog.action === 'delete'
          ? dialog.backupIds.map((id) => deleteCommandLine(path, instance, id))
          : dialog.backupIds.map((id) => setBackupCommandLine(path, instance, id, pin));
  const started = dialog.jobIds.length > 0;
  const descendants = dialog.action === 'delete' ? descendantsOf(backups, dialog.backupIds) : [];
  const canConfirm =
    dialog.action !== 'pin' ||
    unpin ||
    pin.ttlSeconds !== undefined ||
    pin.expireTime !== undefined ||
    pin.note !== undefined;

  return (
    <Modal
      title={`${TITLES[dialog.action]} ${dialog.backupIds.length === 0 ? `instance ${instance}` : `${dialog.backupIds.length} backup${dialog.backupIds.length === 1 ? '' : 's'}`}`}
      onClose={() => actions.closeDialog()}
      testId={`action-dialog-${dialog.action}`}
    >
      {dialog.action === 'validate' && (
        <p>
          Reads every file of{' '}
          {dialog.backupIds.length === 0 ? 'every backup of the instance' : 'these backups'}, checks
          CRCs and page checksums, and checks the WAL each backup needs. A damaged backup is marked
          CORRUPT and its incrementals ORPHAN.
        </p>
      )}
      {dialog.action === 'merge' &&
        dialog.backupIds.map((id) => (
          <div key={id}>
            <p>
              Merges this chain into one FULL backup that keeps the ID{' '}
              <span className="mono">{id}</span>; the backups before it in the chain are removed.
              Restores to points between them are no longer possible.
            </p>
            <BackupList backups={chainTo(backups, id)} />
          </div>
        ))}
      {dialog.action === 'delete' && (
        <>
          <p className="bad">Deletes these backups from the catalog for good:</p>
          <BackupList backups={selected} />
          {descendants.length > 0 && (
            <>
              <p className="bad">
                and the incrementals built on them, which cannot be restored without them:
              </p>
              <BackupList backups={descendants} />
            </>
          )}
        </>
      )}
      {dialog.action === 'pin' && (
        <div className="form-grid">
          <BackupList backups={selected} />
          <label className="check">
            <input
              type="checkbox"
              checked={unpin}
              onChange={(event) => setUnpin(event.target.checked)}
            />
            Unpin (ttl 0): retention may remove them again
          </label>
          {!unpin && (
            <>
              <label className="field">
                <span>Keep for</span>
                <input
                  className="short"
                  data-testid="pin-ttl"
                  value={ttlDays}
                  onChange={(event) => setTtlDays(event.target.value)}
                />
                <span className="muted">days, or until</span>
                <input
                  className="mono"
                  placeholder="2026-01-01 00:00:00+00"
                  value={expireTime}
                  onChange={(event) => setExpireTime(event.target.value)}
                />
              </label>
            </>
          )}
          <label className="field">
            <span>Note</span>
            <input
              className="grow"
              value={note}
              onChange={(event) => setNote(event.target.value)}
            />
          </label>
        </div>
      )}
      {commands.map((command, i) => (
        <CliCommand key={i} command={command} testId={`action-cli-${i}`} />
      ))}
      {started && (
        <table className="grid compact" data-testid="action-jobs">
          <tbody>
            {dialog.jobIds.map((jobId) => {
              const job = jobs[jobId];
              if (!job) return null;
              return (
                <tr key={jobId} data-testid={`action-job-${jobId}`} data-state={job.state}>
                  <td>{job.title}</td>
                  <td>
                    <JobStateBadge job={job} />
                  </td>
                  <td className="grow">
                    <JobProgress job={job} />
                  </td>
                  <td className="bad">{job.error}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      <div className="row end">
        <button type="button" onClick={() => actions.closeDialog()}>
          {started ? 'Close' : 'Cancel'}
        </button>
        {!started && (
          <button
            type="button"
            className={dialog.action === 'delete' ? 'danger' : 'primary'}
            data-testid="action-confirm"
            disabled={!canConfirm}
            onClick={() => void actions.runBackupAction(dialog.action, dialog.backupIds, pin)}
          >
            {TITLES[dialog.action]}
          </button>
        )}
      </div>
    </Modal>
  );
}
