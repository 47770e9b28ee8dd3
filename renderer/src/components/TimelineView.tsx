import { useMemo, useState } from 'react';
import { formatLsnText, formatTime } from '../format.js';
import { useActions, useStrata } from '../store/context.js';
import { estimateTime, isReachable, layoutTimelines } from '../timelineLayout.js';
import type { TimelinePicture } from '../timelineLayout.js';
import { Bytes, StatusBadge } from './common.js';
import { TimelineChart } from './TimelineChart.js';
import type { TimelinePick } from './TimelineChart.js';

/** The timeline picture of the current instance, recomputed when its archive or backups change. */
export function useTimelinePicture(): TimelinePicture | null {
  const catalog = useStrata((state) => state.catalog);
  const instance = useStrata((state) => state.instance);
  const timelines = useStrata((state) => state.timelines);
  const backups = useStrata((state) => state.backups);
  const segmentSize =
    catalog?.instances.find((candidate) => candidate.name === instance)?.walSegmentSizeBytes ?? 0;
  return useMemo(
    () => (segmentSize > 0 ? layoutTimelines(timelines, backups, segmentSize) : null),
    [timelines, backups, segmentSize],
  );
}

function PickPanel({ picture, pick }: { picture: TimelinePicture; pick: TimelinePick }) {
  const actions = useActions();
  const lsnText = formatLsnText(pick.lsn);
  const time = estimateTime(picture, pick.tli, pick.lsn);
  const reachable = isReachable(picture, pick.tli, pick.lsn);
  const backup = pick.backup;
  return (
    <div className="pick-panel" data-testid="timeline-pick">
      {backup ? (
        <>
          <div>
            Backup <span className="mono strong">{backup.id}</span> ({backup.mode},{' '}
            <StatusBadge status={backup.status} />) on timeline {backup.timelineId}: consistent at{' '}
            <span className="mono">{backup.stopLsn}</span>, {formatTime(backup.recoveryTime)}.
          </div>
          <div className="row">
            <button
              type="button"
              className="primary"
              onClick={() => actions.beginRestore({ backupId: backup.id, targetKind: 'immediate' })}
            >
              Restore this backup only (immediate)…
            </button>
            {backup.recoveryTime !== null && (
              <button
                type="button"
                onClick={() =>
                  actions.beginRestore({
                    targetKind: 'time',
                    targetValues: {
                      time: formatTime(backup.recoveryTime),
                      lsn: '',
                      xid: '',
                      name: '',
                    },
                    timeline: String(backup.timelineId),
                  })
                }
              >
                Restore to its recovery time…
              </button>
            )}
          </div>
        </>
      ) : (
        <>
          <div>
            Timeline {pick.tli}, LSN{' '}
            <span className="mono strong" data-testid="picked-lsn">
              {lsnText}
            </span>
            {time !== null ? <span className="muted"> (≈ {formatTime(time)})</span> : null}:{' '}
            {reachable ? (
              <span className="good">a restore can stop here.</span>
            ) : (
              <span className="bad">no valid backup and gap-free WAL reach this point.</span>
            )}
          </div>
          <div className="row">
            <button
              type="button"
              className="primary"
              data-testid="restore-to-picked"
              onClick={() =>
                actions.beginRestore({
                  targetKind: 'lsn',
                  targetValues: { time: '', lsn: lsnText, xid: '', name: '' },
                  timeline: String(pick.tli),
                })
              }
            >
              Restore to this LSN…
            </button>
          </div>
        </>
      )}
    </div>
  );
}

export function TimelineView() {
  const picture = useTimelinePicture();
  const timelines = useStrata((state) => state.timelines);
  const [pick, setPick] = useState<TimelinePick | null>(null);
  if (!picture) return <p className="muted empty">Open a catalog and choose an instance.</p>;
  return (
    <div className="page">
      <section className="panel">
        <div className="toolbar">
          <span className="muted">
            WAL on an LSN axis, one lane per timeline; the times under the axis are when each backup
            became consistent. Click a point to restore to it.
          </span>
          <span className="grow" />
          <span className="legend">
            <span className="swatch swatch-archived" /> archived WAL
            <span className="swatch swatch-gap" /> lost segments
            <span className="swatch swatch-reachable" /> restore can reach
            <span className="swatch swatch-backup" /> backup
          </span>
        </div>
        {picture.lanes.length === 0 ? (
          <p className="muted empty">No archived WAL and no backups yet.</p>
        ) : (
          <TimelineChart picture={picture} picked={pick} onPick={setPick} />
        )}
        {pick && <PickPanel picture={picture} pick={pick} />}
      </section>
      <section className="panel">
        <h2>Timelines in the archive</h2>
        <table className="grid" data-testid="timelines-table">
          <thead>
            <tr>
              <th className="num">TLI</th>
              <th className="num">Parent</th>
              <th>Switchpoint</th>
              <th>Min segment</th>
              <th>Max segment</th>
              <th className="num">Segments</th>
              <th className="num">Size</th>
              <th className="num">Zratio</th>
              <th>Status</th>
              <th>Lost segments</th>
              <th>Backups</th>
              <th>Closest backup</th>
            </tr>
          </thead>
          <tbody>
            {timelines.map((timeline) => (
              <tr key={timeline.tli} data-testid={`timeline-row-${timeline.tli}`}>
                <td className="num">{timeline.tli}</td>
                <td className="num">{timeline.parentTli}</td>
                <td className="mono">{timeline.switchpoint}</td>
                <td className="mono">{timeline.minSegno}</td>
                <td className="mono">{timeline.maxSegno}</td>
                <td className="num">{timeline.segmentCount}</td>
                <td className="num">
                  <Bytes value={timeline.sizeBytes} />
                </td>
                <td className="num">{timeline.zratio.toFixed(2)}</td>
                <td>
                  <span
                    className={
                      timeline.status === 'OK' ? 'status status-ok' : 'status status-corrupt'
                    }
                  >
                    {timeline.status}
                  </span>
                </td>
                <td className="mono wrap">
                  {timeline.lostSegments.length === 0
                    ? '—'
                    : timeline.lostSegments.map((lost) => `${lost.begin}…${lost.end}`).join(', ')}
                </td>
                <td className="mono wrap">{timeline.backupIds.join(', ') || '—'}</td>
                <td className="mono">{timeline.closestBackupId ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </section>
    </div>
  );
}
