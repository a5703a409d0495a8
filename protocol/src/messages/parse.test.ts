import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { testKey, type TestKey } from '../__fixtures__/trust.ts';
import { utf8 } from '../encoding/bytes.ts';
import { examples, wire } from './__fixtures__/examples.ts';
import type { ControlMessage } from './control-message.ts';
import {
  MAX_CONTROL_MESSAGE_BYTES,
  MAX_DEVICE_MESSAGE_BYTES,
  encodeControlMessage,
  parseCommand,
  parseControlMessage,
  parseDeviceMessage,
} from './parse.ts';
import { assertRefused as refused } from '../__fixtures__/refusals.ts';

let key: TestKey;
before(async () => {
  key = await testKey(300);
});

const TYPES = [
  'deploy',
  'rollback',
  'cancel',
  'state',
  'progress',
  'health',
  'blocks-request',
  'drift',
  'fl-train',
  'fl-update',
  'fl-update-part',
] as const;
const COMMANDS = new Set(['deploy', 'rollback', 'cancel', 'fl-train']);

/** The parser of the direction a message travels in. */
function parserFor(type: string): (bytes: Uint8Array) => ControlMessage {
  return COMMANDS.has(type) ? parseCommand : parseDeviceMessage;
}

function mutated(type: (typeof TYPES)[number], edit: (m: Record<string, unknown>) => void) {
  const message = examples(key)[type] as unknown as Record<string, unknown>;
  edit(message);
  return wire(message);
}

describe('control message parsing, every type', () => {
  for (const type of TYPES) {
    describe(type, () => {
      it('parses a valid example unchanged, with its direction and the full union', () => {
        const message = examples(key)[type];
        assert.deepEqual(parserFor(type)(wire(message)), message);
        assert.deepEqual(parseControlMessage(wire(message)), message);
      });

      it('refuses an unknown top-level field, naming it', () => {
        const bytes = mutated(type, (m) => (m.priority = 'high'));
        refused(() => parserFor(type)(bytes), 'MALFORMED', /unknown field "priority"/);
      });

      for (const field of ['id', 'type', 'schemaVersion', 'ts']) {
        it(`refuses a message without ${field}`, () => {
          const bytes = mutated(type, (m) => delete m[field]);
          refused(() => parserFor(type)(bytes), 'MALFORMED', new RegExp(`field "${field}"`));
        });
      }

      it('refuses schemaVersion 2 and "1"', () => {
        for (const version of [2, '1', 0]) {
          const bytes = mutated(type, (m) => (m.schemaVersion = version));
          refused(() => parserFor(type)(bytes), 'MALFORMED', /field "schemaVersion"/);
        }
      });

      it('refuses ids shorter than 8, longer than 64, or outside [A-Za-z0-9_-]', () => {
        for (const id of ['short', 'x'.repeat(65), 'has space 123', 'dev/../../x', '']) {
          const bytes = mutated(type, (m) => (m.id = id));
          refused(() => parserFor(type)(bytes), 'MALFORMED', /field "id"/);
        }
      });

      it('accepts ids of exactly 8 and 64 characters', () => {
        for (const id of ['abcd-123', 'A'.repeat(64)]) {
          const bytes = mutated(type, (m) => (m.id = id));
          assert.equal(parserFor(type)(bytes).id, id);
        }
      });

      it('refuses a timestamp that is not ISO 8601 UTC', () => {
        for (const ts of [
          '2026-11-26 12:00:00',
          '2026-11-26T12:00:00+01:00',
          'yesterday',
          1764158400000,
        ]) {
          const bytes = mutated(type, (m) => (m.ts = ts));
          refused(() => parserFor(type)(bytes), 'MALFORMED', /field "ts"/);
        }
      });

      it('is refused by the parser of the other direction', () => {
        const other = COMMANDS.has(type) ? parseDeviceMessage : parseCommand;
        refused(() => other(wire(examples(key)[type])), 'MALFORMED', /field "type"/);
      });

      it('round-trips through encodeControlMessage', () => {
        const message = examples(key)[type];
        assert.deepEqual(parseControlMessage(encodeControlMessage(message)), message);
      });
    });
  }
});

describe('control message bytes', () => {
  it('refuses a message over the cap with TOO_LARGE, before reading it', () => {
    const bytes = new Uint8Array(MAX_CONTROL_MESSAGE_BYTES + 1).fill(0x20); // valid JSON whitespace
    bytes.set(utf8('{}'), 0);
    refused(() => parseCommand(bytes), 'TOO_LARGE', /65537 bytes, the cap is 65536/);
    const device = new Uint8Array(MAX_DEVICE_MESSAGE_BYTES + 1).fill(0x20);
    device.set(utf8('{}'), 0);
    refused(() => parseDeviceMessage(device), 'TOO_LARGE');
  });

  it('caps device messages by type: a drift report may be larger than the others', () => {
    const padded = (message: unknown, size: number) => {
      const bytes = new Uint8Array(size).fill(0x20);
      bytes.set(wire(message), 0);
      return bytes;
    };
    const health = examples(key).health;
    refused(
      () => parseDeviceMessage(padded(health, MAX_CONTROL_MESSAGE_BYTES + 1)),
      'TOO_LARGE',
      /a health message of 65537 bytes, the cap is 65536/,
    );
    const drift = examples(key).drift;
    assert.equal(parseDeviceMessage(padded(drift, MAX_CONTROL_MESSAGE_BYTES + 1)).type, 'drift');
    assert.equal(parseDeviceMessage(padded(drift, MAX_DEVICE_MESSAGE_BYTES)).type, 'drift');
  });

  it('accepts a message of exactly the cap', () => {
    const json = wire(examples(key).cancel);
    const bytes = new Uint8Array(MAX_CONTROL_MESSAGE_BYTES).fill(0x20);
    bytes.set(json, 0);
    assert.equal(parseCommand(bytes).type, 'cancel');
  });

  it('refuses invalid JSON, invalid UTF-8 and non-objects', () => {
    refused(() => parseCommand(utf8('{"type":"cancel",')), 'MALFORMED', /not valid JSON/);
    refused(() => parseCommand(new Uint8Array([0x7b, 0xff, 0x7d])), 'MALFORMED', /not valid JSON/);
    refused(() => parseCommand(utf8('[]')), 'MALFORMED', /command/);
    refused(() => parseDeviceMessage(utf8('null')), 'MALFORMED', /device message/);
  });

  it('refuses an unknown message type, naming the field', () => {
    const bytes = mutated('cancel', (m) => (m.type = 'reboot'));
    refused(() => parseCommand(bytes), 'MALFORMED', /field "type"/);
  });

  it('names a nested unknown field by its path, and caps attacker-chosen names', () => {
    const bytes = mutated('deploy', (m) => {
      (m.bundle as Record<string, unknown>).compression = 'zstd';
    });
    refused(() => parseCommand(bytes), 'MALFORMED', /unknown field "bundle\.compression"/);
    const long = mutated('cancel', (m) => (m['k'.repeat(10_000)] = 1));
    refused(() => parseCommand(long), 'MALFORMED', /^MALFORMED: command: unknown field "k{64}"$/);
  });

  it('encodeControlMessage refuses what a receiver would refuse', () => {
    const message = examples(key).health as unknown as Record<string, unknown>;
    message.errors = 500;
    refused(
      () => encodeControlMessage(message as unknown as ControlMessage),
      'MALFORMED',
      /field "errors"/,
    );
  });

  it('encodeControlMessage refuses a message whose encoding exceeds the cap', () => {
    const message = examples(key).deploy as unknown as {
      bundle: { manifestEnvelope: { payload: string } };
    };
    message.bundle.manifestEnvelope.payload = 'A'.repeat(MAX_CONTROL_MESSAGE_BYTES);
    refused(() => encodeControlMessage(message as unknown as ControlMessage), 'TOO_LARGE');
  });
});
