import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { isInvalidTokenChallenge } from '../../src/dpop/challenge.js';
import { parseChallenges } from '../../src/oauth/www-authenticate.js';

describe('WWW-Authenticate challenges (RFC 9110 §11.6.1)', () => {
  it('parses several challenges with quoted and token parameters, case-insensitive names', () => {
    assert.deepEqual(
      parseChallenges(
        'Bearer realm="api", error="invalid_token", error_description="a \\"quoted\\" word", DPoP algs="ES256 PS256", ERROR=use_dpop_nonce',
      ),
      [
        {
          scheme: 'bearer',
          params: { realm: 'api', error: 'invalid_token', error_description: 'a "quoted" word' },
        },
        { scheme: 'dpop', params: { algs: 'ES256 PS256', error: 'use_dpop_nonce' } },
      ],
    );
  });
  it('reads every header line and skips token68 challenges', () => {
    assert.deepEqual(parseChallenges(['Negotiate abc==', 'Basic realm=x, Bearer']), [
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
      { scheme: 'bearer', params: {} },
    ]);
  });
  it('stops at malformed input without inventing parameters', () => {
    assert.deepEqual(parseChallenges('Bearer error="unterminated'), [{ scheme: 'bearer', params: {} }]);
    assert.deepEqual(parseChallenges(',,, "'), []);
    assert.deepEqual(parseChallenges(undefined), []);
  });
  it('recognises invalid_token only as the error of a Bearer or DPoP challenge', () => {
    assert.equal(isInvalidTokenChallenge('Bearer error="invalid_token"'), true);
    assert.equal(isInvalidTokenChallenge('DPoP algs="ES256", error="invalid_token"'), true);
    assert.equal(isInvalidTokenChallenge('Bearer error_description="invalid_token"'), false);
    assert.equal(isInvalidTokenChallenge('Basic error="invalid_token"'), false);
    assert.equal(isInvalidTokenChallenge('Bearer error="insufficient_scope"'), false);
  });
});
