/**
 * How a simulated fleet's training data is split over its devices, for
 * federated learning experiments (issue 7). Each function returns, per
 * device, the indices of the samples it holds; all are seeded, so a split is
 * the same on every run.
 *
 *   iid            shuffle, then equal consecutive slices (McMahan et al.
 *                  2017, "IID": each device a uniform sample of the data)
 *   pathological   sort by label, cut into 2 x devices equal shards, give
 *                  each device 2 shards at random (the paper's non-IID split:
 *                  most devices hold examples of only two digits)
 *   dirichlet      per class, device shares drawn from Dirichlet(alpha)
 *                  (Hsu et al. 2019): alpha -> infinity approaches IID,
 *                  alpha = 0.1 leaves most devices with one or two classes
 *
 * The Dirichlet draw needs Gamma variates; there is no well-kept seeded
 * sampler on npm, so Marsaglia and Tsang's method (2000) is written here.
 */

export type PartitionKind = 'iid' | 'pathological' | 'dirichlet';

export interface PartitionOptions {
  kind: PartitionKind;
  devices: number;
  seed: number;
  /** Concentration of the Dirichlet split (> 0); required for `dirichlet`. */
  alpha?: number;
  /** Shards per device of the pathological split (default 2, the paper's). */
  shardsPerDevice?: number;
}

/** Splits samples with these labels over `options.devices` devices; returns each device's sample indices. */
export function partitionSamples(labels: ArrayLike<number>, options: PartitionOptions): number[][] {
  const { devices } = options;
  if (!Number.isInteger(devices) || devices < 1) {
    throw new RangeError(`devices must be a positive integer, got ${devices}`);
  }
  if (labels.length < devices) {
    throw new RangeError(`${labels.length} samples cannot be split over ${devices} devices`);
  }
  const random = seededUniform(options.seed);
  switch (options.kind) {
    case 'iid':
      return iidSplit(labels.length, devices, random);
    case 'pathological':
      return pathologicalSplit(labels, devices, options.shardsPerDevice ?? 2, random);
    case 'dirichlet': {
      const alpha = options.alpha;
      if (alpha === undefined || !(alpha > 0) || !Number.isFinite(alpha)) {
        throw new RangeError(`the dirichlet split needs alpha > 0, got ${alpha}`);
      }
      return dirichletSplit(labels, devices, alpha, random);
    }
  }
}

function iidSplit(count: number, devices: number, random: () => number): number[][] {
  const order = shuffled(range(count), random);
  return slices(order, devices);
}

function pathologicalSplit(
  labels: ArrayLike<number>,
  devices: number,
  shardsPerDevice: number,
  random: () => number,
): number[][] {
  if (!Number.isInteger(shardsPerDevice) || shardsPerDevice < 1) {
    throw new RangeError(`shardsPerDevice must be a positive integer, got ${shardsPerDevice}`);
  }
  const shardCount = devices * shardsPerDevice;
  if (labels.length < shardCount) {
    throw new RangeError(`${labels.length} samples cannot make ${shardCount} shards`);
  }
  // Stable sort by label: equal labels keep index order, so the split is reproducible.
  const byLabel = range(labels.length).sort((a, b) => labels[a]! - labels[b]! || a - b);
  const shards = slices(byLabel, shardCount);
  const order = shuffled(range(shardCount), random);
  return range(devices).map((d) =>
    order.slice(d * shardsPerDevice, (d + 1) * shardsPerDevice).flatMap((s) => shards[s]!),
  );
}

function dirichletSplit(
  labels: ArrayLike<number>,
  devices: number,
  alpha: number,
  random: () => number,
): number[][] {
  const byClass = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const list = byClass.get(labels[i]!) ?? [];
    list.push(i);
    byClass.set(labels[i]!, list);
  }
  const out: number[][] = range(devices).map(() => []);
  for (const label of [...byClass.keys()].sort((a, b) => a - b)) {
    const members = shuffled(byClass.get(label)!, random);
    const shares = dirichlet(devices, alpha, random);
    // Cut points from the cumulative shares, so every sample goes to exactly one device.
    let start = 0;
    let cumulative = 0;
    for (let d = 0; d < devices; d++) {
      cumulative += shares[d]!;
      const end = d === devices - 1 ? members.length : Math.round(cumulative * members.length);
      out[d]!.push(...members.slice(start, Math.max(start, end)));
      start = Math.max(start, end);
    }
  }
  return out;
}

/** A draw from the symmetric Dirichlet(alpha) over `n` parts: n shares summing to 1. */
export function dirichlet(n: number, alpha: number, random: () => number): number[] {
  const draws = range(n).map(() => gamma(alpha, random));
  const total = draws.reduce((s, x) => s + x, 0);
  // Every draw underflowed to 0 (tiny alpha): put everything on one part, which is the limit.
  if (total === 0) return draws.map((_, i) => (i === Math.floor(random() * n) ? 1 : 0));
  return draws.map((x) => x / total);
}

/** Gamma(shape, 1) by Marsaglia and Tsang (2000); shape < 1 via the boost Gamma(a+1) * U^(1/a). */
export function gamma(shape: number, random: () => number): number {
  if (shape < 1) return gamma(shape + 1, random) * Math.pow(nonZero(random), 1 / shape);
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = normal(random);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = nonZero(random);
    if (Math.log(u) < 0.5 * x * x + d - d * v + d * Math.log(v)) return d * v;
  }
}

/** A standard normal variate (Box-Muller). */
function normal(random: () => number): number {
  return Math.sqrt(-2 * Math.log(nonZero(random))) * Math.cos(2 * Math.PI * random());
}

function nonZero(random: () => number): number {
  let u = random();
  while (u === 0) u = random();
  return u;
}

/** Uniform [0, 1) from a seeded xorshift32 (not for secrets). */
export function seededUniform(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 4_294_967_296;
  };
}

function shuffled<T>(items: T[], random: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

/** `parts` consecutive slices of `items`, sizes differing by at most one. */
function slices<T>(items: T[], parts: number): T[][] {
  return range(parts).map((p) =>
    items.slice(
      Math.floor((p * items.length) / parts),
      Math.floor(((p + 1) * items.length) / parts),
    ),
  );
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Distinct labels each device holds, for reports and tests. */
export function labelsPerDevice(labels: ArrayLike<number>, split: number[][]): number[] {
  return split.map((indices) => new Set(indices.map((i) => labels[i]!)).size);
}
