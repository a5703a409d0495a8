/** @fleet/edge-agent: The device daemon fleet-agent: MQTT session, verified A/B updates, inference, drift sketches, local training. Nothing here yet; see README.md. */
export {};
