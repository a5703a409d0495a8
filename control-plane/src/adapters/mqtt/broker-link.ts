/**
 * The control plane's side of MQTT, whichever broker carries it: publish as
 * the control plane, receive what devices send, and drop a device's
 * connection. Implemented by the embedded aedes broker (in-process) and by a
 * client of an external broker (external-broker.ts).
 */
export type DeviceMessageHandler = (topic: string, payload: Uint8Array) => Promise<void>;

export interface BrokerLink {
  readonly kind: 'embedded' | 'external';
  /** Where devices connect, e.g. mqtt://127.0.0.1:1884. */
  readonly deviceUrl: string;
  publish(
    topic: string,
    payload: Uint8Array,
    options?: { qos?: 0 | 1; retain?: boolean },
  ): Promise<void>;
  /** Delivers messages matching `filter` to `handler`, one at a time per link. */
  subscribe(filter: string, handler: DeviceMessageHandler): Promise<void>;
  /** Drops a device's live connection when the broker can (embedded only). */
  disconnect(deviceId: string): void;
  /** Connection events the broker sees (embedded only). */
  onConnection?(listener: (deviceId: string, online: boolean) => void): void;
  /** True while the link can carry messages (listening, or connected to the broker). */
  isUp(): boolean;
  close(): Promise<void>;
}
