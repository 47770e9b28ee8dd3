import type { BackupSummary } from '../../core/api/contract.js';

/**
 * Places backups as a graph of chains: each FULL backup is the root of a tree whose children are
 * the incrementals taken on top of it (parent-backup-id in backup.control). A child goes one
 * column to the right of its parent; the first child stays on its parent's row and later siblings
 * open new rows, so a straight chain reads as one line and a branch as a fork.
 */

export interface ChainNode {
  backup: BackupSummary;
  /** Column: 0 for the root, parent's column + 1 for a child. */
  depth: number;
  /** Row inside its chain. */
  row: number;
  /** The backup names a parent that is not in the catalog (deleted or never there). */
  missingParent: boolean;
}

export interface ChainEdge {
  parentId: string;
  childId: string;
}

export interface Chain {
  rootId: string;
  nodes: ChainNode[];
  edges: ChainEdge[];
  rowCount: number;
  depthCount: number;
}

function byStart(a: BackupSummary, b: BackupSummary): number {
  return a.startTime - b.startTime || a.id.localeCompare(b.id);
}

/** Chains newest root first, as `show` lists backups newest first. */
export function layoutChains(backups: readonly BackupSummary[]): Chain[] {
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  const children = new Map<string, BackupSummary[]>();
  const roots: BackupSummary[] = [];
  for (const backup of backups) {
    if (backup.parentId !== null && byId.has(backup.parentId)) {
      const siblings = children.get(backup.parentId) ?? [];
      siblings.push(backup);
      children.set(backup.parentId, siblings);
    } else {
      roots.push(backup);
    }
  }
  for (const siblings of children.values()) siblings.sort(byStart);
  roots.sort((a, b) => byStart(b, a));

  return roots.map((root) => {
    const nodes: ChainNode[] = [];
    const edges: ChainEdge[] = [];
    let nextRow = 0;
    let depthCount = 0;
    // Iterative depth-first walk: a long chain of incrementals must not exhaust the call stack.
    const stack: Array<{ backup: BackupSummary; depth: number; row: number }> = [
      { backup: root, depth: 0, row: nextRow++ },
    ];
    while (stack.length > 0) {
      const entry = stack.pop()!;
      // A later sibling gets its row only once the lines above it are finished.
      const row = entry.row === -1 ? nextRow++ : entry.row;
      const { backup, depth } = entry;
      nodes.push({ backup, depth, row, missingParent: depth === 0 && backup.parentId !== null });
      depthCount = Math.max(depthCount, depth + 1);
      const kids = children.get(backup.id) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) {
        edges.push({ parentId: backup.id, childId: kids[i]!.id });
        stack.push({ backup: kids[i]!, depth: depth + 1, row: i === 0 ? row : -1 });
      }
    }
    return { rootId: root.id, nodes, edges, rowCount: nextRow, depthCount };
  });
}

/** The backups built on any of `ids`, directly or through other incrementals (delete removes them too). */
export function descendantsOf(
  backups: readonly BackupSummary[],
  ids: readonly string[],
): BackupSummary[] {
  const removed = new Set(ids);
  let grew = true;
  while (grew) {
    grew = false;
    for (const backup of backups) {
      if (!removed.has(backup.id) && backup.parentId !== null && removed.has(backup.parentId)) {
        removed.add(backup.id);
        grew = true;
      }
    }
  }
  return backups.filter((backup) => removed.has(backup.id) && !ids.includes(backup.id));
}

/** The chain from the FULL backup to `id`, FULL first. */
export function chainTo(backups: readonly BackupSummary[], id: string): BackupSummary[] {
  const byId = new Map(backups.map((backup) => [backup.id, backup]));
  const chain: BackupSummary[] = [];
  let current = byId.get(id);
  while (current) {
    chain.unshift(current);
    current = current.parentId ? byId.get(current.parentId) : undefined;
  }
  return chain;
}
