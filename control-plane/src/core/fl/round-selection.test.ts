import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { selectDevices, selectionSize, type CandidateDevice } from './round-selection.ts';

const fleet = (n: number, over: Partial<CandidateDevice> = {}): CandidateDevice[] =>
  Array.from({ length: n }, (_, i) => ({
    deviceId: `dev-${String(i).padStart(3, '0')}`,
    online: true,
    labelledSamples: 100,
    matchesTarget: true,
    ...over,
  }));
const opts = { fraction: 0.1, minClients: 2, minSamples: 10, seed: 'round-1' };

describe('selection', () => {
  it('selects max(minClients, ceil(fraction * eligible)), capped at eligible', () => {
    assert.equal(selectionSize(0.1, 2, 100), 10);
    assert.equal(selectionSize(0.1, 2, 101), 11);
    assert.equal(selectionSize(0.1, 2, 30), 3); // 0.1 * 30 is not rounded up past 3
    assert.equal(selectionSize(0.1, 5, 20), 5);
    assert.equal(selectionSize(1, 1, 7), 7);
    assert.equal(selectionSize(0.1, 9, 7), 7);
  });

  it('takes only online devices on target with enough labelled samples', () => {
    const devices = [
      ...fleet(3),
      { deviceId: 'offline', online: false, labelledSamples: 100, matchesTarget: true },
      { deviceId: 'few', online: true, labelledSamples: 9, matchesTarget: true },
      { deviceId: 'other', online: true, labelledSamples: 100, matchesTarget: false },
    ];
    const r = selectDevices(devices, { ...opts, fraction: 1 });
    assert.ok(r.ok);
    assert.deepEqual([...r.selected].sort(), ['dev-000', 'dev-001', 'dev-002']);
  });

  it('fails with the counts when fewer are eligible than minClients', () => {
    const devices = [
      ...fleet(1),
      ...fleet(2, { online: false }).map((d) => ({ ...d, deviceId: `${d.deviceId}-off` })),
    ];
    const r = selectDevices(devices, { ...opts, minClients: 2 });
    assert.equal(r.ok, false);
    assert.match(
      r.ok ? '' : r.reason,
      /1 eligible device\(s\), fewer than minClients 2 \(of 3: 0 off target, 2 offline, 0 under 10/,
    );
  });

  it('is deterministic per seed whatever the input order, and differs across seeds', () => {
    fc.assert(
      fc.property(fc.integer({ min: 20, max: 300 }), fc.string(), (n, seed) => {
        const devices = fleet(n);
        const a = selectDevices(devices, { ...opts, seed });
        const b = selectDevices([...devices].reverse(), { ...opts, seed });
        assert.ok(a.ok && b.ok);
        assert.deepEqual(a.selected, b.selected);
        assert.equal(a.selected.length, Math.max(2, Math.ceil(0.1 * n)));
        assert.equal(new Set(a.selected).size, a.selected.length);
      }),
    );
    const one = selectDevices(fleet(200), { ...opts, seed: 'round-1' });
    const two = selectDevices(fleet(200), { ...opts, seed: 'round-2' });
    assert.ok(one.ok && two.ok);
    assert.notDeepEqual(one.selected, two.selected);
  });
});
