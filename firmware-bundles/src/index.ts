/**
 * @fleet/bundles: the bundle factory and the `fleet` CLI's key and bundle
 * commands. Quantization and the reference model arrive with the bundle
 * factory issue; today it holds the trust-root key ceremonies and packing.
 */
export * from './core/key-ceremony.ts';
export { createKeyDirectory, type KeyDirectory } from './adapters/fs/key-directory.ts';
export { writeFileAtomic } from './adapters/fs/atomic-write.ts';
export { createProgram, runCli } from './cli/program.ts';
export type { CliIo } from './cli/io.ts';
