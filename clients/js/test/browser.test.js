// What the client does only in a page, in Node with the page's globals
// stood in for: the localStorage fallback where BroadcastChannel is
// missing, and the refetch when the page becomes visible or comes back
// online, at most every 5 s. Latchkey is real, as in client.test.js; the
// three-engine suite runs the same client in real browsers.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import { createClient } from '../dist/index.js';
import { browserFetch, password, startLatchkey } from './latchkey.js';

const origin = 'http://127.0.0.1:5173';
let latchkey;
let baseUrl;

// A window: an event target with the storage of its origin, whose writes
// reach every window of the origin as 'storage' events, and a document
// whose visibility the test sets.
const window = new EventTarget();
const document = Object.assign(new EventTarget(), { visibilityState: 'visible' });
const store = new Map();
const localStorage = {
  getItem: (k) => store.get(k) ?? null,
  setItem(k, v) {
    store.set(k, String(v));
    // A browser tells the origin's other windows; this one stands for them all.
    window.dispatchEvent(Object.assign(new Event('storage'), { key: k, newValue: String(v) }));
  },
};
const saved = globalThis.BroadcastChannel;

before(async () => {
  latchkey = await startLatchkey([
    { id: 'js-page', dev: true, origins: [origin], cookie: { same_site: 'lax' }, users: ['eve'] },
  ]);
  baseUrl = `http://${latchkey.public}/v1/t/js-page`;
  Object.assign(globalThis, { window, document, localStorage });
  delete globalThis.BroadcastChannel;
});

after(async () => {
  for (const k of ['window', 'document', 'localStorage']) delete globalThis[k];
  globalThis.BroadcastChannel = saved;
  await latchkey?.stop();
});

const tabs = [];
function tab(jar) {
  const log = [];
  const c = createClient({ baseUrl, fetch: browserFetch({ origin, jar, log }) });
  tabs.push(c);
  return Object.assign(c, { log });
}
const mes = (c) => c.log.filter((x) => x.path.endsWith('/me')).length;
const changed = (c) =>
  new Promise((resolve) => {
    const off = c.onChange((s) => {
      off();
      resolve(s);
    });
  });

describe('in a page', { timeout: 60_000 }, () => {
  afterEach(() => tabs.splice(0).forEach((c) => c.close()));

  test('without BroadcastChannel, tabs hear each other through localStorage', async () => {
    const jar = new Map();
    const a = tab(jar);
    const b = tab(jar);
    const signedIn = changed(b);
    await a.login('eve', password);
    assert.equal((await signedIn).session.id, a.session.session.id);
    assert.equal([...store.keys()].join(), 'latchkey:' + baseUrl, 'the key is the base URL');
    const signedOut = changed(b);
    await a.logout();
    assert.equal(await signedOut, null);
    assert.equal(b.session, null);
  });

  test('visible again or back online: one refetch of me, then none within 5 s', () => {
    const c = tab(new Map());
    document.visibilityState = 'hidden';
    window.dispatchEvent(new Event('online'));
    assert.equal(mes(c), 0, 'a hidden page waits to be seen');
    document.visibilityState = 'visible';
    document.dispatchEvent(new Event('visibilitychange'));
    assert.equal(mes(c), 1, 'the page became visible: me');
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('online'));
    assert.equal(mes(c), 1, 'within 5 s: no second me');
    for (const x of c.log) assert.equal(x.credentials, 'include');
  });

  test('close stops listening', () => {
    const c = tab(new Map());
    c.close();
    document.visibilityState = 'visible';
    document.dispatchEvent(new Event('visibilitychange'));
    window.dispatchEvent(new Event('online'));
    assert.equal(mes(c), 0);
  });
});
