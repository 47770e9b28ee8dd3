import { describe, expect, it } from 'vitest';
import { chainTo, descendantsOf, layoutChains } from './chainLayout.js';
import { sampleBackup } from './testing/sampleData.js';

describe('layoutChains', () => {
  const full1 = sampleBackup({ id: 'A1', startTime: 100 });
  const delta1 = sampleBackup({ id: 'A2', parentId: 'A1', mode: 'DELTA', startTime: 200 });
  const page1 = sampleBackup({ id: 'A3', parentId: 'A2', mode: 'PAGE', startTime: 300 });
  const branch = sampleBackup({ id: 'A4', parentId: 'A1', mode: 'DELTA', startTime: 400 });
  const full2 = sampleBackup({ id: 'B1', startTime: 500 });
  const orphan = sampleBackup({
    id: 'C2',
    parentId: 'GONE',
    mode: 'DELTA',
    status: 'ORPHAN',
    startTime: 600,
  });

  it('draws a straight chain on one row and a second child of a parent on a new row', () => {
    const [chain] = layoutChains([page1, branch, full1, delta1]);
    expect(chain!.rootId).toBe('A1');
    const at = Object.fromEntries(
      chain!.nodes.map((node) => [node.backup.id, [node.depth, node.row]]),
    );
    expect(at).toEqual({ A1: [0, 0], A2: [1, 0], A3: [2, 0], A4: [1, 1] });
    expect(chain!.rowCount).toBe(2);
    expect(chain!.depthCount).toBe(3);
    expect(chain!.edges).toHaveLength(3);
    expect(chain!.edges).toContainEqual({ parentId: 'A1', childId: 'A4' });
  });

  it('lists chains newest root first and roots a backup whose parent is missing', () => {
    const chains = layoutChains([full1, delta1, full2, orphan]);
    expect(chains.map((chain) => chain.rootId)).toEqual(['C2', 'B1', 'A1']);
    const orphanNode = chains[0]!.nodes[0]!;
    expect(orphanNode.missingParent).toBe(true);
    expect(chains[1]!.nodes[0]!.missingParent).toBe(false);
  });

  it('handles a chain of thousands of incrementals without recursion', () => {
    const backups = [sampleBackup({ id: 'F0', startTime: 0 })];
    for (let i = 1; i < 5000; i++) {
      backups.push(
        sampleBackup({
          id: `I${i}`,
          parentId: i === 1 ? 'F0' : `I${i - 1}`,
          mode: 'DELTA',
          startTime: i,
        }),
      );
    }
    const [chain] = layoutChains(backups);
    expect(chain!.depthCount).toBe(5000);
    expect(chain!.rowCount).toBe(1);
  });
});

describe('descendantsOf and chainTo', () => {
  const backups = [
    sampleBackup({ id: 'F', startTime: 1 }),
    sampleBackup({ id: 'D1', parentId: 'F', mode: 'DELTA', startTime: 2 }),
    sampleBackup({ id: 'D2', parentId: 'D1', mode: 'DELTA', startTime: 3 }),
    sampleBackup({ id: 'D3', parentId: 'F', mode: 'DELTA', startTime: 4 }),
    sampleBackup({ id: 'G', startTime: 5 }),
  ];

  it('finds every backup built on the given ones, through other incrementals', () => {
    expect(descendantsOf(backups, ['D1']).map((backup) => backup.id)).toEqual(['D2']);
    expect(descendantsOf(backups, ['F']).map((backup) => backup.id)).toEqual(['D1', 'D2', 'D3']);
    expect(descendantsOf(backups, ['G'])).toEqual([]);
  });

  it('walks parents back to the FULL backup', () => {
    expect(chainTo(backups, 'D2').map((backup) => backup.id)).toEqual(['F', 'D1', 'D2']);
  });
});
