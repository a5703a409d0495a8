/**
 * @fleet/protocol: everything the control plane and the agent must agree on.
 * Pure code: no Node built-ins, so it also runs in a browser.
 */
export * from './errors.ts';
export * from './encoding/bytes.ts';
export * from './encoding/json.ts';
export * from './encoding/time.ts';
export * from './crypto/ed25519.ts';
export * from './crypto/sha256.ts';
export * from './crypto/envelope.ts';
export * from './trust/root.ts';
export * from './trust/rollback.ts';
export * from './bundle/manifest.ts';
export * from './bundle/container.ts';
export * from './bundle/inflate.ts';
export * from './bundle/verify.ts';
export * from './bundle/pack.ts';
export * from './topics/index.ts';
export * from './messages/index.ts';
export * from './bundle/golden.ts';
export * from './transfer/bitmap.ts';
export * from './transfer/blocks.ts';
export * from './drift/random.ts';
export * from './drift/kll.ts';
export {
  KLL_DEFAULT_K,
  KLL_MAX_K,
  KLL_MIN_K,
  kllNormalizedRankError,
  kllSerializedSizeBound,
} from './drift/kll-levels.ts';
export {
  KLL_FORMAT_MAGIC,
  KLL_FORMAT_VERSION,
  KLL_MAX_SERIALIZED_BYTES,
} from './drift/kll-format.ts';
export * from './drift/frequent-items.ts';
export * from './drift/counters.ts';
export * from './drift/signal-sketch.ts';
export * from './drift/distances.ts';
export * from './drift/sample-distribution.ts';
export * from './drift/pca.ts';
export * from './drift/signals.ts';
export * from './drift/profile.ts';
export * from './fl/tensor-set.ts';
export * from './fl/tensor-math.ts';
export * from './fl/training-spec.ts';
export { INT8_QMAX, ZERO_GROUP_SCALE } from './fl/quantize.ts';
