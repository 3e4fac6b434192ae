// tokenFromLocation, the helper of the pages that mailed links open: no
// Latchkey needed (test/accounts.test.js follows real links with it).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { tokenFromLocation } from '../dist/index.js';

describe('tokenFromLocation', () => {
  test('null, and the address bar left alone, without a token', () => {
    const replaced = [];
    globalThis.history = { state: null, replaceState: (...a) => replaced.push(a) };
    try {
      assert.equal(tokenFromLocation(new URL('https://app.example.test/verify')), null);
      assert.equal(tokenFromLocation(new URL('https://app.example.test/verify#other=1')), null);
      assert.deepEqual(replaced, []);
      assert.equal(tokenFromLocation(new URL('https://app.example.test/reset?lang=en#a=1&token=abc_-9&b=2')), 'abc_-9');
      assert.deepEqual(replaced, [[null, '', '/reset?lang=en#a=1&b=2']]);
    } finally {
      delete globalThis.history;
    }
  });

  test('a browser without history still gets the token', () => {
    assert.equal(globalThis.history, undefined);
    assert.equal(tokenFromLocation(new URL('https://app.example.test/verify#token=xyz')), 'xyz');
  });
});
