// The client against a real Latchkey (test/latchkey.js), in both URL
// forms, through a fetch that behaves towards Latchkey as a browser page
// on a listed origin does (browserFetch). The built package is what is
// tested: dist/index.js, as a page loads it.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import {
  CookieNotSentError,
  createClient,
  ForbiddenOriginError,
  InvalidCredentialsError,
  LatchkeyError,
  NetworkError,
  RateLimitedError,
  UnauthenticatedError,
} from '../dist/index.js';
import { browserFetch, freePort, password, startLatchkey } from './latchkey.js';

const pathOrigin = 'http://127.0.0.1:5173';
const hostOrigin = 'http://localhost:5173';
const users = ['alice', 'bob', 'carol', 'dora', 'tab'];
const timeout = 60_000;

let latchkey;
const forms = [];

before(async () => {
  latchkey = await startLatchkey([
    // Path form on 127.0.0.1, from a page on 127.0.0.1: one site, so a Lax
    // cookie works in every browser.
    { id: 'js-path', dev: true, origins: [pathOrigin], cookie: { same_site: 'lax' }, users },
    // Host form on localhost, the one name Node resolves to loopback that a
    // tenant can claim; the path form stays on 127.0.0.1.
    { id: 'js-host', dev: true, origins: [hostOrigin], hostnames: ['localhost'], cookie: { same_site: 'lax' }, users },
    // One failed login per account per window: the second is refused.
    { id: 'js-limit', dev: true, origins: [pathOrigin], cookie: { same_site: 'lax' }, login_limits: { per_account: 1 }, users: ['lim'] },
  ]);
  const port = latchkey.public.split(':')[1];
  forms.push(
    { name: 'path form', baseUrl: `http://${latchkey.public}/v1/t/js-path`, origin: pathOrigin },
    { name: 'host form', baseUrl: `http://localhost:${port}/v1`, origin: hostOrigin },
  );
});

after(async () => {
  await latchkey?.stop();
});

// tab is a client on form's base URL in a page on its origin, with its own
// cookie jar unless given one (a second tab of the same browser), and the
// calls it made and the changes it was told of.
function tab(form, opts = {}) {
  const log = [];
  const seen = [];
  const c = createClient({ baseUrl: form.baseUrl, fetch: browserFetch({ origin: form.origin, log, ...opts }) });
  c.onChange((s) => seen.push(s));
  tabs.push(c);
  return Object.assign(c, { log, seen });
}
// Every client of this process on one base URL shares its BroadcastChannel,
// as the tabs of one browser do: each test closes its own, and the tests
// with two devices (two jars) look for their calls in the log rather than
// at its end, since the other device's login reaches them as a hint.
const tabs = [];
const closeTabs = () => tabs.splice(0).forEach((c) => c.close());

// call is c's last call of method to a path ending in end.
const call = (c, method, end) => c.log.findLast((x) => x.method == method && x.path.endsWith(end));

// changed resolves at c's next change of who is signed in.
const changed = (c) =>
  new Promise((resolve) => {
    const off = c.onChange((s) => {
      off();
      resolve(s);
    });
  });

const pathForm = () => forms[0];

for (const i of [0, 1]) {
  describe(['path form', 'host form'][i], { timeout }, () => {
    const form = () => forms[i];
    afterEach(closeTabs);

    test('login posts JSON with credentials, then confirms with me and the receipt', async () => {
      const c = tab(form());
      const r = await c.login('alice', password);
      assert.equal(r.user.username, 'alice');
      assert.equal(r.session.current, true);
      assert.match(r.receipt, /^[A-Za-z0-9_-]+=*$/);
      assert.equal(c.session.session.id, r.session.id);
      assert.deepEqual(c.seen.map((s) => s.session.id), [r.session.id]);

      assert.equal(c.log.length, 2, 'login and the me that confirms it');
      const [login, me] = c.log;
      assert.equal(login.method, 'POST');
      assert.ok(login.path.endsWith('/login'), login.path);
      assert.equal(login.headers['content-type'], 'application/json');
      assert.deepEqual(JSON.parse(login.body), { username: 'alice', password });
      assert.equal(me.method, 'GET');
      assert.ok(me.path.endsWith('/me'), me.path);
      assert.equal(me.headers['latchkey-receipt'], r.receipt);
      for (const x of c.log) assert.equal(x.credentials, 'include', `${x.method} ${x.path}`);

      const v = await c.me();
      assert.equal(v.user.username, 'alice');
      assert.equal(v.session.id, r.session.id);
      assert.equal(c.log[2].headers['latchkey-receipt'], undefined, 'the receipt is for the confirming me only');
      assert.equal(c.seen.length, 1, 'the same session is no change');
    });

    test('sessions lists both devices; revokeSession ends one, then the own', async () => {
      const a = tab(form());
      const b = tab(form());
      await a.login('bob', password);
      await b.login('bob', password);
      const ids = (await a.sessions()).sessions.map((s) => [s.id, s.current]);
      assert.deepEqual(
        ids.filter(([id]) => id == a.session.session.id || id == b.session.session.id).sort(),
        [
          [a.session.session.id, true],
          [b.session.session.id, false],
        ].sort(),
      );

      const other = b.session.session.id;
      await a.revokeSession(other);
      assert.ok(call(a, 'DELETE', '/sessions/' + other));
      assert.notEqual(a.session, null, 'revoking another session keeps this one');
      await assert.rejects(b.me(), UnauthenticatedError);
      assert.equal(b.session, null);
      assert.equal(b.seen.at(-1), null);
      assert.ok(!(await a.sessions()).sessions.some((s) => s.id == other));

      await a.revokeSession(a.session.session.id);
      assert.equal(a.session, null);
      assert.equal(a.seen.at(-1), null);
      await assert.rejects(a.me(), UnauthenticatedError);
    });

    test('logout sends JSON and ends the session; me is then unauthenticated', async () => {
      const c = tab(form());
      await c.login('carol', password);
      await c.logout();
      const out = call(c, 'POST', '/logout');
      assert.equal(out.headers['content-type'], 'application/json');
      assert.equal(out.body, '{}');
      assert.equal(out.credentials, 'include');
      assert.equal(c.session, null);
      assert.equal(c.seen.at(-1), null);

      const err = await c.me().then(
        () => assert.fail('me resolved after logout'),
        (e) => e,
      );
      assert.ok(err instanceof UnauthenticatedError, err);
      assert.ok(!(err instanceof CookieNotSentError), 'no receipt was sent: plain unauthenticated');
      assert.equal(err.type, 'urn:latchkey:problem:unauthenticated');
      assert.equal(err.status, 401);
      assert.equal(err.name, 'UnauthenticatedError');
      await c.logout(); // idempotent
    });

    test('logoutEverywhere ends every session of the user', async () => {
      const a = tab(form());
      const b = tab(form());
      await a.login('dora', password);
      await b.login('dora', password);
      await a.logoutEverywhere();
      assert.ok(call(a, 'DELETE', '/sessions'));
      assert.equal(a.session, null);
      await assert.rejects(b.me(), UnauthenticatedError);
      await assert.rejects(a.sessions(), UnauthenticatedError);
    });

    test('doctor is the live check of this page', async () => {
      const c = tab(form());
      let d = await c.doctor();
      assert.equal(d.origin, form().origin);
      assert.equal(d.origin_listed, true);
      assert.equal(d.cookie_present, false);
      assert.equal(d.browser_family, 'unknown');
      assert.equal(d.results.length, 6, 'an unknown browser gets every profile');
      await c.login('alice', password);
      d = await c.doctor();
      assert.equal(d.cookie_present, true);
      assert.equal(d.session_valid, true);
      assert.ok(d.results.every((v) => v.works), JSON.stringify(d.results));
    });

    test('cookie-not-sent: a browser that drops the cookie fails the login with the reason', async () => {
      const c = tab(form(), { dropCookies: true });
      const err = await c.login('alice', password).then(
        () => assert.fail('login resolved though the cookie was dropped'),
        (e) => e,
      );
      assert.ok(err instanceof CookieNotSentError, err);
      assert.ok(err instanceof UnauthenticatedError);
      assert.ok(err instanceof LatchkeyError);
      assert.equal(err.name, 'CookieNotSentError');
      assert.equal(err.type, 'urn:latchkey:problem:cookie-not-sent');
      assert.equal(err.status, 401);
      assert.equal(err.browser, 'unknown');
      // Every profile keeps a Lax cookie here: the page, then, sent none.
      assert.deepEqual(err.reasons, ['CredentialsNotIncluded']);
      assert.match(err.advice, /credentials: 'include'/);
      assert.ok(err.detail.length > 0);
      assert.ok(err.message.includes(err.detail) && err.message.includes(err.advice), err.message);
      assert.equal(c.session, null);
      assert.deepEqual(c.seen, []);
    });

    test('invalid credentials', async () => {
      const c = tab(form());
      const err = await c.login('alice', 'not the password at all').then(
        () => assert.fail('login resolved'),
        (e) => e,
      );
      assert.ok(err instanceof InvalidCredentialsError, err);
      assert.ok(!(err instanceof UnauthenticatedError));
      assert.equal(err.type, 'urn:latchkey:problem:invalid-credentials');
      assert.equal(err.status, 401);
      assert.equal(err.retryAfter, undefined);
      assert.equal(c.session, null);
      assert.equal(c.log.length, 1, 'no me after a refused login');
    });

    test('two tabs: a login and a logout in one reach the other', async () => {
      const jar = new Map(); // one browser: its tabs share the cookies
      const a = tab(form(), { jar });
      const b = tab(form(), { jar });
      const signedIn = changed(b);
      await a.login('tab', password);
      const s = await signedIn;
      assert.equal(s.session.id, a.session.session.id);
      assert.equal(b.session.session.id, a.session.session.id);
      assert.ok(call(b, 'GET', '/me'), 'the other tab asked me itself');
      const signedOut = changed(b);
      await a.logout();
      assert.equal(await signedOut, null);
      assert.equal(b.session, null);
    });
  });
}

describe('errors', { timeout }, () => {
  afterEach(closeTabs);
  test('rate limited, with retryAfter', async () => {
    const c = tab({ baseUrl: `http://${latchkey.public}/v1/t/js-limit`, origin: pathOrigin });
    await assert.rejects(c.login('lim', 'wrong password one'), InvalidCredentialsError);
    const err = await c.login('lim', 'wrong password two').then(
      () => assert.fail('login resolved'),
      (e) => e,
    );
    assert.ok(err instanceof RateLimitedError, err);
    assert.equal(err.type, 'urn:latchkey:problem:rate-limited');
    assert.equal(err.status, 429);
    assert.ok(Number.isInteger(err.retryAfter) && err.retryAfter >= 1 && err.retryAfter <= 15 * 60, String(err.retryAfter));
  });

  test('forbidden origin, as a server-side caller reads it', async () => {
    const c = tab({ baseUrl: pathForm().baseUrl, origin: 'https://evil.example' });
    const err = await c.login('alice', password).then(
      () => assert.fail('login resolved'),
      (e) => e,
    );
    assert.ok(err instanceof ForbiddenOriginError, err);
    assert.equal(err.status, 403);
    assert.match(err.detail, /https:\/\/evil\.example/);
  });

  test('forbidden origin, as a browser sees it: a NetworkError naming the doctor', async () => {
    // The refusal carries no CORS headers, so a browser shows the page no
    // status at all; the live check is refused too.
    const c = tab({ baseUrl: pathForm().baseUrl, origin: 'https://evil.example' }, { cors: true });
    const err = await c.login('alice', password).then(
      () => assert.fail('login resolved'),
      (e) => e,
    );
    assert.ok(err instanceof NetworkError, err);
    assert.equal(err.status, 0);
    assert.equal(err.doctor, undefined);
    assert.deepEqual(
      c.log.map((x) => x.path.split('/').at(-1)),
      ['login', 'doctor'],
      'one live check after the failure',
    );
    assert.ok(err.message.includes('The browser refused the request'), err.message);
    assert.ok(
      err.message.includes(`latchkey doctor --tenants-file FILE --tenant js-path --page-origin ORIGIN --api ${pathForm().baseUrl}`),
      err.message,
    );
  });

  test('network down: nothing listens', async () => {
    const baseUrl = `http://127.0.0.1:${await freePort()}/v1/t/js-path`;
    const c = tab({ baseUrl, origin: pathOrigin });
    const err = await c.login('alice', password).then(
      () => assert.fail('login resolved'),
      (e) => e,
    );
    assert.ok(err instanceof NetworkError, err);
    assert.ok(err instanceof LatchkeyError);
    assert.equal(err.name, 'NetworkError');
    assert.equal(err.type, 'network');
    assert.equal(err.status, 0);
    assert.ok(err.cause instanceof TypeError, String(err.cause));
    assert.equal(err.doctor, undefined);
    assert.equal(c.log.length, 2, 'the call, then one live check');
    assert.ok(err.message.includes(`--api ${baseUrl}`), err.message);
    assert.equal(c.session, null);
  });

  test('a refused call whose live check answers carries the live check', async () => {
    const c = tab(pathForm(), { refuse: (path) => path.endsWith('/login') });
    const err = await c.login('alice', password).then(
      () => assert.fail('login resolved'),
      (e) => e,
    );
    assert.ok(err instanceof NetworkError, err);
    assert.equal(err.doctor.origin, pathOrigin);
    assert.equal(err.doctor.origin_listed, true);
    assert.equal(err.doctor.results.length, 6);
    assert.ok(err.message.includes('the live check got through'), err.message);
  });

  test('a doctor call that fails is not checked again', async () => {
    const baseUrl = `http://127.0.0.1:${await freePort()}/v1/t/js-path`;
    const c = tab({ baseUrl, origin: pathOrigin });
    await assert.rejects(c.doctor(), NetworkError);
    assert.equal(c.log.length, 1);
  });

  test('me with no session: unauthenticated', async () => {
    const c = tab(pathForm());
    await assert.rejects(c.me(), (e) => e instanceof UnauthenticatedError && !(e instanceof CookieNotSentError));
  });

  test('other problems are LatchkeyErrors with their type and status', async () => {
    const c = tab({ baseUrl: `http://${latchkey.public}/v1/t/js-nope`, origin: pathOrigin });
    const err = await c.me().then(
      () => assert.fail('me resolved'),
      (e) => e,
    );
    assert.equal(err.constructor, LatchkeyError);
    assert.equal(err.type, 'urn:latchkey:problem:not-found');
    assert.equal(err.status, 404);
    assert.ok(err.title.length > 0);
  });

  test('a listener that throws fails neither the call nor the other listeners', async () => {
    const c = tab(pathForm());
    const reported = [];
    const saved = console.error;
    console.error = (e) => reported.push(e);
    try {
      c.onChange(() => {
        throw new Error('page bug');
      });
      const heard = [];
      c.onChange((s) => heard.push(s));
      const s = await c.login('alice', password);
      assert.equal(s.user.username, 'alice');
      assert.equal(heard.length, 1);
      assert.equal(reported.length >= 1 && reported[0].message, 'page bug');
      await c.logout();
    } finally {
      console.error = saved;
    }
  });

  test('onChange returns the unsubscribe', async () => {
    const c = tab(pathForm());
    const calls = [];
    const off = c.onChange((s) => calls.push(s));
    await c.login('alice', password);
    off();
    await c.logout();
    assert.equal(calls.length, 1);
    assert.equal(c.seen.length, 2, 'the other listener heard both');
  });
});
