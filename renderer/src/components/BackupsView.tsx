import { useMemo, useState } from 'react';
import {
  columnFilteringFeature,
  createColumnHelper,
  createFilteredRowModel,
  createSortedRowModel,
  filterFn_equalsString,
  filterFn_includesString,
  functionalUpdate,
  globalFilteringFeature,
  rowSelectionFeature,
  rowSortingFeature,
  sortFn_basic,
  tableFeatures,
  useTable,
} from '@tanstack/react-table';
import type { ColumnFiltersState, RowSelectionState, SortingState } from '@tanstack/react-table';
import type { BackupStatus, BackupSummary } from '../../../core/api/contract.js';
import { compressionRatio } from '../format.js';
import { useActions, useStrata } from '../store/context.js';
import { BackupDetailsPanel } from './BackupDetailsPanel.js';
import { Bytes, Duration, Lsn, StatusBadge, Time } from './common.js';

const features = tableFeatures({
  rowSortingFeature,
  sortedRowModel: createSortedRowModel(),
  sortFns: { basic: sortFn_basic },
  columnFilteringFeature,
  globalFilteringFeature,
  filteredRowModel: createFilteredRowModel(),
  filterFns: { includesString: filterFn_includesString, equalsString: filterFn_equalsString },
  rowSelectionFeature,
});

const helper = createColumnHelper<typeof features, BackupSummary>();

function durationOf(backup: BackupSummary): number | null {
  return backup.endTime === null ? null : backup.endTime - backup.startTime;
}

function ratioOf(backup: BackupSummary): number {
  const ratio = Number(compressionRatio(backup.uncompressedBytes, backup.dataBytes));
  return Number.isFinite(ratio) ? ratio : 0;
}

/**
 * Backup IDs are start times in base36 (catalog-format.md §1.1): a longer ID is a later time, and
 * IDs of one length compare as text (digits before letters, as in base36).
 */
function compareBackupIds(a: string, b: string): number {
  return a.length - b.length || (a < b ? -1 : a > b ? 1 : 0);
}

/** LSNs sort by position, not by text: 0/A0000 comes after 0/9FFFF. */
function lsnSortKey(lsn: string): string {
  const [high = '0', low = '0'] = lsn.split('/');
  return `${high.padStart(8, '0')}/${low.padStart(8, '0')}`.toUpperCase();
}

const columns = helper.columns([
  helper.display({
    id: 'select',
    header: ({ table }) => (
      <input
        type="checkbox"
        aria-label="Select all backups"
        data-testid="select-all-backups"
        checked={table.getIsAllRowsSelected()}
        ref={(input) => {
          if (input)
            input.indeterminate = table.getIsSomeRowsSelected() && !table.getIsAllRowsSelected();
        }}
        onChange={table.getToggleAllRowsSelectedHandler()}
      />
    ),
    cell: ({ row }) => (
      <input
        type="checkbox"
        aria-label={`Select backup ${row.original.id}`}
        data-testid={`select-backup-${row.original.id}`}
        checked={row.getIsSelected()}
        onClick={(event) => event.stopPropagation()}
        onChange={row.getToggleSelectedHandler()}
      />
    ),
    enableSorting: false,
    enableColumnFilter: false,
  }),
  helper.accessor('id', {
    header: 'ID',
    sortFn: (a, b) => compareBackupIds(a.original.id, b.original.id),
    cell: (info) => <span className="mono strong">{info.getValue()}</span>,
    filterFn: 'includesString',
  }),
  helper.accessor('recoveryTime', {
    header: 'Recovery time',
    cell: (info) => <Time unix={info.getValue()} />,
    sortFn: 'basic',
    sortUndefined: 'last',
    enableColumnFilter: false,
  }),
  helper.accessor((backup) => backup.mode ?? '', {
    id: 'mode',
    header: 'Mode',
    cell: (info) => info.getValue() || '—',
    filterFn: 'equalsString',
  }),
  helper.accessor('walMode', { header: 'WAL mode', filterFn: 'equalsString' }),
  helper.accessor('timelineId', {
    header: 'TLI',
    cell: (info) => <span className="num">{info.getValue()}</span>,
    sortFn: 'basic',
    enableColumnFilter: false,
  }),
  helper.accessor(durationOf, {
    id: 'duration',
    header: 'Time',
    cell: (info) => <Duration seconds={info.getValue()} />,
    sortFn: 'basic',
    enableColumnFilter: false,
  }),
  helper.accessor('dataBytes', {
    header: 'Data',
    cell: (info) => <Bytes value={info.getValue()} />,
    sortFn: 'basic',
    enableColumnFilter: false,
  }),
  helper.accessor('walBytes', {
    header: 'WAL',
    cell: (info) => <Bytes value={info.getValue()} />,
    sortFn: 'basic',
    enableColumnFilter: false,
  }),
  helper.accessor('compressAlg', {
    header: 'Zalg',
    cell: (info) =>
      info.getValue() !== 'none' && info.row.original.compressLevel > 0
        ? `${info.getValue()}:${info.row.original.compressLevel}`
        : info.getValue(),
    filterFn: 'equalsString',
  }),
  helper.accessor(ratioOf, {
    id: 'zratio',
    header: 'Zratio',
    cell: (info) => (
      <span
        className="num"
        title={`${info.row.original.uncompressedBytes} bytes before compression / ${info.row.original.dataBytes ?? 0} bytes stored`}
      >
        {compressionRatio(info.row.original.uncompressedBytes, info.row.original.dataBytes)}
      </span>
    ),
    sortFn: 'basic',
    enableColumnFilter: false,
  }),
  helper.accessor((backup) => lsnSortKey(backup.startLsn), {
    id: 'startLsn',
    header: 'Start LSN',
    cell: (info) => <Lsn value={info.row.original.startLsn} />,
    enableColumnFilter: false,
  }),
  helper.accessor((backup) => lsnSortKey(backup.stopLsn), {
    id: 'stopLsn',
    header: 'Stop LSN',
    cell: (info) => <Lsn value={info.row.original.stopLsn} />,
    enableColumnFilter: false,
  }),
  helper.accessor('status', {
    header: 'Status',
    cell: (info) => <StatusBadge status={info.getValue()} />,
    filterFn: 'equalsString',
  }),
  helper.accessor((backup) => backup.parentId ?? '', {
    id: 'parent',
    header: 'Parent',
    cell: (info) => <span className="mono">{info.getValue() || '—'}</span>,
    filterFn: 'includesString',
  }),
  helper.accessor((backup) => backup.note ?? '', {
    id: 'note',
    header: 'Note',
    cell: (info) => {
      const backup = info.row.original;
      return (
        <span className="note" title={backup.note ?? ''}>
          {backup.expireTime !== null ? (
            <span
              className="pin"
              title={`Pinned until ${new Date(backup.expireTime * 1000).toISOString()}`}
            >
              📌{' '}
            </span>
          ) : null}
          {info.getValue()}
        </span>
      );
    },
    filterFn: 'includesString',
  }),
]);

const NUMERIC_COLUMNS = new Set(['timelineId', 'duration', 'dataBytes', 'walBytes', 'zratio']);
const STATUSES: BackupStatus[] = [
  'OK',
  'DONE',
  'RUNNING',
  'MERGING',
  'MERGED',
  'DELETING',
  'ERROR',
  'ORPHAN',
  'CORRUPT',
];
const CHOICES: Record<string, string[]> = {
  mode: ['FULL', 'DELTA', 'PAGE', 'PTRACK', 'SUMMARY'],
  walMode: ['STREAM', 'ARCHIVE'],
  compressAlg: ['none', 'zlib', 'pglz', 'lz4', 'zstd'],
  status: STATUSES,
};

function BackupsToolbar({ visibleCount }: { visibleCount: number }) {
  const backups = useStrata((state) => state.backups);
  const selected = useStrata((state) => state.selectedBackupIds);
  const actions = useActions();
  const single =
    selected.length === 1 ? backups.find((backup) => backup.id === selected[0]) : undefined;
  const openAction = (action: 'validate' | 'merge' | 'delete' | 'pin') =>
    actions.openDialog({ kind: 'action', action, backupIds: selected, jobIds: [] });
  return (
    <div className="toolbar" data-testid="backups-toolbar">
      <span className="muted" data-testid="backups-count">
        {visibleCount} of {backups.length} backups
        {selected.length > 0 ? `, ${selected.length} selected` : ''}
      </span>
      <span className="grow" />
      <button
        type="button"
        data-testid="action-restore"
        disabled={!single}
        onClick={() => single && actions.beginRestore({ backupId: single.id })}
      >
        Restore…
      </button>
      <button type="button" data-testid="action-validate" onClick={() => openAction('validate')}>
        {selected.length === 0 ? 'Validate instance…' : 'Validate…'}
      </button>
      <button
        type="button"
        data-testid="action-merge"
        disabled={!single || single.mode === 'FULL'}
        title="Merge an incremental backup into its FULL parent"
        onClick={() => openAction('merge')}
      >
        Merge…
      </button>
      <button
        type="button"
        data-testid="action-pin"
        disabled={selected.length === 0}
        onClick={() => openAction('pin')}
      >
        Pin…
      </button>
      <button
        type="button"
        className="danger"
        data-testid="action-delete"
        disabled={selected.length === 0}
        onClick={() => openAction('delete')}
      >
        Delete…
      </button>
    </div>
  );
}

export function BackupsView() {
  const backups = useStrata((state) => state.backups);
  const selectedIds = useStrata((state) => state.selectedBackupIds);
  const focusedId = useStrata((state) => state.focusedBackupId);
  const actions = useActions();
  const [sorting, setSorting] = useState<SortingState>([{ id: 'id', desc: true }]);
  const [columnFilters, setColumnFilters] = useState<ColumnFiltersState>([]);
  const [globalFilter, setGlobalFilter] = useState('');
  const rowSelection = useMemo<RowSelectionState>(
    () => Object.fromEntries(selectedIds.map((id) => [id, true])),
    [selectedIds],
  );

  const table = useTable({
    features,
    columns,
    data: backups,
    getRowId: (backup) => backup.id,
    state: { sorting, columnFilters, globalFilter, rowSelection },
    onSortingChange: setSorting,
    onColumnFiltersChange: setColumnFilters,
    onGlobalFilterChange: setGlobalFilter,
    onRowSelectionChange: (updater) => {
      const next = functionalUpdate(updater, rowSelection);
      actions.setSelectedBackups(Object.keys(next).filter((id) => next[id]));
    },
    globalFilterFn: 'includesString',
    // A click on a sorted column reverses it; the table always has an order.
    enableSortingRemoval: false,
    enableSubRowSelection: false,
  });
  const rows = table.getRowModel().rows;

  return (
    <div className="split">
      <div className="split-main">
        <div className="toolbar">
          <input
            className="search"
            data-testid="backups-search"
            placeholder="Filter all columns…"
            value={globalFilter}
            onChange={(event) => setGlobalFilter(event.target.value)}
          />
        </div>
        <BackupsToolbar visibleCount={rows.length} />
        <div className="table-scroll">
          <table className="grid backups" data-testid="backups-table">
            <thead>
              {table.getHeaderGroups().map((group) => (
                <tr key={group.id}>
                  {group.headers.map((header) => {
                    const sorted = header.column.getIsSorted();
                    return (
                      <th
                        key={header.id}
                        className={`${header.column.getCanSort() ? 'sortable' : ''} ${NUMERIC_COLUMNS.has(header.column.id) ? 'num' : ''} ${header.column.id === 'select' ? 'check-col' : ''}`}
                        data-testid={`column-${header.column.id}`}
                        onClick={header.column.getToggleSortingHandler()}
                        aria-sort={
                          sorted === 'asc' ? 'ascending' : sorted === 'desc' ? 'descending' : 'none'
                        }
                      >
                        <table.FlexRender header={header} />
                        {sorted === 'asc' ? ' ▲' : sorted === 'desc' ? ' ▼' : ''}
                      </th>
                    );
                  })}
                </tr>
              ))}
              <tr className="filters">
                {table.getAllLeafColumns().map((column) => (
                  <th key={column.id}>
                    {column.getCanFilter() ? (
                      CHOICES[column.id] ? (
                        <select
                          data-testid={`filter-${column.id}`}
                          value={(column.getFilterValue() as string | undefined) ?? ''}
                          onChange={(event) =>
                            column.setFilterValue(event.target.value || undefined)
                          }
                        >
                          <option value="">all</option>
                          {CHOICES[column.id]!.map((choice) => (
                            <option key={choice} value={choice}>
                              {choice}
                            </option>
                          ))}
                        </select>
                      ) : (
                        <input
                          data-testid={`filter-${column.id}`}
                          value={(column.getFilterValue() as string | undefined) ?? ''}
                          onChange={(event) =>
                            column.setFilterValue(event.target.value || undefined)
                          }
                        />
                      )
                    ) : null}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((row) => (
                <tr
                  key={row.id}
                  data-testid={`backup-row-${row.id}`}
                  data-status={row.original.status}
                  className={`clickable ${row.id === focusedId ? 'focused' : ''} ${row.getIsSelected() ? 'selected' : ''} row-${row.original.status.toLowerCase()}`}
                  onClick={() => void actions.focusBackup(row.id)}
                >
                  {row.getAllCells().map((cell) => (
                    <td
                      key={cell.id}
                      data-testid={`cell-${cell.column.id}`}
                      className={NUMERIC_COLUMNS.has(cell.column.id) ? 'num' : ''}
                    >
                      <table.FlexRender cell={cell} />
                    </td>
                  ))}
                </tr>
              ))}
              {rows.length === 0 && (
                <tr>
                  <td colSpan={columns.length} className="muted empty">
                    {backups.length === 0
                      ? 'This instance has no backups yet.'
                      : 'No backup matches the filters.'}
                  </td>
                </tr>
              )}
            </tbody>
          </table>
        </div>
      </div>
      {focusedId && <BackupDetailsPanel />}
    </div>
  );
}
