import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  hashOperatorToken,
  issueOperatorToken,
  OPERATOR_ROLES,
  roleAllows,
} from './operator-tokens.ts';

describe('operator tokens and roles', () => {
  it('roles are ordered viewer < operator < approver < admin', () => {
    for (const [i, role] of OPERATOR_ROLES.entries()) {
      for (const [j, required] of OPERATOR_ROLES.entries()) {
        assert.equal(roleAllows(role, required), i >= j, `${role} vs ${required}`);
      }
    }
  });

  it('a token is shown once and stored as its hash; the same secret hashes the same', async () => {
    const { secret, tokenHash } = await issueOperatorToken();
    assert.match(secret, /^fleet_[A-Za-z0-9_-]{43}$/);
    assert.notEqual(tokenHash, secret);
    assert.equal(await hashOperatorToken(secret), tokenHash);
    const other = await issueOperatorToken();
    assert.notEqual(other.tokenHash, tokenHash);
  });

  it('uses all 32 random bytes', async () => {
    const a = await issueOperatorToken(() => new Uint8Array(32));
    const b = await issueOperatorToken(() => new Uint8Array(32).fill(0, 0, 31).fill(1, 31));
    assert.notEqual(a.secret, b.secret);
    await assert.rejects(issueOperatorToken(() => new Uint8Array(16)));
  });

  it('refuses to hash anything not shaped like a token', async () => {
    for (const bad of [
      '',
      'fleet_',
      'Bearer x',
      'fleet_' + 'a'.repeat(42),
      'fleet_' + 'a'.repeat(43) + '\n',
    ]) {
      assert.equal(await hashOperatorToken(bad), null, JSON.stringify(bad));
    }
  });
});
