/** @fleet/simulator: Many real agents against a real control plane: scenarios, faults, reports, the demo. Nothing here yet; see README.md. */
export {};
