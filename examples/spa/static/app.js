// Latchkey example SPA.
//
// Every call to Latchkey but raw() goes through @latchkey/client
// (latchkey-client.js, a copy of clients/js/dist/index.js), the client
// the README recommends: it sends credentials: 'include' on every call and
// Content-Type: application/json on every call with a body, confirms a
// login with a me carrying the login answer's receipt (a browser that
// dropped the cookie makes login reject with a CookieNotSentError, whose
// reasons and advice the login box shows), and tells the other tabs of
// this page of a login or logout (onChange). The page hands the client a
// fetch of its own, logged(), which shows each request and response in
// the call log. raw() alone fetches exactly what it is given, to show
// what the client prevents (a text/plain login, credentials left out).
//
// Every window.latchkey function resolves, never rejects, to the exchange
// of its own request as the log saw it, {ok, status, blocked, error, body,
// headers} (blocked: fetch() rejected, the browser did not let the page
// read the response), and thrown: what the client rejected with, or null.
// For login, the exchange is the POST login's: a login answered 200 whose
// cookie the browser then did not send has ok true and a thrown
// CookieNotSentError. Data from the network is only ever written with
// textContent, never as HTML.
//
// The Diagnose panel runs Latchkey's live check (the client's doctor())
// and shows what Latchkey saw of this page's request and its verdict for
// this browser.
//
// Self-service accounts: the signup form (signed in at once, or "check
// your mail" with a resend), the forgot-password form, and, signed in,
// the change-password form. The page also serves the tenant's verify_url
// and reset_url, /verify and /reset: a mailed link opens one of them with
// the token in the fragment, which tokenFromLocation reads and takes out
// of the address bar before anything else runs; /verify then verifies
// and signs in at once, /reset asks for the new password.
import {
  createClient,
  CookieNotSentError,
  EmailUnverifiedError,
  InvalidCredentialsError,
  InvalidTokenError,
  LatchkeyError,
  NetworkError,
  tokenFromLocation,
  UnauthenticatedError,
} from './latchkey-client.js';

const config = window.LATCHKEY_CONFIG || {};
const api = typeof config.api === 'string' ? config.api : '';

const byId = (id) => document.getElementById(id);

// linkPage is which mailed link's page this is ('verify', 'reset' or ''),
// and linkToken its token, read (and taken out of the address bar) first.
const linkPage = { '/verify': 'verify', '/reset': 'reset' }[window.location.pathname] || '';
const linkToken = linkPage ? tokenFromLocation() : null;

// The current session's id, from /me, /login or /sessions, so that
// revoking it is shown as signing this device out.
let currentSessionId = '';

// ---------------------------------------------------------------- DOM helpers

// el builds an element whose content is text only.
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function setStatus(id, text, kind) {
  const node = byId(id);
  node.textContent = text || '';
  node.className = 'status' + (kind ? ' status-' + kind : '');
  delete node.dataset.problem;
}

// yesNo shows a boolean fact of the live check; anything else is unknown.
function yesNo(value) {
  if (value === true) return 'yes';
  if (value === false) return 'no';
  return 'unknown';
}

// strings keeps the strings of a list from the network.
function strings(list) {
  return Array.isArray(list) ? list.filter((s) => typeof s === 'string') : [];
}

function formatDate(value) {
  if (typeof value !== 'string' || value === '') return 'unknown';
  const d = new Date(value);
  return Number.isNaN(d.getTime()) ? value : d.toLocaleString();
}

function errorMessage(err) {
  if (err && typeof err.message === 'string' && err.message !== '') return err.message;
  return String(err);
}

// problemText is what a problem+json body says to a person: its detail,
// or its title when there is no detail.
function problemText(body) {
  if (!body || typeof body !== 'object') return '';
  if (typeof body.detail === 'string' && body.detail !== '') return body.detail;
  if (typeof body.title === 'string') return body.title;
  return '';
}

// failureText explains a failed call in one line for a card's status: for
// a fetch that rejected, the client's NetworkError says what the live
// check it ran found, or which command tells.
function failureText(r, err) {
  if (r.blocked) {
    return 'blocked: ' + (err instanceof NetworkError ? err.message : r.error + ' (the browser did not let this page read the response)');
  }
  return r.status ? r.status + ': ' + r.error : r.error;
}

// ---------------------------------------------------------------- the call

// describeRequest is what the log shows about a request: the method, the
// credentials mode and the Content-Type, including the one the browser
// adds by itself for a string or form body (which is what makes a
// "simple" request that skips the preflight).
function describeRequest(init) {
  const method = String(init.method || 'GET').toUpperCase();
  const credentials = init.credentials ? String(init.credentials) : 'same-origin (the fetch default)';
  let contentType = '';
  try {
    contentType = new Headers(init.headers || {}).get('content-type') || '';
  } catch (err) {
    contentType = '(invalid headers: ' + errorMessage(err) + ')';
  }
  if (contentType === '') {
    const body = init.body;
    if (body === undefined || body === null) contentType = '(none)';
    else if (typeof body === 'string') contentType = 'text/plain;charset=UTF-8 (added by the browser)';
    else if (body instanceof URLSearchParams) contentType = 'application/x-www-form-urlencoded;charset=UTF-8 (added by the browser)';
    else if (body instanceof FormData) contentType = 'multipart/form-data (added by the browser)';
    else if (body instanceof Blob && body.type) contentType = body.type + ' (from the Blob)';
    else contentType = '(none)';
  }
  let receipt = false;
  try {
    receipt = new Headers(init.headers || {}).has('latchkey-receipt');
  } catch (_) {
    receipt = false;
  }
  return { method, credentials, contentType, receipt };
}

const emptyResult = () => ({ ok: false, status: 0, blocked: false, error: '', body: null, headers: {} });

// exchanges is every request of the page, oldest first, with its result
// as the log shows it: how a window.latchkey function finds the one its
// client call made.
const exchanges = [];

// logged is the fetch the client is given, and raw's: it fetches url with
// init exactly as given, logs the request and what the page could read of
// the response, and hands the response on (or rejects as fetch did).
async function logged(url, init) {
  init = init || {};
  url = String(url);
  const path = url.startsWith(api) ? url.slice(api.length) : url;
  const result = emptyResult();
  const entry = { path, url, request: null, statusText: '', text: '', ms: 0, started: new Date() };
  const t0 = performance.now();
  try {
    entry.request = describeRequest(init);
    exchanges.push({ method: entry.request.method, path, result });
    let res;
    try {
      res = await fetch(url, init);
    } catch (err) {
      // The browser rejects without saying why (CORS refused, network
      // down, bad URL): the reason is only in the DevTools console.
      result.blocked = true;
      result.error = errorMessage(err);
      throw err;
    }
    result.status = res.status;
    result.ok = res.ok;
    entry.statusText = res.statusText;
    // Only CORS-safelisted headers and those in
    // Access-Control-Expose-Headers are visible here.
    res.headers.forEach((value, name) => { result.headers[name.toLowerCase()] = value; });
    try {
      // A copy: the client reads the response itself.
      entry.text = await res.clone().text();
    } catch (err) {
      result.ok = false;
      result.error = 'reading the body failed: ' + errorMessage(err);
    }
    if (entry.text !== '') {
      try { result.body = JSON.parse(entry.text); } catch (_) { result.body = null; }
    }
    if (!result.ok && result.error === '') {
      result.error = problemText(result.body) || ('HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : ''));
    }
    return res;
  } finally {
    entry.ms = Math.round(performance.now() - t0);
    safely(() => logCall(entry, result));
  }
}

function safely(fn) {
  try { fn(); } catch (err) { console.error('latchkey example:', err); }
}

// guard makes fn's promise resolve to a result even if fn throws.
function guard(fn) {
  return async function (...args) {
    try {
      return await fn(...args);
    } catch (err) {
      console.error('latchkey example:', err);
      return Object.assign(emptyResult(), { error: 'the page failed: ' + errorMessage(err), thrown: null });
    }
  };
}

// errorFacts is what window.latchkey's results say of an error the
// client threw: its class (name), message and problem members.
function errorFacts(err) {
  if (!(err instanceof Error)) return { name: typeof err, message: String(err) };
  const facts = { name: err.name, message: err.message };
  if (err instanceof LatchkeyError) {
    for (const k of ['type', 'status', 'detail', 'retryAfter', 'browser', 'reasons', 'advice']) {
      if (err[k] !== undefined) facts[k] = err[k];
    }
  }
  return facts;
}

const client = api === '' ? null : createClient({ baseUrl: api, fetch: logged });

// call runs fn, a call of the client, and resolves to {r, value, err}: r
// the result of the exchange it made for method and path (with thrown),
// value what the client resolved to, err what it rejected with.
async function call(method, path, fn) {
  if (!client) {
    const r = Object.assign(emptyResult(), {
      blocked: true,
      error: 'no Latchkey API configured (window.LATCHKEY_CONFIG.api is missing: did /config.js load?)',
      thrown: null,
    });
    return { r, value: undefined, err: new Error(r.error) };
  }
  const from = exchanges.length;
  let value, err;
  try {
    value = await fn();
  } catch (e) {
    err = e;
  }
  const x = exchanges.slice(from).find((e) => e.method === method && e.path === path);
  const r = Object.assign(emptyResult(), x ? x.result : {}, { thrown: err === undefined ? null : errorFacts(err) });
  if (!x && err !== undefined) r.error = errorMessage(err);
  return { r, value, err };
}

// ---------------------------------------------------------------- the API

// login is the client's: POST login, then the me that confirms it with
// the login answer's receipt.
async function login(username, password) {
  const { r, value, err } = await call('POST', '/login', () => client.login(username, password));
  safely(() => {
    if (!err) {
      showSignedIn(client.session || value, 'Logged in: a new session started, and the me that confirmed it carried its cookie.');
      setStatus('login-status', 'Logged in as ' + value.user.username + '.', 'ok');
      byId('password').value = '';
      // Login starts a new session and ends the one it was sent with.
      clearSessions('Logged in with a new session: load sessions to see it.');
    } else if (r.ok) {
      // A 200 login that the confirming me did not see.
      showLoginCheck(err);
    } else if (err instanceof EmailUnverifiedError) {
      setStatus('login-status', failureText(r, err) + ': open the link mailed to you, or send it again (Sign up, below).', 'error');
      if (username.includes('@')) showCheckMail(username);
    } else {
      setStatus('login-status', failureText(r, err), 'error');
    }
  });
  return r;
}

// signedInBy shows a session that a self-service call started (and the
// client confirmed with its receipt, as a login).
function signedInBy(value, note) {
  showSignedIn(client.session || value, note);
  clearSessions('Signed in with a new session: load sessions to see it.');
}

// signup is the client's: signed in at once (201), or a verification
// mail on its way (202), whether or not the name and address were free.
async function signup(username, email, password) {
  const { r, value, err } = await call('POST', '/signup', () => client.signup(username, email, password));
  safely(() => {
    if (err) {
      setStatus('signup-status', failureText(r, err), 'error');
      return;
    }
    byId('signup-password').value = '';
    if (value.signedIn) {
      signedInBy(value, 'Signed up: a new session started, and the me that confirmed it carried its cookie.');
      setStatus('signup-status', 'Signed up and signed in as ' + value.user.username + '.', 'ok');
    } else {
      showCheckMail(email);
      setStatus('signup-status', '', '');
    }
  });
  return r;
}

// showCheckMail is the "check your mail" state, for email.
function showCheckMail(email) {
  byId('check-mail-address').textContent = String(email);
  byId('check-mail').hidden = false;
  byId('check-mail').dataset.email = String(email);
}

async function resend(email) {
  const { r, err } = await call('POST', '/email/verify/resend', () => client.resendVerification(email));
  safely(() => setStatus('signup-status', err ? failureText(r, err) :
    'If ' + email + ' awaits verification, a new link is on its way.', err ? 'error' : 'ok'));
  return r;
}

async function forgotPassword(email) {
  const { r, err } = await call('POST', '/password/reset/request', () => client.requestPasswordReset(email));
  safely(() => setStatus('forgot-status', err ? failureText(r, err) :
    'If an account has the address ' + email + ', a link to choose a new password is on its way.', err ? 'error' : 'ok'));
  return r;
}

// linkFailed explains a mailed link's token that Latchkey refused.
function linkFailed(r, err) {
  if (err instanceof InvalidTokenError) {
    setStatus('link-status', 'This link is invalid, used already or expired: ask for a new one.', 'error');
  } else {
    setStatus('link-status', failureText(r, err), 'error');
  }
}

async function verifyEmail(token) {
  const { r, value, err } = await call('POST', '/email/verify', () => client.verifyEmail(token));
  safely(() => {
    if (err) return linkFailed(r, err);
    signedInBy(value, 'Verified: a new session started, and the me that confirmed it carried its cookie.');
    setStatus('link-status', 'Your address is verified: signed in as ' + value.user.username + '.', 'ok');
  });
  return r;
}

async function resetPassword(token, password) {
  const { r, value, err } = await call('POST', '/password/reset', () => client.resetPassword(token, password));
  safely(() => {
    if (err) return linkFailed(r, err);
    byId('reset-password').value = '';
    byId('reset-form').hidden = true;
    signedInBy(value, 'Password reset: every other session ended, and this browser has a new one.');
    setStatus('link-status', 'Your new password is set: signed in as ' + value.user.username + '.', 'ok');
  });
  return r;
}

async function changePassword(current, next) {
  const { r, value, err } = await call('POST', '/password', () => client.changePassword(current, next));
  safely(() => {
    if (!err) {
      byId('current-password').value = '';
      byId('new-password').value = '';
      signedInBy(value, 'Password changed: every other session ended, and this browser has a new one.');
      setStatus('change-status', 'Password changed.', 'ok');
    } else if (err instanceof InvalidCredentialsError) {
      setStatus('change-status', 'The current password is wrong.', 'error');
    } else if (err instanceof UnauthenticatedError) {
      showSignedOut(r.error, '');
    } else {
      setStatus('change-status', failureText(r, err), 'error');
    }
  });
  return r;
}

// me asks who we are.
async function me() {
  const { r, value, err } = await call('GET', '/me', () => client.me());
  safely(() => {
    if (!err) {
      showSignedIn(value, 'The session cookie was sent and accepted.');
    } else if (err instanceof UnauthenticatedError) {
      showSignedOut(r.error || errorMessage(err), '');
    } else {
      showSignedOut('', failureText(r, err));
    }
  });
  return r;
}

async function logout() {
  const { r, err } = await call('POST', '/logout', () => client.logout());
  safely(() => {
    if (!err) {
      showSignedOut('Logged out: the session ended on the server and the cookie was cleared.', '');
      clearSessions('Not signed in.');
    } else {
      setStatus('who-status', failureText(r, err), 'error');
    }
  });
  return r;
}

async function sessions() {
  const { r, value, err } = await call('GET', '/sessions', () => client.sessions());
  safely(() => {
    if (!err && Array.isArray(value.sessions)) {
      renderSessions(value.sessions);
    } else {
      handleFailure(r, err);
    }
  });
  return r;
}

async function revoke(id) {
  id = String(id);
  const { r, err } = await call('DELETE', '/sessions/' + encodeURIComponent(id), () => client.revokeSession(id));
  safely(() => {
    if (!err) {
      const wasCurrent = currentSessionId !== '' && id === currentSessionId;
      for (const li of Array.from(byId('sessions').children)) {
        if (li.dataset.id === id) li.remove();
      }
      if (wasCurrent) {
        showSignedOut('This device\'s session was revoked, so its cookie was cleared.', '');
        clearSessions('Not signed in.');
      } else {
        setStatus('sessions-status', 'Session revoked.', 'ok');
      }
    } else {
      handleFailure(r, err);
    }
  });
  return r;
}

async function revokeAll() {
  const { r, err } = await call('DELETE', '/sessions', () => client.logoutEverywhere());
  safely(() => {
    if (!err) {
      showSignedOut('Every session ended, this one included.', '');
      clearSessions('All sessions revoked.');
    } else {
      handleFailure(r, err);
    }
  });
  return r;
}

// raw sends init as given, past the client: no credentials mode or
// headers are added, so that the console (and tests) can show what goes
// wrong without them. Its thrown is fetch's own rejection.
async function raw(path, init) {
  path = String(path);
  init = Object.assign({}, init);
  const { r } = await call(String(init.method || 'GET').toUpperCase(), path, () => logged(api + path, init));
  return r;
}

// diagnose runs Latchkey's live check, sent as the client sends a login
// (credentials: 'include'), so that what Latchkey saw (the Origin, the
// Sec-Fetch headers, whether the cookie came) is what a login meets.
async function diagnose() {
  setStatus('doctor-status', 'Asking Latchkey…', '');
  const { r } = await call('GET', '/doctor', () => client.doctor());
  safely(() => renderDiagnosis(r));
  return r;
}

// handleFailure shows a failed sessions call; a 401 means the cookie is
// gone or no longer valid, so this device is signed out.
function handleFailure(r, err) {
  if (err instanceof UnauthenticatedError) {
    showSignedOut(r.error, '');
    clearSessions('Not signed in: ' + r.error);
  } else {
    setStatus('sessions-status', failureText(r, err), 'error');
  }
}

// ---------------------------------------------------------------- UI state

function showSignedIn(view, note) {
  byId('who').textContent = 'Signed in as ' + String(view.user.username);
  byId('who-card').classList.add('signed-in');
  byId('change-card').hidden = false;
  const s = view.session || {};
  currentSessionId = typeof s.id === 'string' ? s.id : '';
  const facts = byId('who-session');
  facts.replaceChildren();
  for (const [label, value] of [
    ['Signed in', formatDate(s.created_at)],
    ['Last seen', formatDate(s.last_seen_at)],
    ['Idle expiry', formatDate(s.idle_expires_at)],
    ['Expires', formatDate(s.expires_at)],
  ]) {
    const row = el('div');
    row.append(el('dt', '', label), el('dd', '', value));
    facts.append(row);
  }
  facts.hidden = false;
  setStatus('who-status', note, 'ok');
}

// showSignedOut clears the signed-in state; note is informational,
// problem an error to show instead.
function showSignedOut(note, problem) {
  byId('who').textContent = 'Not signed in';
  byId('who-card').classList.remove('signed-in');
  byId('change-card').hidden = true;
  currentSessionId = '';
  const facts = byId('who-session');
  facts.replaceChildren();
  facts.hidden = true;
  if (problem) setStatus('who-status', problem, 'error');
  else setStatus('who-status', note, '');
}

function clearSessions(note) {
  byId('sessions').replaceChildren();
  setStatus('sessions-status', note, '');
}

function renderSessions(list) {
  const ul = byId('sessions');
  ul.replaceChildren();
  for (const s of list) {
    if (!s || typeof s !== 'object') continue;
    const id = String(s.id);
    if (s.current) currentSessionId = id;
    const li = el('li', 'session' + (s.current ? ' session-current' : ''));
    li.dataset.id = id;

    const info = el('div', 'session-info');
    const title = el('div', 'session-title');
    title.append(el('span', 'session-ua', s.user_agent ? s.user_agent : 'Unknown client (no User-Agent)'));
    if (s.current) title.append(' ', el('span', 'this-device', '(this device)'));
    const times = el('div', 'session-times');
    for (const [label, value] of [
      ['Created', s.created_at],
      ['Last seen', s.last_seen_at],
      ['Idle expiry', s.idle_expires_at],
      ['Expires', s.expires_at],
    ]) {
      // The space keeps the li's text readable ("Created … Last seen …");
      // the grid does not render it.
      if (times.firstChild) times.append(' ');
      const fact = el('span', 'session-fact');
      fact.append(el('span', 'session-fact-label', label + ' '), formatDate(value));
      times.append(fact);
    }
    info.append(title, times);

    const button = el('button', 'btn btn-small btn-danger revoke', 'Revoke');
    button.type = 'button';
    button.addEventListener('click', () => { latchkey.revoke(id); });
    li.append(info, button);
    ul.append(li);
  }
  const n = ul.children.length;
  setStatus('sessions-status', n === 0 ? 'No live sessions.' : n + (n === 1 ? ' live session, newest first.' : ' live sessions, newest first.'), '');
}

// ---------------------------------------------------------------- the doctor

// showLoginCheck explains, in the login box, a login that answered 200
// but whose confirming me did not show the session: err is what the
// client's login rejected with. A CookieNotSentError carries the doctor's
// diagnosis for this browser: its reasons and the fix.
function showLoginCheck(err) {
  if (!(err instanceof CookieNotSentError)) {
    setStatus('login-status', 'Logged in, but the next call was not signed in (' + errorMessage(err) +
      '). Diagnose, below, asks Latchkey why.', 'error');
    return;
  }
  const node = byId('login-status');
  node.replaceChildren(el('span', 'status-line', 'Logged in (200), then me was 401 cookie-not-sent: ' +
    (err.detail || 'this browser did not send the session cookie back.')));
  const reasons = strings(err.reasons);
  if (reasons.length > 0) {
    const browser = typeof err.browser === 'string' && err.browser !== '' ? ' (' + err.browser + ')' : '';
    node.append(el('span', 'status-line status-reasons', 'Reasons' + browser + ': ' + reasons.join(', ')));
  }
  if (typeof err.advice === 'string' && err.advice !== '') {
    node.append(el('span', 'status-line status-advice', 'Fix: ' + err.advice));
  }
  node.className = 'status status-error';
  node.dataset.problem = 'cookie-not-sent';
}

// verdictSummary names the first step a verdict fails at.
function verdictSummary(v) {
  if (v.works === true) return 'works';
  if (v.preflight_ok === false) return 'the browser refuses the call (CORS)';
  if (v.cookie_stored === false) return "the login's cookie is not stored";
  if (v.cookie_sent === false) return 'the cookie is not sent back';
  return 'does not work';
}

// renderDiagnosis shows the live check's answer, or why there is none,
// and the command that asks the doctor about every browser.
function renderDiagnosis(r) {
  const seen = byId('doctor-seen');
  const results = byId('doctor-results');
  seen.replaceChildren();
  results.replaceChildren();
  seen.hidden = true;
  results.hidden = true;
  showCommand();
  const b = r.body;
  if (!r.ok || !b || typeof b !== 'object' || !Array.isArray(b.results)) {
    let text;
    if (api === '') text = r.error;
    else if (r.blocked) {
      text = 'fetch() rejected with a TypeError (' + r.error + '): the browser did not let this page read ' +
        "Latchkey's answer. CORS refused it (this page's origin is not one the tenant lists) or the network " +
        'failed; the DevTools console says which. Ask the doctor from the tenant\'s configuration:';
    } else {
      text = 'The live check failed (' + failureText(r) + '). Ask the doctor from the tenant\'s configuration:';
    }
    setStatus('doctor-status', text, 'error');
    return;
  }
  for (const [fact, label, value] of [
    ['origin', 'Origin sent', typeof b.origin === 'string' && b.origin !== '' ? b.origin : '(none)'],
    ['origin_listed', 'Origin listed', yesNo(b.origin_listed)],
    ['sec_fetch_site', 'Sec-Fetch-Site', typeof b.sec_fetch_site === 'string' && b.sec_fetch_site !== '' ? b.sec_fetch_site : '(not sent)'],
    ['sec_fetch_mode', 'Sec-Fetch-Mode', typeof b.sec_fetch_mode === 'string' && b.sec_fetch_mode !== '' ? b.sec_fetch_mode : '(not sent)'],
    ['cookie_present', 'Cookie present', yesNo(b.cookie_present)],
    ['session_valid', 'Session valid', yesNo(b.session_valid)],
    ['browser_family', 'Browser family', typeof b.browser_family === 'string' ? b.browser_family : 'unknown'],
    ['site_relation', 'Site relation', typeof b.site_relation === 'string' ? b.site_relation : 'unknown'],
  ]) {
    const row = el('div');
    row.dataset.fact = fact;
    row.append(el('dt', '', label), el('dd', '', value));
    seen.append(row);
  }
  seen.hidden = false;
  let failing = 0;
  for (const v of b.results) {
    if (!v || typeof v !== 'object') continue;
    const works = v.works === true;
    if (!works) failing++;
    const li = el('li', 'verdict ' + (works ? 'verdict-ok' : 'verdict-fail'));
    li.dataset.browser = String(v.browser);
    li.dataset.works = String(works);
    const head = el('div', 'verdict-head');
    head.append(el('span', 'verdict-mark', works ? '✓' : '✗'), ' ',
      el('span', 'verdict-browser', String(v.browser)), ': ', el('span', 'verdict-summary', verdictSummary(v)));
    li.append(head);
    const reasons = strings(v.reasons);
    if (reasons.length > 0) li.append(el('p', 'verdict-reasons', 'Reasons: ' + reasons.join(', ')));
    if (!works && typeof v.advice === 'string' && v.advice !== '') li.append(el('p', 'verdict-advice', v.advice));
    results.append(li);
  }
  results.hidden = results.children.length === 0;
  const family = typeof b.browser_family === 'string' ? b.browser_family : 'unknown';
  if (failing === 0) {
    setStatus('doctor-status', 'The login keeps its session in this browser (' + family + ') whatever its cookie settings. For every other browser:', 'ok');
  } else {
    setStatus('doctor-status', 'The session cookie is dropped in ' + failing + ' of the ' + results.children.length +
      ' settings this browser (' + family + ') may have: see why below. For every browser:', 'error');
  }
}

// shellWord quotes s for a POSIX shell when it needs it.
function shellWord(s) {
  return /^[A-Za-z0-9_\/:.,=@%+-]+$/.test(s) ? s : "'" + s.replace(/'/g, "'\\''") + "'";
}

// showCommand fills in the latchkey doctor command line for this page
// and API. The tenant is the path form's; a host form's is not in its
// URL, so the command has a placeholder for it, and the tenants file is
// the operator's.
function showCommand() {
  const words = ['latchkey', 'doctor', '--tenants-file', 'tenants.yaml', '--tenant', tenantIdOf(api) || 'TENANT_ID',
    '--page-origin', window.location.origin, '--api', api || 'API_URL'];
  byId('doctor-command').textContent = words.map(shellWord).join(' ');
  byId('doctor-copy').textContent = 'Copy';
  byId('doctor-cli').hidden = false;
}

// copyCommand copies the command line, or selects it when the clipboard
// is not available (an insecure context, a refused permission).
async function copyCommand() {
  const code = byId('doctor-command');
  const button = byId('doctor-copy');
  try {
    await navigator.clipboard.writeText(code.textContent);
    button.textContent = 'Copied';
  } catch (_) {
    window.getSelection().selectAllChildren(code);
    button.textContent = 'Selected: copy it';
  }
}

// ---------------------------------------------------------------- the log

function logCall(entry, r) {
  const req = entry.request || { method: '?', credentials: '?', contentType: '?' };
  const kind = r.blocked ? 'blocked' : (r.ok ? 'ok' : 'error');
  const li = el('li', 'call call-' + kind);
  li.dataset.method = req.method;
  li.dataset.path = entry.path;
  li.dataset.status = r.blocked ? 'blocked' : String(r.status);

  const head = el('div', 'call-head');
  head.append(
    el('span', 'method method-' + req.method.toLowerCase(), req.method),
    el('span', 'call-url', entry.url),
    el('span', 'outcome outcome-' + kind,
      r.blocked ? 'blocked: ' + r.error : String(r.status) + (entry.statusText ? ' ' + entry.statusText : '')),
  );
  li.append(head);

  const meta = el('dl', 'call-meta');
  for (const [label, value] of [
    ['credentials', req.credentials],
    ['Content-Type', req.contentType],
    ...(req.receipt ? [['Latchkey-Receipt', "the login answer's receipt"]] : []),
    ['at', entry.started.toLocaleTimeString() + ' · ' + entry.ms + ' ms'],
  ]) {
    const row = el('div');
    row.append(el('dt', '', label), el('dd', '', value));
    meta.append(row);
  }
  li.append(meta);

  if (r.blocked) {
    li.append(el('p', 'call-note call-note-blocked',
      'The browser blocked reading the response: either CORS refused it (the origin is not allowed, or ' +
      'credentials are not allowed for it) or the network failed. The page cannot tell which; ' +
      'the DevTools console says.'));
    prependCall(li);
    return;
  }

  li.append(el('div', 'call-label', 'Response headers readable by JavaScript'));
  const names = Object.keys(r.headers).sort();
  if (names.length === 0) {
    li.append(el('p', 'call-none', 'none'));
  } else {
    const hs = el('dl', 'call-headers');
    for (const name of names) {
      const row = el('div');
      row.append(el('dt', '', name), el('dd', '', r.headers[name]));
      hs.append(row);
    }
    li.append(hs);
  }

  if (req.method === 'POST' && entry.path === '/login' && r.ok) {
    li.append(el('p', 'call-note',
      'No Set-Cookie above: JavaScript can never read it. The next credentialed call succeeding is the proof the cookie stuck.'));
  }

  li.append(el('div', 'call-label', 'Body'));
  if (!r.ok && problemText(r.body)) {
    li.append(el('p', 'call-problem', problemText(r.body)));
  }
  if (r.body !== null) {
    li.append(el('pre', 'call-body', JSON.stringify(r.body, null, 2)));
  } else if (entry.text !== '') {
    const text = entry.text.length > 2000 ? entry.text.slice(0, 2000) + '…' : entry.text;
    li.append(el('pre', 'call-body', text));
  } else {
    li.append(el('p', 'call-none', r.status === 204 ? 'none (204 No Content)' : 'none'));
  }
  prependCall(li);
}

// prependCall puts the newest call first.
function prependCall(li) {
  byId('log').prepend(li);
  byId('log-empty').hidden = true;
}

// ---------------------------------------------------------------- wiring

// tenantIdOf is the tenant of a path form base (/v1/t/{tenant}); '' for
// the host form (/v1), where the API's host implies it.
function tenantIdOf(base) {
  try {
    const m = new URL(base).pathname.match(/\/t\/([^/]+)$/);
    return m ? decodeURIComponent(m[1]) : '';
  } catch (_) {
    return '';
  }
}

function tenantOf(base) {
  const id = tenantIdOf(base);
  if (id !== '') return id;
  try {
    return new URL(base).hostname + ' (host form)';
  } catch (_) {
    return '?';
  }
}

// changes is what the client's onChange told this tab, oldest first: the
// username signed in, or null for nobody.
const changes = [];

// window.latchkey is for the console and the e2e suite: the page's calls,
// the client itself, and its onChange history.
const latchkey = {
  login: guard(login),
  me: guard(me),
  logout: guard(logout),
  sessions: guard(sessions),
  revoke: guard(revoke),
  revokeAll: guard(revokeAll),
  raw: guard(raw),
  diagnose: guard(diagnose),
  signup: guard(signup),
  resend: guard(resend),
  forgotPassword: guard(forgotPassword),
  verifyEmail: guard(verifyEmail),
  resetPassword: guard(resetPassword),
  changePassword: guard(changePassword),
  client,
  changes,
};
window.latchkey = latchkey;

function start() {
  byId('page-origin').textContent = window.location.origin;
  if (api === '') {
    const banner = byId('config-error');
    banner.textContent = 'No API configured: /config.js did not set window.LATCHKEY_CONFIG.api.';
    banner.hidden = false;
  } else {
    byId('api-base').textContent = api;
    byId('tenant').textContent = tenantOf(api);
    // The client tells every tab of this page when who is signed in
    // changes, in this tab or another (a BroadcastChannel): a logout in
    // one signs the others out without a reload. A call of this tab then
    // says more in its own card.
    client.onChange((s) => {
      changes.push(s ? s.user.username : null);
      safely(() => {
        if (s) {
          showSignedIn(s, 'Signed in (the client tells every tab of this page).');
        } else {
          showSignedOut('Signed out (the client tells every tab of this page).', '');
          clearSessions('Not signed in.');
        }
      });
    });
  }

  byId('login-form').addEventListener('submit', (event) => {
    event.preventDefault();
    // A 200 login proves nothing about the cookie: browsers drop a
    // Set-Cookie they will not keep without any error. The client's
    // login asks who we are with the login's receipt, so that Latchkey
    // says why if the cookie does not come.
    latchkey.login(byId('username').value, byId('password').value);
  });
  byId('signup-form').addEventListener('submit', (event) => {
    event.preventDefault();
    latchkey.signup(byId('signup-username').value, byId('signup-email').value, byId('signup-password').value);
  });
  byId('resend').addEventListener('click', () => { latchkey.resend(byId('check-mail').dataset.email || ''); });
  byId('forgot-form').addEventListener('submit', (event) => {
    event.preventDefault();
    latchkey.forgotPassword(byId('forgot-email').value);
  });
  byId('reset-form').addEventListener('submit', (event) => {
    event.preventDefault();
    latchkey.resetPassword(linkToken || '', byId('reset-password').value);
  });
  byId('change-form').addEventListener('submit', (event) => {
    event.preventDefault();
    latchkey.changePassword(byId('current-password').value, byId('new-password').value);
  });
  byId('refresh').addEventListener('click', () => { latchkey.me(); });
  byId('logout').addEventListener('click', () => { latchkey.logout(); });
  byId('load-sessions').addEventListener('click', () => { latchkey.sessions(); });
  byId('revoke-all').addEventListener('click', () => { latchkey.revokeAll(); });
  byId('diagnose').addEventListener('click', () => { latchkey.diagnose(); });
  byId('doctor-copy').addEventListener('click', () => { copyCommand(); });
  byId('clear-log').addEventListener('click', () => {
    byId('log').replaceChildren();
    byId('log-empty').hidden = false;
  });

  if (linkPage) showLinkPage();
  // The verification signs in and asks me itself.
  if (linkPage !== 'verify' || !linkToken) latchkey.me();
}

// showLinkPage is the card of /verify or /reset: /verify spends its token
// at once, /reset asks for the new password first.
function showLinkPage() {
  byId('link-card').hidden = false;
  byId('link-title').textContent = linkPage === 'verify' ? 'Verify your email address' : 'Choose a new password';
  byId('link-endpoint').textContent = linkPage === 'verify' ? 'POST /email/verify' : 'POST /password/reset';
  if (!linkToken) {
    setStatus('link-status', 'This page opens from the link in your mail, which carries a #token=…: this address has none.', 'error');
  } else if (linkPage === 'verify') {
    setStatus('link-status', 'Verifying your address…', '');
    // A refused link leaves whoever was signed in: ask.
    latchkey.verifyEmail(linkToken).then((r) => { if (!r.ok) latchkey.me(); });
  } else {
    byId('reset-form').hidden = false;
    byId('reset-password').focus();
  }
}

// A module runs once the document is parsed.
start();
