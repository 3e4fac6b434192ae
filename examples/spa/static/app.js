// Latchkey example SPA.
//
// Every call goes through send(), which never rejects: it turns a rejected
// fetch() (the browser refused to let the page read the response, because
// of CORS or the network) into a result with blocked: true, and logs the
// call. Data from the network is only ever written with textContent, never
// as HTML. The UI buttons and window.latchkey use the same functions.
'use strict';

(function () {
  const config = window.LATCHKEY_CONFIG || {};
  const api = typeof config.api === 'string' ? config.api : '';

  const byId = (id) => document.getElementById(id);

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

  // failureText explains a failed result in one line for a card's status.
  function failureText(r) {
    if (r.blocked) return 'blocked: ' + r.error + ' (the browser did not let this page read the response)';
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
    return { method, credentials, contentType };
  }

  // send fetches api + path with init exactly as given and resolves to
  // {ok, status, blocked, error, body, headers}; it never rejects.
  async function send(path, init) {
    init = init || {};
    const result = { ok: false, status: 0, blocked: false, error: '', body: null, headers: {} };
    const entry = { path: String(path), url: api + path, request: null, statusText: '', text: '', ms: 0, started: new Date() };
    const t0 = performance.now();
    try {
      entry.request = describeRequest(init);
      if (api === '') {
        result.blocked = true;
        result.error = 'no Latchkey API configured (window.LATCHKEY_CONFIG.api is missing: did /config.js load?)';
      } else {
        let res = null;
        try {
          res = await fetch(entry.url, init);
        } catch (err) {
          // The browser rejects without saying why (CORS refused, network
          // down, bad URL): the reason is only in the DevTools console.
          result.blocked = true;
          result.error = errorMessage(err);
        }
        if (res) {
          result.status = res.status;
          result.ok = res.ok;
          entry.statusText = res.statusText;
          // Only CORS-safelisted headers and those in
          // Access-Control-Expose-Headers are visible here.
          res.headers.forEach((value, name) => { result.headers[name.toLowerCase()] = value; });
          try {
            entry.text = await res.text();
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
        }
      }
    } catch (err) {
      result.ok = false;
      result.error = result.error || ('the page failed: ' + errorMessage(err));
    }
    entry.ms = Math.round(performance.now() - t0);
    safely(() => logCall(entry, result));
    return result;
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
        return { ok: false, status: 0, blocked: false, error: 'the page failed: ' + errorMessage(err), body: null, headers: {} };
      }
    };
  }

  const credentialed = (init) => Object.assign({ credentials: 'include' }, init);
  const jsonPost = (body) => credentialed({
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body,
  });

  // ---------------------------------------------------------------- the API

  async function login(username, password) {
    const r = await send('/login', jsonPost(JSON.stringify({ username, password })));
    safely(() => {
      if (r.ok && r.body && r.body.user) {
        showSignedIn(r.body, 'Logged in: a new session started and the response set its cookie.');
        setStatus('login-status', 'Logged in as ' + r.body.user.username + '.', 'ok');
        byId('password').value = '';
        // Login starts a new session and ends the one it was sent with.
        clearSessions('Logged in with a new session: load sessions to see it.');
      } else {
        setStatus('login-status', failureText(r), 'error');
      }
    });
    return r;
  }

  async function me() {
    const r = await send('/me', credentialed({ method: 'GET' }));
    safely(() => {
      if (r.ok && r.body && r.body.user) {
        showSignedIn(r.body, 'The session cookie was sent and accepted.');
      } else if (r.status === 401) {
        showSignedOut(r.error, '');
      } else {
        showSignedOut('', failureText(r));
      }
    });
    return r;
  }

  async function logout() {
    const r = await send('/logout', jsonPost('{}'));
    safely(() => {
      if (r.ok) {
        showSignedOut('Logged out: the session ended on the server and the cookie was cleared.', '');
        clearSessions('Not signed in.');
      } else {
        setStatus('who-status', failureText(r), 'error');
      }
    });
    return r;
  }

  async function sessions() {
    const r = await send('/sessions', credentialed({ method: 'GET' }));
    safely(() => {
      if (r.ok && r.body && Array.isArray(r.body.sessions)) {
        renderSessions(r.body.sessions);
      } else {
        handleFailure(r);
      }
    });
    return r;
  }

  async function revoke(id) {
    const r = await send('/sessions/' + encodeURIComponent(String(id)), credentialed({ method: 'DELETE' }));
    safely(() => {
      if (r.ok) {
        const wasCurrent = currentSessionId !== '' && String(id) === currentSessionId;
        for (const li of Array.from(byId('sessions').children)) {
          if (li.dataset.id === String(id)) li.remove();
        }
        if (wasCurrent) {
          showSignedOut('This device\'s session was revoked, so its cookie was cleared.', '');
          clearSessions('Not signed in.');
        } else {
          setStatus('sessions-status', 'Session revoked.', 'ok');
        }
      } else {
        handleFailure(r);
      }
    });
    return r;
  }

  async function revokeAll() {
    const r = await send('/sessions', credentialed({ method: 'DELETE' }));
    safely(() => {
      if (r.ok) {
        showSignedOut('Every session ended, this one included.', '');
        clearSessions('All sessions revoked.');
      } else {
        handleFailure(r);
      }
    });
    return r;
  }

  // raw sends init as given: no credentials mode or headers are added, so
  // that the console (and tests) can show what goes wrong without them.
  async function raw(path, init) {
    return send(String(path), Object.assign({}, init));
  }

  // handleFailure shows a failed sessions call; a 401 means the cookie is
  // gone or no longer valid, so this device is signed out.
  function handleFailure(r) {
    if (r.status === 401) {
      showSignedOut(r.error, '');
      clearSessions('Not signed in: ' + r.error);
    } else {
      setStatus('sessions-status', failureText(r), 'error');
    }
  }

  // ---------------------------------------------------------------- UI state

  function showSignedIn(view, note) {
    byId('who').textContent = 'Signed in as ' + String(view.user.username);
    byId('who-card').classList.add('signed-in');
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

  // The tenant is in the path (path form /v1/t/{tenant}) or implied by the
  // API's host (host form /v1).
  function tenantOf(base) {
    try {
      const u = new URL(base);
      const m = u.pathname.match(/\/t\/([^/]+)$/);
      return m ? decodeURIComponent(m[1]) : u.hostname + ' (host form)';
    } catch (_) {
      return '?';
    }
  }

  const latchkey = {
    login: guard(login),
    me: guard(me),
    logout: guard(logout),
    sessions: guard(sessions),
    revoke: guard(revoke),
    revokeAll: guard(revokeAll),
    raw: guard(raw),
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
    }

    byId('login-form').addEventListener('submit', async (event) => {
      event.preventDefault();
      const r = await latchkey.login(byId('username').value, byId('password').value);
      if (!r.ok) return;
      // A 200 login proves nothing about the cookie: browsers drop a
      // Set-Cookie they will not keep without any error. Ask who we are.
      const check = await latchkey.me();
      if (check.status === 401) {
        setStatus('login-status', 'Logged in, but the browser did not keep the session cookie: ' +
          'the next call was not authenticated. Usually third-party cookies are blocked and the ' +
          "tenant's cookie is not Partitioned, or its SameSite does not fit the sites involved; " +
          "Latchkey logs a warning naming the fix when it loads such a tenant.", 'error');
      }
    });
    byId('refresh').addEventListener('click', () => { latchkey.me(); });
    byId('logout').addEventListener('click', () => { latchkey.logout(); });
    byId('load-sessions').addEventListener('click', () => { latchkey.sessions(); });
    byId('revoke-all').addEventListener('click', () => { latchkey.revokeAll(); });
    byId('clear-log').addEventListener('click', () => {
      byId('log').replaceChildren();
      byId('log-empty').hidden = false;
    });

    latchkey.me();
  }

  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', start);
  } else {
    start();
  }
})();
