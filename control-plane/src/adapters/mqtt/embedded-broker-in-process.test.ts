/**
 * The control plane's in-process subscription on the embedded broker: a slow
 * handler (a database under load) does not hold up the broker's other
 * deliveries, even when more devices publish at once than aedes keeps in
 * flight (100); it never runs more than IN_PROCESS_CONCURRENCY at once; and
 * every message still reaches it.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import type { MqttClient } from 'mqtt';
import { deviceTopic } from '@fleet/protocol';
import { IN_PROCESS_CONCURRENCY } from './work-queue.ts';
import { collect, startTestBroker, until, type TestBroker } from './__fixtures__/test-broker.ts';

const DEVICES = 120;
const HANDLER_MS = 400;

let t: TestBroker;
before(async () => {
  t = await startTestBroker();
});
after(() => t.close());

it('a slow control-plane handler does not delay commands to devices', async () => {
  let running = 0;
  let peak = 0;
  let handled = 0;
  await t.broker.subscribe('fleet/v1/dev/+/telemetry', async () => {
    running++;
    peak = Math.max(peak, running);
    await new Promise((r) => setTimeout(r, HANDLER_MS)); // a slow database
    running--;
    handled++;
  });
  const publishers: { id: string; client: MqttClient }[] = [];
  for (let i = 0; i < DEVICES; i++) {
    const d = await t.device(`burst-${i}`);
    publishers.push({ id: d.id, client: await t.connectAs(d) });
  }
  const B = await t.device('waits-for-cmd');
  const b = await t.connectAs(B);
  await b.subscribeAsync(deviceTopic(B.id, 'cmd'), { qos: 1 });

  // Every device reports at once (a reconnect storm), then a command goes out.
  const published = Promise.all(
    publishers.map(({ id, client }) =>
      client.publishAsync(deviceTopic(id, 'telemetry'), Buffer.from('x'), { qos: 1 }),
    ),
  );
  await until(() => running === IN_PROCESS_CONCURRENCY, 5000, 'the handler to be saturated');
  const sentAt = Date.now();
  await t.broker.publish(deviceTopic(B.id, 'cmd'), Buffer.from('{}'));
  await until(() => collect(b).length === 1, 1000, 'the command to B behind the burst');
  assert.ok(Date.now() - sentAt < 1000);
  await published;
  await until(() => handled === DEVICES, 10_000, 'every telemetry message handled');
  assert.equal(peak, IN_PROCESS_CONCURRENCY);
});
