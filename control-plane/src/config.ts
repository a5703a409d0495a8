/**
 * The control plane's configuration: one typed object with defaults, merged
 * once. Only main.ts reads flags and the environment to build it.
 */
import { DEFAULT_DRIFT_POLICY, type DriftPolicy } from './core/drift/drift-policy.ts';
import type { RoundConfig } from './core/fl/round-config.ts';
import { DEFAULT_POSTGRES_POOL_SIZE } from './adapters/db/database.ts';
export interface Config {
  /** HTTP API listen address. */
  httpHost: string;
  httpPort: number;
  /** Where PGlite data, blobs and the like live (embedded defaults). */
  dataDir: string;
  /** PostgreSQL URL; unset: embedded PGlite in `{dataDir}/db`. */
  databaseUrl?: string;
  /** PostgreSQL connections per pool, queries and transactions (adapters/db/database.ts says why). */
  databasePoolSize: number;
  /** External MQTT broker URL; unset: the embedded aedes broker. */
  mqttUrl?: string;
  /** Shared-subscription group for replicas on an external broker. */
  mqttShareGroup?: string;
  /** Embedded broker listen address (1883 is often taken by a system Mosquitto). */
  mqttHost: string;
  mqttPort: number;
  /** Largest bundle upload accepted. */
  maxBundleBytes: number;
  /** pino level: fatal, error, warn, info, debug, trace, silent. */
  logLevel: string;
  /** How long shutdown waits for in-flight requests. */
  shutdownGraceMs: number;
  /** Rollout engine timing (tests and benchmarks shorten them). */
  rollouts: {
    /** How often timeouts, retries and bake times are checked. */
    tickIntervalMs: number;
    /** Device reports arriving within this window are applied in one transaction. */
    batchWindowMs: number;
    /**
     * When a wave's blocks are broadcast (services/broadcast-gate.ts): once
     * every device sent a deploy is subscribed, or readiness has been quiet
     * for `broadcastQuietMs`, or at `broadcastMaxWaitMs`; never before
     * `broadcastMinDelayMs`.
     */
    broadcastMinDelayMs: number;
    broadcastQuietMs: number;
    broadcastMaxWaitMs: number;
  };
  /** Drift scoring (core/drift/drift-policy.ts says what each setting does and why its default). */
  drift: DriftPolicy;
  /** Federated rounds (services/fl-rounds.ts). */
  fl: {
    /** How often round deadlines, expired partial uploads and pending actions are checked. */
    tickIntervalMs: number;
    /** Most bytes of partial device updates held in memory at once (by their signed sizes). */
    maxBufferedUpdateBytes: number;
    /** Round settings used where a request gives none (over core/fl/round-config.ts defaults). */
    round: Partial<RoundConfig>;
    /**
     * A bundle key directory (`fleet keys init` layout) whose bundle keys sign
     * federated candidates; unset or empty, candidates cannot be built
     * (FL_NO_SIGNING_KEYS). Holding keys online is a governance choice: see
     * the README's "Governance" section.
     */
    signingKeysDir?: string;
    /** Largest held-out eval set (`.fleval`) accepted by PUT /v1/eval-sets/:name. */
    maxEvalSetBytes: number;
  };
}

export const defaultConfig: Config = {
  httpHost: '127.0.0.1',
  httpPort: 8080,
  dataDir: '.fleet',
  databasePoolSize: DEFAULT_POSTGRES_POOL_SIZE,
  mqttHost: '127.0.0.1',
  mqttPort: 1884,
  maxBundleBytes: 64 * 1024 * 1024,
  logLevel: 'info',
  shutdownGraceMs: 10_000,
  rollouts: {
    tickIntervalMs: 1_000,
    batchWindowMs: 50,
    broadcastMinDelayMs: 0,
    // Readiness reports of a busy wave come in bursts; a second's gap is not
    // yet "everyone who will answer has" (measured: 1 s fired before most
    // of 1,000 simulated agents had subscribed).
    broadcastQuietMs: 3_000,
    broadcastMaxWaitMs: 30_000,
  },
  drift: DEFAULT_DRIFT_POLICY,
  fl: {
    tickIntervalMs: 5_000,
    // Four full 64 MiB updates, or ~1,300 updates of the MNIST 2NN (~200 KB int8) at once.
    maxBufferedUpdateBytes: 256 * 1024 * 1024,
    round: {},
    // The MNIST test set (10,000 x 784 float32 + labels) is ~31 MB.
    maxEvalSetBytes: 64 * 1024 * 1024,
  },
};

/** What a caller may override: any key, and any of the rollout timings or drift settings. */
export type ConfigOverrides = Partial<Omit<Config, 'rollouts' | 'drift' | 'fl'>> & {
  rollouts?: Partial<Config['rollouts']>;
  drift?: Partial<Config['drift']>;
  fl?: Partial<Config['fl']>;
};

/** Defaults, then `overrides`, ignoring keys set to undefined. */
export function mergeConfig(overrides: ConfigOverrides): Config {
  const defined = Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined));
  return {
    ...defaultConfig,
    ...defined,
    rollouts: { ...defaultConfig.rollouts, ...overrides.rollouts },
    drift: { ...defaultConfig.drift, ...overrides.drift },
    fl: { ...defaultConfig.fl, ...overrides.fl },
  };
}
