import { useEffect, useRef, useState } from 'react';
import type { MouseEvent, RefObject } from 'react';
import type { BackupSummary } from '../../../core/api/contract.js';
import { exactBytes, formatLsnText, formatTime } from '../format.js';
import {
  axisFraction,
  estimateTime,
  isReachable,
  lsnAtFraction,
  lsnTicks,
} from '../timelineLayout.js';
import type { TimelinePicture } from '../timelineLayout.js';

export interface TimelinePick {
  tli: number;
  lsn: bigint;
  /** Set when the click landed on a backup's mark. */
  backup: BackupSummary | null;
}

const GUTTER = 74;
const RIGHT_PAD = 24;
const AXIS_TOP = 30;
const LANE_HEIGHT = 64;
const TIME_ROWS = 38;
const TICKS = 10;
/** Backup labels closer than this many pixels to the previous one move to the other row. */
const LABEL_SPACING = 96;

/** The container's width, followed as the window resizes. */
function useWidth(fallback: number): [RefObject<HTMLDivElement | null>, number] {
  const ref = useRef<HTMLDivElement | null>(null);
  const [width, setWidth] = useState(fallback);
  useEffect(() => {
    const element = ref.current;
    if (!element) return;
    const observer = new ResizeObserver((entries) => {
      const measured = entries[0]?.contentRect.width;
      if (measured && measured > 200) setWidth(Math.floor(measured));
    });
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

/**
 * The WAL archive drawn on an LSN axis: a lane per timeline, archived WAL as a bar, lost segments
 * in red, the reachable span in green, backups at their start..stop LSNs, forks at switchpoints.
 * A click picks a point (timeline and LSN) as a restore target.
 */
export function TimelineChart({
  picture,
  picked,
  onPick,
}: {
  picture: TimelinePicture;
  picked: { tli: number; lsn: bigint } | null;
  onPick: (pick: TimelinePick) => void;
}) {
  const [containerRef, width] = useWidth(1100);
  const [hover, setHover] = useState<{ x: number; lane: number } | null>(null);
  const plotWidth = Math.max(100, width - GUTTER - RIGHT_PAD);
  const height = AXIS_TOP + picture.lanes.length * LANE_HEIGHT + TIME_ROWS;
  const xOf = (lsn: bigint) => GUTTER + axisFraction(picture.axis, lsn) * plotWidth;
  const laneCenter = (lane: number) => AXIS_TOP + lane * LANE_HEIGHT + LANE_HEIGHT / 2;
  const laneAt = (y: number) => Math.floor((y - AXIS_TOP) / LANE_HEIGHT);

  function pointFromEvent(event: MouseEvent<SVGSVGElement>): { x: number; lane: number } | null {
    const box = event.currentTarget.getBoundingClientRect();
    const x = event.clientX - box.left;
    const lane = laneAt(event.clientY - box.top);
    if (x < GUTTER || x > GUTTER + plotWidth || lane < 0 || lane >= picture.lanes.length)
      return null;
    return { x, lane };
  }

  const hoverLane = hover ? picture.lanes[hover.lane] : undefined;
  const hoverLsn = hover ? lsnAtFraction(picture.axis, (hover.x - GUTTER) / plotWidth) : null;
  const hoverTime =
    hoverLane && hoverLsn !== null ? estimateTime(picture, hoverLane.tli, hoverLsn) : null;

  // Each backup's consistency time under its stop LSN, on two alternating rows where they crowd;
  // start times and exact values are in each mark's hover text.
  const timeLabels: Array<{ x: number; time: number; row: number }> = [];
  const lastX = [-Infinity, -Infinity];
  const byStop = [...picture.backups].sort((a, b) =>
    a.stopLsn < b.stopLsn ? -1 : a.stopLsn > b.stopLsn ? 1 : 0,
  );
  for (const mark of byStop) {
    if (mark.backup.recoveryTime === null) continue;
    const x = xOf(mark.stopLsn);
    const row = x - lastX[0]! >= LABEL_SPACING ? 0 : x - lastX[1]! >= LABEL_SPACING ? 1 : -1;
    if (row === -1) continue;
    timeLabels.push({ x, time: mark.backup.recoveryTime, row });
    lastX[row] = x;
  }

  return (
    <div className="timeline-chart" ref={containerRef}>
      <svg
        data-testid="timeline-chart"
        width={width}
        height={height}
        viewBox={`0 0 ${width} ${height}`}
        onMouseMove={(event) => setHover(pointFromEvent(event))}
        onMouseLeave={() => setHover(null)}
        onClick={(event) => {
          const point = pointFromEvent(event);
          if (!point) return;
          const lane = picture.lanes[point.lane]!;
          onPick({
            tli: lane.tli,
            lsn: lsnAtFraction(picture.axis, (point.x - GUTTER) / plotWidth),
            backup: null,
          });
        }}
      >
        {lsnTicks(picture.axis, TICKS).map((lsn, i, ticks) => {
          const x = xOf(lsn);
          return (
            <g key={lsn.toString()} className="axis">
              <line x1={x} x2={x} y1={AXIS_TOP - 6} y2={height - TIME_ROWS} />
              <text
                x={x}
                y={AXIS_TOP - 10}
                textAnchor={
                  i === ticks.length - 1 && x > GUTTER + plotWidth - 40 ? 'end' : 'middle'
                }
              >
                {formatLsnText(lsn)}
              </text>
            </g>
          );
        })}
        {picture.lanes.map((lane) => {
          const center = laneCenter(lane.lane);
          const parent = picture.lanes.find((candidate) => candidate.tli === lane.parentTli);
          return (
            <g key={lane.tli} data-testid={`timeline-lane-${lane.tli}`} data-status={lane.status}>
              <text x={8} y={center + 4} className="lane-label">
                TLI {lane.tli}
              </text>
              <line
                className="lane-line"
                x1={GUTTER}
                x2={GUTTER + plotWidth}
                y1={center}
                y2={center}
              />
              {lane.reachable.map((range, i) => (
                <rect
                  key={`reach-${i}`}
                  className="reachable"
                  data-testid={`reachable-${lane.tli}`}
                  x={xOf(range.begin)}
                  y={center - 15}
                  width={Math.max(2, xOf(range.end) - xOf(range.begin))}
                  height={30}
                >
                  <title>{`A restore can stop anywhere from ${formatLsnText(range.begin)} to ${formatLsnText(range.end)} on timeline ${lane.tli}`}</title>
                </rect>
              ))}
              {lane.archived && (
                <rect
                  className="wal-archived"
                  data-testid={`archived-${lane.tli}`}
                  x={xOf(lane.archived.begin)}
                  y={center - 5}
                  width={Math.max(2, xOf(lane.archived.end) - xOf(lane.archived.begin))}
                  height={10}
                >
                  <title>{`Archived WAL ${formatLsnText(lane.archived.begin)} … ${formatLsnText(lane.archived.end)}`}</title>
                </rect>
              )}
              {lane.gaps.map((gap, i) => (
                <rect
                  key={`gap-${i}`}
                  className="wal-gap"
                  data-testid={`gap-${lane.tli}`}
                  x={xOf(gap.begin)}
                  y={center - 12}
                  width={Math.max(3, xOf(gap.end) - xOf(gap.begin))}
                  height={24}
                >
                  <title>{`Lost WAL ${formatLsnText(gap.begin)} … ${formatLsnText(gap.end)}: recovery cannot pass this gap`}</title>
                </rect>
              ))}
              {parent && (
                <g className="fork" data-testid={`fork-${lane.tli}`}>
                  <path
                    d={`M${xOf(lane.switchpoint)},${laneCenter(parent.lane)} C${xOf(lane.switchpoint) + 18},${laneCenter(parent.lane)} ${xOf(lane.switchpoint)},${center} ${xOf(lane.switchpoint) + 18},${center}`}
                  />
                  <circle cx={xOf(lane.switchpoint)} cy={laneCenter(parent.lane)} r={3.5} />
                  <text x={xOf(lane.switchpoint) + 22} y={center - 18}>
                    from TLI {lane.parentTli} at {formatLsnText(lane.switchpoint)}
                  </text>
                </g>
              )}
            </g>
          );
        })}
        {picture.backups.map((mark, i) => {
          const center = laneCenter(mark.lane);
          const x1 = xOf(mark.startLsn);
          const x2 = Math.max(x1 + 5, xOf(mark.stopLsn));
          const backup = mark.backup;
          return (
            <g
              key={backup.id}
              className={`backup-mark mark-${backup.status.toLowerCase()}`}
              data-testid={`timeline-backup-${backup.id}`}
              onClick={(event) => {
                event.stopPropagation();
                onPick({ tli: backup.timelineId, lsn: mark.stopLsn, backup });
              }}
            >
              <title>
                {`${backup.id} ${backup.mode ?? ''} ${backup.status}\nstart ${backup.startLsn} at ${formatTime(backup.startTime)}\nstop ${backup.stopLsn}, consistent at ${formatTime(backup.recoveryTime)}\n${exactBytes(backup.dataBytes)}`}
              </title>
              <rect x={x1} y={center - 11} width={x2 - x1} height={22} rx={2} />
              <text x={x1} y={i % 2 === 0 ? center - 15 : center + 24} className="mark-label">
                {backup.mode === 'FULL' ? 'F' : (backup.mode?.[0] ?? '?')} {backup.id}
              </text>
            </g>
          );
        })}
        {timeLabels.map((label, i) => (
          <g key={i} className="time-label">
            <line
              x1={label.x}
              x2={label.x}
              y1={height - TIME_ROWS}
              y2={height - TIME_ROWS + 4 + label.row * 14}
            />
            <text x={label.x} y={height - TIME_ROWS + 14 + label.row * 14} textAnchor="middle">
              {formatTime(label.time).slice(5, 19)}
            </text>
          </g>
        ))}
        {picked &&
          (() => {
            const lane = picture.lanes.find((candidate) => candidate.tli === picked.tli);
            if (!lane) return null;
            const x = xOf(picked.lsn);
            const center = laneCenter(lane.lane);
            return (
              <g className="picked" data-testid="timeline-picked">
                <line x1={x} x2={x} y1={center - 24} y2={center + 24} />
                <circle cx={x} cy={center - 24} r={4} />
              </g>
            );
          })()}
        {hover && hoverLane && hoverLsn !== null && (
          <g className="hover">
            <line x1={hover.x} x2={hover.x} y1={AXIS_TOP} y2={height - TIME_ROWS} />
            <text x={hover.x + 6} y={laneCenter(hover.lane) + LANE_HEIGHT / 2 - 4}>
              {formatLsnText(hoverLsn)}
              {hoverTime !== null ? ` ≈ ${formatTime(hoverTime)}` : ''}
              {isReachable(picture, hoverLane.tli, hoverLsn) ? '' : ' (not reachable)'}
            </text>
          </g>
        )}
      </svg>
    </div>
  );
}
