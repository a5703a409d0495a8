/**
 * @fleet/simulator: many real agents against a real control plane. Today it
 * holds the foundation demo (src/demo/trust-demo.ts); fleets, scenarios and
 * fault injection arrive with the agent and rollout issue.
 */
export {};
