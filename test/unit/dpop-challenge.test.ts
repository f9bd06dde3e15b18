import { strict as assert } from 'node:assert';
import { it } from 'node:test';
import { isUseDpopNonceChallenge } from '../../src/dpop/challenge.js';

it('recognises a use_dpop_nonce challenge whatever the scheme case, among other challenges (RFC 9449 §9)', async () => {
  assert.equal(await isUseDpopNonceChallenge('DPoP error="use_dpop_nonce", error_description="nonce"'), true);
  assert.equal(await isUseDpopNonceChallenge('dPoP error="use_dpop_nonce"'), true);
  assert.equal(
    await isUseDpopNonceChallenge(['Bearer realm="x"', 'DPoP algs="ES256", error="use_dpop_nonce"']),
    true,
  );
  assert.equal(await isUseDpopNonceChallenge('Bearer error="use_dpop_nonce"'), false);
  assert.equal(await isUseDpopNonceChallenge('DPoP error="invalid_token"'), false);
  assert.equal(await isUseDpopNonceChallenge('garbage ,,, "'), false);
  assert.equal(await isUseDpopNonceChallenge(undefined), false);
});
