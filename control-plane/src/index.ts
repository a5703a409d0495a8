/** @fleet/control-plane: Hono control plane: API, database, broker, registries, rollouts, telemetry, federated rounds. Nothing here yet; see README.md. */
export {};
