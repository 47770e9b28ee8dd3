export { archivePush } from './archivePush.js';
export type { ArchivePushParams, ArchivePushResult } from './archivePush.js';
export { archiveGet } from './archiveGet.js';
export type { ArchiveGetParams } from './archiveGet.js';
export { ArchiveWalSource, DirectoryWalSource } from './walSources.js';
export { waitForArchivedSegment } from './waitForArchivedSegment.js';
export type { WaitForArchivedSegmentParams } from './waitForArchivedSegment.js';
