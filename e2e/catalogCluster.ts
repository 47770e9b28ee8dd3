import { join } from 'node:path';
import { TestCluster, makeTempDir, type TestClusterOptions } from '../core/testing/cluster.js';
import { strata } from './strataCli.js';

/** A running cluster registered as an instance of a fresh catalog, as most end-to-end tests start. */
export interface CatalogCluster {
  cluster: TestCluster;
  /** Scratch directory of the test (restores go below it). */
  dir: string;
  catalog: string;
  instance: string;
  /** `-h -p -U -d` options reaching the cluster. */
  connection: string[];
  /** `backup -B … --instance … <args> <connection>`, as arguments of the CLI. */
  backupArgs(args: string[]): string[];
  /** Runs `backupArgs(args)`; fails the test when the backup fails. */
  backup(args: string[], options?: Parameters<typeof strata>[1]): ReturnType<typeof strata>;
  destroy(): Promise<void>;
}

export async function createCatalogCluster(
  options: Omit<TestClusterOptions, 'archiveTo'> & {
    instance?: string;
    archive?: boolean;
    compressArchive?: boolean;
  },
): Promise<CatalogCluster> {
  const scratch = makeTempDir(`strata-e2e-${options.major}-`);
  const catalog = join(scratch.path, 'catalog');
  const instance = options.instance ?? 'main';
  const cluster = await TestCluster.create({
    ...options,
    ...(options.archive
      ? { archiveTo: { backupPath: catalog, instance, compress: options.compressArchive ?? false } }
      : {}),
  });
  try {
    await strata(['init', '-B', catalog]);
    await strata(['add-instance', '-B', catalog, '--instance', instance, '-D', cluster.dataDir]);
    await cluster.start();
  } catch (error) {
    await cluster.destroy();
    scratch.remove();
    throw error;
  }
  const connection = cluster.connectionArgs();
  return {
    cluster,
    dir: scratch.path,
    catalog,
    instance,
    connection,
    backupArgs: (args) => ['backup', '-B', catalog, '--instance', instance, ...args, ...connection],
    backup: (args, options) =>
      strata(['backup', '-B', catalog, '--instance', instance, ...args, ...connection], options),
    async destroy() {
      await cluster.destroy();
      scratch.remove();
    },
  };
}
