import { useMemo } from 'react';
import type { BackupStatus } from '../../../core/api/contract.js';
import { layoutChains } from '../chainLayout.js';
import type { Chain, ChainNode } from '../chainLayout.js';
import { exactBytes, formatBytes, formatTime } from '../format.js';
import { useActions, useStrata } from '../store/context.js';
import { BackupDetailsPanel } from './BackupDetailsPanel.js';

const NODE_WIDTH = 176;
const NODE_HEIGHT = 60;
const COLUMN_GAP = 44;
const ROW_GAP = 14;
const CHAIN_GAP = 30;
const CHAIN_TITLE = 22;
const MARGIN = 12;
/** Room left of a root for the dangling edge of a missing parent. */
const ORPHAN_STUB = 36;

/** A backup that cannot be restored as it is: drawn dashed, with the reason. */
const BROKEN: ReadonlySet<BackupStatus> = new Set(['ORPHAN', 'CORRUPT', 'ERROR']);

function nodeX(node: ChainNode): number {
  return MARGIN + ORPHAN_STUB + node.depth * (NODE_WIDTH + COLUMN_GAP);
}

function chainHeight(chain: Chain): number {
  return CHAIN_TITLE + chain.rowCount * (NODE_HEIGHT + ROW_GAP);
}

function ChainGraph({
  chain,
  top,
  focusedId,
}: {
  chain: Chain;
  top: number;
  focusedId: string | null;
}) {
  const actions = useActions();
  const position = new Map(chain.nodes.map((node) => [node.backup.id, node]));
  const y = (node: ChainNode) => top + CHAIN_TITLE + node.row * (NODE_HEIGHT + ROW_GAP);
  const root = position.get(chain.rootId)!;
  const totalBytes = chain.nodes.reduce((sum, node) => sum + (node.backup.dataBytes ?? 0), 0);
  return (
    <g data-testid={`chain-${chain.rootId}`}>
      <text x={MARGIN} y={top + 14} className="chain-title">
        {root.backup.mode === 'FULL' ? 'FULL' : 'Chain from'} {chain.rootId} — {chain.nodes.length}{' '}
        backup
        {chain.nodes.length === 1 ? '' : 's'}, {formatBytes(totalBytes)}
        <title>{exactBytes(totalBytes)}</title>
      </text>
      {chain.edges.map((edge) => {
        const parent = position.get(edge.parentId)!;
        const child = position.get(edge.childId)!;
        const x1 = nodeX(parent) + NODE_WIDTH;
        const y1 = y(parent) + NODE_HEIGHT / 2;
        const x2 = nodeX(child);
        const y2 = y(child) + NODE_HEIGHT / 2;
        const bend = x1 + COLUMN_GAP / 2;
        return (
          <path
            key={`${edge.parentId}-${edge.childId}`}
            className="chain-edge"
            d={`M${x1},${y1} L${bend},${y1} L${bend},${y2} L${x2},${y2}`}
          />
        );
      })}
      {chain.nodes.map((node) => {
        const backup = node.backup;
        const x = nodeX(node);
        const nodeY = y(node);
        const status = backup.status.toLowerCase();
        const classes = [
          'chain-node',
          `node-${status}`,
          BROKEN.has(backup.status) ? 'broken' : '',
          backup.id === focusedId ? 'focused' : '',
        ].join(' ');
        return (
          <g
            key={backup.id}
            className={classes}
            data-testid={`chain-node-${backup.id}`}
            data-status={backup.status}
            onClick={() => void actions.focusBackup(backup.id)}
          >
            <title>
              {`${backup.id} ${backup.mode ?? ''} ${backup.status}\nstart ${formatTime(backup.startTime)}\nLSN ${backup.startLsn} … ${backup.stopLsn}\n${exactBytes(backup.dataBytes)}`}
            </title>
            {node.missingParent && (
              <>
                <line
                  className="chain-edge missing"
                  x1={x - ORPHAN_STUB}
                  y1={nodeY + NODE_HEIGHT / 2}
                  x2={x}
                  y2={nodeY + NODE_HEIGHT / 2}
                />
                <text x={x - ORPHAN_STUB} y={nodeY + NODE_HEIGHT / 2 - 5} className="node-missing">
                  ?
                </text>
              </>
            )}
            <rect x={x} y={nodeY} width={NODE_WIDTH} height={NODE_HEIGHT} rx={5} />
            <rect x={x} y={nodeY} width={6} height={NODE_HEIGHT} className="node-stripe" />
            <text x={x + 14} y={nodeY + 17} className="node-mode">
              {backup.mode ?? '?'} <tspan className="node-wal">{backup.walMode}</tspan>
            </text>
            <text x={x + NODE_WIDTH - 8} y={nodeY + 17} className="node-status" textAnchor="end">
              {backup.status}
            </text>
            <text x={x + 14} y={nodeY + 34} className="node-id">
              {backup.id}
            </text>
            <text x={x + 14} y={nodeY + 51} className="node-meta">
              {formatBytes(backup.dataBytes)} · TLI {backup.timelineId} ·{' '}
              {formatTime(backup.startTime).slice(5, 16)}
            </text>
            {node.missingParent && (
              <text x={x + NODE_WIDTH - 8} y={nodeY + 51} className="node-missing" textAnchor="end">
                parent {backup.parentId} missing
              </text>
            )}
          </g>
        );
      })}
    </g>
  );
}

export function ChainsView() {
  const backups = useStrata((state) => state.backups);
  const focusedId = useStrata((state) => state.focusedBackupId);
  const chains = useMemo(() => layoutChains(backups), [backups]);
  const tops: number[] = [];
  let height = MARGIN;
  for (const chain of chains) {
    tops.push(height);
    height += chainHeight(chain) + CHAIN_GAP;
  }
  const depth = Math.max(1, ...chains.map((chain) => chain.depthCount));
  const width = MARGIN * 2 + ORPHAN_STUB + depth * (NODE_WIDTH + COLUMN_GAP);
  return (
    <div className="split">
      <div className="split-main">
        <div className="toolbar">
          <span className="muted">
            {chains.length} chain{chains.length === 1 ? '' : 's'}, {backups.length} backups. A FULL
            backup starts each chain; incrementals follow their parent. Click a backup for its
            details, databases and files.
          </span>
          <span className="grow" />
          <span className="legend">
            <span className="status status-ok">OK</span>
            <span className="status status-running">RUNNING</span>
            <span className="status status-orphan">ORPHAN</span>
            <span className="status status-corrupt">CORRUPT</span>
            <span className="status status-error">ERROR</span>
          </span>
        </div>
        {chains.length === 0 ? (
          <p className="muted empty">This instance has no backups yet.</p>
        ) : (
          <div className="svg-scroll">
            <svg
              className="chains"
              data-testid="chain-graph"
              width={width}
              height={height}
              viewBox={`0 0 ${width} ${height}`}
            >
              {chains.map((chain, i) => (
                <ChainGraph key={chain.rootId} chain={chain} top={tops[i]!} focusedId={focusedId} />
              ))}
            </svg>
          </div>
        )}
      </div>
      {focusedId && <BackupDetailsPanel />}
    </div>
  );
}
