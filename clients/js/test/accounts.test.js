// Self-service accounts through the client against a real Latchkey
// (test/latchkey.js) whose mail goes to this process (test/smtp.js):
// signup, the verification link, resend, password reset and change, in
// both URL forms where a tenant requires verified addresses, and on a
// tenant that signs a signup in at once. The links are read from the
// mail, as a user's browser would open them.
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import {
  createClient,
  EmailUnverifiedError,
  InvalidCredentialsError,
  InvalidTokenError,
  LatchkeyError,
  NotEnabledError,
  tokenFromLocation,
  UnauthenticatedError,
  WeakPasswordError,
} from '../dist/index.js';
import { browserFetch, password, startLatchkey } from './latchkey.js';
import { startSMTP } from './smtp.js';

const pathOrigin = 'http://127.0.0.1:5173';
const hostOrigin = 'http://localhost:5173';
const newPassword = 'a fresh and longer passphrase';
const timeout = 60_000;

// accounts is a tenant's accounts block for pages on origin; the limits
// are high, since every request of this file comes from one address.
const accounts = (origin, verification) => ({
  signup: true,
  email_verification: verification,
  login_with_email: true,
  verify_url: origin + '/verify',
  reset_url: origin + '/reset',
  limits: { per_ip: 10_000, per_address: 100 },
});

let latchkey, smtp;
const forms = [];
let open, plain;

before(async () => {
  smtp = await startSMTP();
  latchkey = await startLatchkey(
    [
      { id: 'js-acct', dev: true, origins: [pathOrigin], cookie: { same_site: 'lax' }, accounts: accounts(pathOrigin, 'required') },
      {
        id: 'js-acct-host',
        dev: true,
        origins: [hostOrigin],
        hostnames: ['localhost'],
        cookie: { same_site: 'lax' },
        accounts: accounts(hostOrigin, 'required'),
      },
      // Signup signs in at once; the address is verified later, if ever.
      { id: 'js-open', dev: true, origins: [pathOrigin], cookie: { same_site: 'lax' }, accounts: accounts(pathOrigin, 'optional') },
      // No accounts block: none of it.
      { id: 'js-plain', dev: true, origins: [pathOrigin], cookie: { same_site: 'lax' }, users: ['pia'] },
    ],
    { env: { LATCHKEY_SMTP_URL: smtp.url, LATCHKEY_MAIL_FROM: 'Latchkey <latchkey@example.test>' } },
  );
  const port = latchkey.public.split(':')[1];
  forms.push(
    { name: 'path form', baseUrl: `http://${latchkey.public}/v1/t/js-acct`, origin: pathOrigin },
    { name: 'host form', baseUrl: `http://localhost:${port}/v1`, origin: hostOrigin },
  );
  open = { baseUrl: `http://${latchkey.public}/v1/t/js-open`, origin: pathOrigin };
  plain = { baseUrl: `http://${latchkey.public}/v1/t/js-plain`, origin: pathOrigin };
});

after(async () => {
  await latchkey?.stop();
  await smtp?.stop();
});

const tabs = [];
afterEach(() => tabs.splice(0).forEach((c) => c.close()));

// tab is a client in a page on form's origin with its own cookie jar (a
// browser of its own) unless given one, and the calls it made and the
// changes it was told of.
function tab(form, opts = {}) {
  const log = [];
  const seen = [];
  const c = createClient({ baseUrl: form.baseUrl, fetch: browserFetch({ origin: form.origin, log, ...opts }) });
  c.onChange((s) => seen.push(s));
  tabs.push(c);
  return Object.assign(c, { log, seen });
}

let n = 0;
// someone is a new username and address, unique in this run.
const someone = (prefix) => {
  n++;
  return { username: `${prefix}${n}`, email: `${prefix}.${n}@Example.test` };
};

const rejection = (p) =>
  p.then(
    (v) => assert.fail('resolved to ' + JSON.stringify(v)),
    (e) => e,
  );

// tokenOf reads a mailed link's token as the page it opens does, with
// tokenFromLocation, and checks that it cleared the address bar.
function tokenOf(link, page) {
  const url = new URL(link);
  assert.equal(url.origin + url.pathname, page, link.replace(/#.*/, '#…'));
  const replaced = [];
  globalThis.history = { state: null, replaceState: (...a) => replaced.push(a) };
  try {
    const token = tokenFromLocation(url);
    assert.match(token, /^[A-Za-z0-9_-]{43}$/);
    assert.deepEqual(replaced, [[null, '', url.pathname]], 'the token left the address bar');
    return token;
  } finally {
    delete globalThis.history;
  }
}

// confirmed checks that c's last call was a me with the receipt of r.
function confirmed(c, r) {
  const me = c.log.at(-1);
  assert.equal(me.method, 'GET');
  assert.ok(me.path.endsWith('/me'), me.path);
  assert.equal(me.headers['latchkey-receipt'], r.receipt);
  assert.equal(c.session.session.id, r.session.id);
  assert.equal(c.seen.at(-1).session.id, r.session.id);
}

for (const i of [0, 1]) {
  describe(['path form', 'host form'][i] + ', verification required', { timeout }, () => {
    const form = () => forms[i];

    test('signup, then the mailed link signs in; the link works once', async () => {
      const who = someone('vera');
      const c = tab(form());
      assert.deepEqual(await c.signup(who.username, who.email, password), { signedIn: false, verificationSent: true });
      const [call] = c.log;
      assert.equal(call.method, 'POST');
      assert.ok(call.path.endsWith('/signup'), call.path);
      assert.equal(call.headers['content-type'], 'application/json');
      assert.equal(call.credentials, 'include');
      assert.deepEqual(JSON.parse(call.body), { username: who.username, email: who.email, password });
      assert.equal(c.log.length, 1, 'no me: nobody is signed in');
      assert.equal(c.session, null);
      assert.deepEqual(c.seen, []);

      // Not before the address is verified, by username or by address.
      for (const name of [who.username, who.email]) {
        const err = await rejection(c.login(name, password));
        assert.ok(err instanceof EmailUnverifiedError, err);
        assert.equal(err.type, 'urn:latchkey:problem:email-unverified');
        assert.equal(err.status, 403);
      }

      const mail = await smtp.waitMail(who.email);
      const token = tokenOf(mail.link, form().origin + '/verify');
      const r = await c.verifyEmail(token);
      assert.equal(r.user.username, who.username);
      assert.ok(c.log.at(-2).path.endsWith('/email/verify'));
      assert.deepEqual(JSON.parse(c.log.at(-2).body), { token });
      confirmed(c, r);
      assert.equal((await c.me()).user.username, who.username);

      const again = await rejection(tab(form()).verifyEmail(token));
      assert.ok(again instanceof InvalidTokenError, again);
      assert.equal(again.type, 'urn:latchkey:problem:invalid-token');
      assert.equal(again.status, 400);

      // Verified: the address logs in too (login_with_email).
      const d = tab(form());
      assert.equal((await d.login(who.email.toUpperCase(), password)).user.username, who.username);
    });

    test('resendVerification mails a new link; an unknown address answers the same', async () => {
      const who = someone('rey');
      const c = tab(form());
      await c.signup(who.username, who.email, password);
      await smtp.waitMail(who.email);
      assert.equal(await c.resendVerification(who.email), undefined);
      assert.ok(c.log.at(-1).path.endsWith('/email/verify/resend'));
      assert.deepEqual(JSON.parse(c.log.at(-1).body), { email: who.email });
      const mail = await smtp.waitMail(who.email);
      const r = await c.verifyEmail(tokenOf(mail.link, form().origin + '/verify'));
      assert.equal(r.user.username, who.username);
      assert.equal(await c.resendVerification('nobody.here@example.test'), undefined);
    });

    test('password reset: a weak password spends nothing; then every session ends and this browser signs in', async () => {
      const who = someone('rita');
      const a = tab(form());
      await a.signup(who.username, who.email, password);
      await a.verifyEmail(tokenOf((await smtp.waitMail(who.email)).link, form().origin + '/verify'));
      assert.notEqual(a.session, null);

      const b = tab(form()); // another browser, signed out
      assert.equal(await b.requestPasswordReset(who.email), undefined);
      assert.ok(b.log.at(-1).path.endsWith('/password/reset/request'));
      assert.equal(await b.requestPasswordReset('nobody.here@example.test'), undefined);
      const token = tokenOf((await smtp.waitMail(who.email, { match: (m) => /\/reset#/.test(m.link ?? '') })).link, form().origin + '/reset');

      const weak = await rejection(b.resetPassword(token, 'password'));
      assert.ok(weak instanceof WeakPasswordError, weak);
      assert.equal(weak.type, 'urn:latchkey:problem:weak-password');
      assert.equal(weak.status, 400);
      assert.ok(weak.detail.length > 0, 'the detail says which rule');

      const r = await b.resetPassword(token, newPassword);
      assert.equal(r.user.username, who.username);
      assert.deepEqual(JSON.parse(b.log.at(-2).body), { token, password: newPassword });
      confirmed(b, r);
      await assert.rejects(a.me(), UnauthenticatedError);
      assert.equal(a.session, null);

      await assert.rejects(tab(form()).login(who.username, password), InvalidCredentialsError);
      assert.equal((await tab(form()).login(who.username, newPassword)).user.username, who.username);
      await assert.rejects(tab(form()).resetPassword(token, 'yet another passphrase'), InvalidTokenError);
    });

    test('a weak password fails the signup with the rule', async () => {
      const who = someone('wes');
      const err = await rejection(tab(form()).signup(who.username, who.email, 'password'));
      assert.ok(err instanceof WeakPasswordError, err);
      assert.ok(err instanceof LatchkeyError);
      assert.equal(err.name, 'WeakPasswordError');
      assert.equal(err.status, 400);
    });
  });
}

describe('verification optional: signup signs in', { timeout }, () => {
  test('signup resolves signed in, confirmed as a login; a taken name is a conflict', async () => {
    const who = someone('otto');
    const c = tab(open);
    const r = await c.signup(who.username, who.email, password);
    assert.equal(r.signedIn, true);
    assert.equal(r.user.username, who.username);
    assert.match(r.receipt, /^[A-Za-z0-9_-]+=*$/);
    confirmed(c, r);
    assert.equal(c.log.length, 2, 'signup and the me that confirms it');

    const d = tab(open);
    const err = await rejection(d.signup(who.username, 'other.' + who.email, password));
    assert.equal(err.constructor, LatchkeyError);
    assert.equal(err.type, 'urn:latchkey:problem:conflict');
    assert.equal(err.status, 409);
    assert.equal(d.session, null);
  });

  test('changePassword: the current one is checked, then every session ends and this one is new', async () => {
    const who = someone('carl');
    const a = tab(open);
    await a.signup(who.username, who.email, password);
    const b = tab(open); // another device of the user
    await b.login(who.username, password);
    const before = a.session.session.id;

    const wrong = await rejection(a.changePassword('not the password at all', newPassword));
    assert.ok(wrong instanceof InvalidCredentialsError, wrong);
    assert.equal(a.session.session.id, before, 'a wrong current password signs nobody out');
    const weak = await rejection(a.changePassword(password, who.username));
    assert.ok(weak instanceof WeakPasswordError, weak);

    const r = await a.changePassword(password, newPassword);
    const call = a.log.at(-2);
    assert.ok(call.path.endsWith('/password'), call.path);
    assert.deepEqual(JSON.parse(call.body), { current_password: password, new_password: newPassword });
    assert.notEqual(r.session.id, before, 'a new session');
    confirmed(a, r);
    assert.deepEqual(a.seen.map((s) => s.session.id), [before, r.session.id]);
    await assert.rejects(b.me(), UnauthenticatedError);
    assert.equal((await a.me()).session.id, r.session.id);
    await assert.rejects(tab(open).login(who.email, password), InvalidCredentialsError);
    assert.equal((await tab(open).login(who.email, newPassword)).user.username, who.username);
  });

  test('changePassword signed out: unauthenticated', async () => {
    await assert.rejects(tab(open).changePassword(password, newPassword), UnauthenticatedError);
  });
});

describe('a tenant without accounts', { timeout }, () => {
  test('answers not-enabled', async () => {
    const c = tab(plain);
    // Every promise gets its handler at once: awaited one after another, a
    // later one could reject before its turn and fail the run as unhandled.
    const all = [c.signup('nia', 'nia@example.test', password), c.resendVerification('nia@example.test'), c.requestPasswordReset('nia@example.test')].map(rejection);
    for (const p of all) {
      const err = await p;
      assert.ok(err instanceof NotEnabledError, err);
      assert.equal(err.type, 'urn:latchkey:problem:not-enabled');
      assert.equal(err.status, 404);
    }
  });
});
