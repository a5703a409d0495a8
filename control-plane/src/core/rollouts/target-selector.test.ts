import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isFleetError } from '@fleet/protocol';
import {
  buildSelector,
  formatSelector,
  matchesSelector,
  parseSelector,
} from './target-selector.ts';

function refused(run: () => unknown, pattern: RegExp): void {
  assert.throws(run, (error: unknown) => {
    assert.ok(isFleetError(error, 'INVALID_REQUEST'), String(error));
    assert.match(error.message, pattern);
    return true;
  });
}

const berlinPi = { id: 'dev-1', hardware: 'rpi4', tags: { site: 'berlin', ring: 'beta' } };
const munichPi = { id: 'dev-2', hardware: 'rpi4', tags: { site: 'munich' } };
const berlinJetson = { id: 'dev-3', hardware: 'jetson', tags: { site: 'berlin' } };

describe('parseSelector', () => {
  it('reads tag, hardware and id terms into one selector', () => {
    assert.deepEqual(parseSelector('tag:site=berlin, hardware:rpi4,hardware:jetson,id:dev-1'), {
      tags: { site: 'berlin' },
      hardware: ['jetson', 'rpi4'],
      deviceIds: ['dev-1'],
    });
  });

  it('keeps everything after the first = as the tag value (values may hold :)', () => {
    assert.deepEqual(parseSelector('tag:zone=eu:west'), { tags: { zone: 'eu:west' } });
  });

  it('reads all, alone, as the whole fleet', () => {
    assert.deepEqual(parseSelector(' all '), { all: true });
    refused(() => parseSelector('all,tag:site=berlin'), /'all' must stand alone/);
  });

  it('refuses an empty selector, empty terms and unknown kinds, naming the target', () => {
    refused(() => parseSelector(''), /^INVALID_REQUEST: target: empty term/);
    refused(() => parseSelector('tag:site=berlin,,id:dev-1'), /empty term/);
    refused(() => parseSelector('site=berlin'), /'site=berlin' is not tag:KEY=VALUE/);
    refused(() => parseSelector('tag:site'), /'tag:site' is not tag:KEY=VALUE/);
    refused(() => parseSelector('hardware:'), /hardware: '' is not valid/);
  });

  it('refuses invalid names, including a key that would be a prototype property', () => {
    // Assigned unchecked, `__proto__` would vanish and leave "hardware:rpi4" alone.
    refused(
      () => parseSelector('tag:__proto__=x,hardware:rpi4'),
      /'__proto__' is not a valid tag key/,
    );
    refused(() => parseSelector('tag:Site=berlin'), /'Site' is not a valid tag key/);
    refused(
      () => parseSelector('tag:site=ber lin'),
      /tag site: 'ber lin' is not a valid tag value/,
    );
    refused(() => parseSelector('id:../etc'), /deviceIds: '..\/etc' is not valid/);
  });

  it('refuses one tag asked with two values (no device could match)', () => {
    refused(() => parseSelector('tag:site=berlin,tag:site=munich'), /tag site is given twice/);
    assert.deepEqual(parseSelector('tag:site=berlin,tag:site=berlin'), {
      tags: { site: 'berlin' },
    });
  });
});

describe('buildSelector (structured input)', () => {
  it('normalises: sorted, de-duplicated lists', () => {
    assert.deepEqual(buildSelector({ deviceIds: ['b', 'a', 'b'], tags: { z: '1', a: '2' } }), {
      tags: { a: '2', z: '1' },
      deviceIds: ['a', 'b'],
    });
  });

  it('passes text through parseSelector', () => {
    assert.deepEqual(buildSelector('hardware:rpi4'), { hardware: ['rpi4'] });
  });

  it('refuses empty selectors, empty lists and unknown fields', () => {
    refused(
      () => buildSelector({}),
      /an empty selector is refused; target the whole fleet with all/,
    );
    refused(() => buildSelector({ tags: {} }), /an empty selector is refused/);
    refused(() => buildSelector({ hardware: [] }), /hardware is an empty list/);
    refused(() => buildSelector({ deviceId: ['dev-1'] }), /unknown field deviceId/);
    refused(() => buildSelector(null), /expected a selector/);
    refused(() => buildSelector(['all']), /expected a selector/);
  });

  it('refuses all beside another field, or all that is not true', () => {
    refused(() => buildSelector({ all: true, hardware: ['rpi4'] }), /all must stand alone/);
    refused(() => buildSelector({ all: false }), /all must be true/);
    assert.deepEqual(buildSelector({ all: true }), { all: true });
  });

  it('refuses wrong types and oversize lists', () => {
    refused(() => buildSelector({ tags: { site: 3 } }), /tag site: '3' is not a valid tag value/);
    refused(() => buildSelector({ hardware: 'rpi4' }), /hardware must be a list/);
    const many = Array.from({ length: 10_001 }, (_, i) => `dev-${i}`);
    refused(() => buildSelector({ deviceIds: many }), /deviceIds: at most 10000 entries/);
  });
});

describe('matchesSelector', () => {
  it('all matches every device', () => {
    for (const device of [berlinPi, munichPi, berlinJetson]) {
      assert.equal(matchesSelector(device, { all: true }), true);
    }
  });

  it('combines kinds with AND, and values within hardware or ids with OR', () => {
    const selector = parseSelector('tag:site=berlin,hardware:rpi4,hardware:rpi5');
    assert.equal(matchesSelector(berlinPi, selector), true);
    assert.equal(matchesSelector(munichPi, selector), false, 'wrong site');
    assert.equal(matchesSelector(berlinJetson, selector), false, 'wrong hardware');
  });

  it('needs every tag, with its value', () => {
    const selector = { tags: { site: 'berlin', ring: 'beta' } };
    assert.equal(matchesSelector(berlinPi, selector), true);
    assert.equal(matchesSelector(berlinJetson, selector), false);
    assert.equal(
      matchesSelector({ ...berlinPi, tags: { site: 'berlin', ring: 'ga' } }, selector),
      false,
    );
  });

  it('matches explicit ids only', () => {
    const selector = { deviceIds: ['dev-2', 'dev-3'] };
    assert.deepEqual(
      [berlinPi, munichPi, berlinJetson].map((d) => matchesSelector(d, selector)),
      [false, true, true],
    );
  });

  it('an empty selector (never built, but stored by mistake) matches nothing', () => {
    assert.equal(matchesSelector(berlinPi, {}), false);
  });
});

describe('formatSelector', () => {
  it('writes the text syntax back, and parses to the same selector', () => {
    const text = 'tag:ring=beta,tag:site=berlin,hardware:jetson,hardware:rpi4,id:dev-1';
    assert.equal(formatSelector(parseSelector(text)), text);
    assert.equal(formatSelector({ all: true }), 'all');
    const built = buildSelector({ deviceIds: ['b', 'a'], tags: { zone: 'eu:west' } });
    assert.deepEqual(parseSelector(formatSelector(built)), built);
  });
});
