import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { windowOf } from './windows.ts';

const T = Date.parse('2026-11-26T12:00:00Z');

describe('scoring windows', () => {
  it('puts a flush in the window holding its end, a boundary in the window ending there', () => {
    assert.deepEqual(windowOf(T + 1, 60_000), { startMs: T, endMs: T + 60_000 });
    assert.deepEqual(windowOf(T + 59_999, 60_000), { startMs: T, endMs: T + 60_000 });
    assert.deepEqual(windowOf(T, 60_000), { startMs: T - 60_000, endMs: T });
    assert.deepEqual(windowOf(T + 60_001, 60_000).startMs, T + 60_000);
  });
});
