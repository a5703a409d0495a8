/**
 * The agent's configuration: one typed object with defaults, merged once.
 * Flags and the environment are read only in main.ts.
 */
export interface AgentConfig {
  /** The control plane's HTTP URL (enrolment). */
  controlPlaneUrl: string;
  /** The broker to use; default: the one the control plane names at enrolment. */
  brokerUrl: string | null;
  dataDir: string;
  /** Needed once, for the first enrolment. */
  enrollToken: string | null;
  /** Default: derived from the device key (`dev-` and 12 hex digits of its id), kept in the identity file. */
  deviceId: string | null;
  hardware: string;
  tags: Record<string, string>;
  /** Local inference API; port 0 picks a free one, null turns it off. */
  inferHost: string;
  inferPort: number | null;
  tickIntervalMs: number;
  healthIntervalMs: number;
  /** Largest total uncompressed bundle the device accepts. */
  maxBundleBytes: number;
  /** Feedback: recent inferences remembered for delayed labels, and labelled samples kept on disk (`labels/`). */
  feedback: {
    recentMaxRows: number;
    recentMaxAgeMs: number;
    maxSamples: number;
    maxSampleAgeMs: number;
  };
}

export const defaultConfig: AgentConfig = {
  controlPlaneUrl: 'http://127.0.0.1:8080',
  brokerUrl: null,
  dataDir: '.fleet-agent',
  enrollToken: null,
  deviceId: null,
  hardware: 'generic',
  tags: {},
  inferHost: '127.0.0.1',
  inferPort: 8090,
  tickIntervalMs: 1_000,
  healthIntervalMs: 60_000,
  maxBundleBytes: 256 * 1024 * 1024,
  feedback: {
    recentMaxRows: 4096,
    recentMaxAgeMs: 60 * 60 * 1000,
    maxSamples: 5000,
    maxSampleAgeMs: 7 * 24 * 60 * 60 * 1000,
  },
};

export function mergeConfig(overrides: Partial<AgentConfig>): AgentConfig {
  return {
    ...defaultConfig,
    ...overrides,
    feedback: { ...defaultConfig.feedback, ...overrides.feedback },
  };
}
