/** RFC 8707 §2.1 resource indicators in the authorization request: which, and how JAR carries them. */
import { strict as assert } from 'node:assert';
import { describe, it } from 'node:test';
import { buildRequestObjectClaims } from '../../src/oauth/jar.js';
import { userTokenResources } from '../../src/oauth/login-parameters.js';

describe('userTokenResources', () => {
  it('names the resources of routes that send the user’s token, once each, in route order', () => {
    const routes = [
      { token: 'user', resource: 'https://b.example/' },
      { token: 'client', resource: 'https://client-only.example/' },
      { token: 'none', resource: 'https://none.example/' },
      { token: 'user-or-client', resource: 'https://a.example/' },
      { token: 'user-or-none', resource: 'https://b.example/' },
      { token: 'user', resource: undefined },
    ];
    assert.deepEqual(userTokenResources(routes), ['https://b.example/', 'https://a.example/']);
    assert.deepEqual(userTokenResources([{ token: 'user', resource: undefined }]), []);
  });
});

describe('buildRequestObjectClaims: resource', () => {
  it('one resource is a string claim, several an array (RFC 8707 §2.1 allows the parameter repeated)', () => {
    assert.equal(
      buildRequestObjectClaims({ resource: ['https://a.example/'] }, 'c').resource,
      'https://a.example/',
    );
    assert.deepEqual(
      buildRequestObjectClaims({ resource: ['https://a.example/', 'https://b.example/'] }, 'c').resource,
      ['https://a.example/', 'https://b.example/'],
    );
  });
  it('other parameters stay single strings', () => {
    assert.throws(() => buildRequestObjectClaims({ scope: ['a', 'b'] }, 'c'), /must be a string parameter/);
  });
});
