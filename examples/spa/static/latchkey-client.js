/**
 * LatchkeyError is every error the client raises: a problem Latchkey
 * answered (type urn:latchkey:problem:<slug>, or about:blank for an answer
 * that was no problem document), or a NetworkError (status 0).
 */
export class LatchkeyError extends Error {
    name = 'LatchkeyError';
    constructor(p, retryAfter) {
        // cookie-not-sent's advice is its fix: say it wherever the message is logged.
        super(p.advice ? p.detail + ' ' + p.advice : p.detail || p.title);
        Object.assign(this, p, { retryAfter });
    }
}
/** UnauthenticatedError (401 unauthenticated): no session, or it expired or was ended. */
export class UnauthenticatedError extends LatchkeyError {
    name = 'UnauthenticatedError';
}
/**
 * CookieNotSentError (401 cookie-not-sent): Latchkey set the session
 * cookie at login and the browser did not send it back. It is an
 * UnauthenticatedError whose browser, reasons and advice are the doctor's
 * diagnosis.
 */
export class CookieNotSentError extends UnauthenticatedError {
    name = 'CookieNotSentError';
}
/** InvalidCredentialsError (401 invalid-credentials): wrong username or password, or a disabled user. */
export class InvalidCredentialsError extends LatchkeyError {
    name = 'InvalidCredentialsError';
}
/** RateLimitedError (429 rate-limited): too many failed logins; retryAfter says when to retry. */
export class RateLimitedError extends LatchkeyError {
    name = 'RateLimitedError';
}
/** ForbiddenOriginError (403 forbidden-origin): the page's origin is not one of the tenant's. */
export class ForbiddenOriginError extends LatchkeyError {
    name = 'ForbiddenOriginError';
}
/** UnavailableError (503 unavailable): the store is down or logins are busy; never a logout. */
export class UnavailableError extends LatchkeyError {
    name = 'UnavailableError';
}
/** InvalidTokenError (400 invalid-token): the mailed link is invalid, used or expired. */
export class InvalidTokenError extends LatchkeyError {
    name = 'InvalidTokenError';
}
/** WeakPasswordError (400 weak-password): the new password breaks the tenant's policy; detail says which rule. */
export class WeakPasswordError extends LatchkeyError {
    name = 'WeakPasswordError';
}
/** EmailUnverifiedError (403 email-unverified): the right password, but the address is not verified yet. */
export class EmailUnverifiedError extends LatchkeyError {
    name = 'EmailUnverifiedError';
}
/** NotEnabledError (404 not-enabled): the tenant has not turned this self-service feature on. */
export class NotEnabledError extends LatchkeyError {
    name = 'NotEnabledError';
}
/**
 * NetworkError: fetch rejected, so the page saw no status: the browser
 * refused the answer (CORS), the origin or scheme is wrong, or the network
 * is down. doctor is the live check's answer when it got through.
 */
export class NetworkError extends LatchkeyError {
    name = 'NetworkError';
}
const classes = {
    unauthenticated: UnauthenticatedError,
    'cookie-not-sent': CookieNotSentError,
    'invalid-credentials': InvalidCredentialsError,
    'rate-limited': RateLimitedError,
    'forbidden-origin': ForbiddenOriginError,
    unavailable: UnavailableError,
    'invalid-token': InvalidTokenError,
    'weak-password': WeakPasswordError,
    'email-unverified': EmailUnverifiedError,
    'not-enabled': NotEnabledError,
};
/**
 * tokenFromLocation is the token of a mailed link's page (…/verify#token=…),
 * or null when there is none. It takes the token out of the address bar
 * (history.replaceState), so that it stays neither in the history nor on
 * the screen; the fragment's other members stay.
 */
export function tokenFromLocation(l = location) {
    const p = new URLSearchParams(l.hash.slice(1));
    const t = p.get('token');
    if (t != null) {
        p.delete('token');
        const rest = p + '';
        try {
            history.replaceState(history.state, '', l.pathname + l.search + (rest && '#' + rest));
        }
        catch { }
    }
    return t;
}
const noop = () => { };
/** createClient returns the client of one Latchkey tenant at options.baseUrl. */
export function createClient(options) {
    const base = options.baseUrl.replace(/\/+$/, '');
    // Called as a plain function: a browser's fetch refuses any this but window.
    const f = options.fetch || ((u, i) => fetch(u, i));
    const key = 'latchkey:' + base;
    const listeners = new Set();
    let current = null;
    let last = 0;
    // gen counts the changes of state: an answer to a call that began before
    // the latest (a refetch racing a logout) changes nothing.
    let gen = 0;
    const set = (v) => {
        const changed = (v && v.session.id) !== (current && current.session.id);
        current = v;
        gen++;
        // A listener that throws is the page's bug: report it as the browser
        // reports an uncaught error, and neither skip the other listeners nor
        // fail the call that changed the state.
        if (changed)
            listeners.forEach((l) => {
                try {
                    l(v);
                }
                catch (e) {
                    (globalThis.reportError || console.error)(e);
                }
            });
    };
    async function call(method, path, body, receipt, probe) {
        const headers = {};
        if (body)
            headers['Content-Type'] = 'application/json';
        if (receipt)
            headers['Latchkey-Receipt'] = receipt;
        const g = gen;
        let res;
        try {
            res = await f(base + path, { method, headers, credentials: 'include', body: body && JSON.stringify(body) });
        }
        catch (cause) {
            throw await refused(base + path, cause, probe);
        }
        if (res.ok)
            return res.status == 204 ? undefined : res.json();
        // An answer that is no problem document (a proxy's error page) keeps its status.
        const p = (await res.json().then((x) => (x && typeof x.type == 'string' ? x : 0), noop)) || {
            type: 'about:blank',
            title: res.statusText,
            detail: '',
        };
        p.status = res.status;
        const n = parseInt(res.headers.get('Retry-After'), 10);
        const e = new (classes[p.type.replace('urn:latchkey:problem:', '')] || LatchkeyError)(p, n >= 0 ? n : undefined);
        if (e instanceof UnauthenticatedError && g == gen)
            set(null);
        throw e;
    }
    // refused is the NetworkError for a fetch of url that rejected. Unless
    // that fetch was the live check, it asks the live check once: if that
    // answers, the origin is listed and the scheme right, and its verdicts
    // say what the browser does with the cookie.
    async function refused(url, cause, probe) {
        let d;
        if (!probe)
            d = await call('GET', '/doctor', undefined, undefined, true).catch(noop);
        const bad = d && d.results.find((v) => !v.works);
        const page = typeof location == 'object' ? location.origin : 'ORIGIN';
        // The tenant is in the path form's URL; the host form's is the hostname's.
        const tenant = (/\/v1\/t\/([^/]+)$/.exec(base) || [])[1] || 'ID';
        return new NetworkError({
            type: 'network',
            title: 'Network error',
            status: 0,
            detail: d
                ? `The request to ${url} got no answer the page could read, but the live check got through` +
                    (bad
                        ? `: ${bad.browser} fails (${bad.reasons.join(', ')}). ${bad.advice}`
                        : ' and sees nothing wrong: the network failed, or a proxy, an extension or a CSP refused the request.')
                : `The browser refused the request to ${url} (CORS refused, wrong origin or scheme, or network down); ` +
                    `run: latchkey doctor --tenants-file FILE --tenant ${tenant} --page-origin ${page} --api ${base}`,
            doctor: d,
            cause,
        });
    }
    async function me(receipt) {
        last = Date.now();
        const g = gen;
        const v = await call('GET', '/me', undefined, receipt);
        if (g == gen)
            set(v);
        return v;
    }
    // Other tabs of this origin learn of a login or logout here: through a
    // BroadcastChannel, or where there is none through localStorage's
    // storage event. A message is only a hint: a login makes a tab ask me()
    // itself, and a logout cleared the cookie that every tab shares.
    const hear = (m) => (m == 'out' ? set(null) : m == 'in' && me().catch(noop));
    const onStorage = (e) => e.key == key && e.newValue && hear(e.newValue.split(' ')[0]);
    let channel;
    if (typeof BroadcastChannel == 'function') {
        channel = new BroadcastChannel(key);
        channel.onmessage = (e) => hear(e.data);
        // Node's channel would keep a server-side process alive.
        channel.unref?.();
    }
    else if (typeof window == 'object')
        window.addEventListener('storage', onStorage);
    const tell = (m) => {
        try {
            channel ? channel.postMessage(m) : localStorage.setItem(key, m + ' ' + Date.now());
        }
        catch { }
    };
    // A tab that comes back (visible again, or online) asks who is signed
    // in, at most every 5 s whatever the browser fires.
    const wake = () => document.visibilityState == 'visible' && Date.now() - last > 5e3 && me().catch(noop);
    const browser = typeof document == 'object';
    if (browser) {
        document.addEventListener('visibilitychange', wake);
        window.addEventListener('online', wake);
    }
    const out = () => {
        set(null);
        tell('out');
    };
    // confirm is what every call that starts a session does with its answer
    // (signIn's calls, and signup's when it signed its user in): a me with
    // the answer's receipt (CookieNotSentError when the browser dropped the
    // cookie), then telling the other tabs.
    async function confirm(r) {
        await me(r.receipt);
        tell('in');
        return r;
    }
    const signIn = (path, body) => call('POST', path, body).then(confirm);
    const post = (path, body) => call('POST', path, body).then(noop);
    return {
        baseUrl: base,
        get session() {
            return current;
        },
        login: (username, password) => signIn('/login', { username, password }),
        async signup(username, email, password) {
            const body = { username, email, password };
            const r = await call('POST', '/signup', body);
            return 'receipt' in r ? { signedIn: true, ...(await confirm(r)) } : { signedIn: false, verificationSent: true };
        },
        verifyEmail: (token) => signIn('/email/verify', { token }),
        resendVerification: (email) => post('/email/verify/resend', { email }),
        requestPasswordReset: (email) => post('/password/reset/request', { email }),
        resetPassword: (token, password) => signIn('/password/reset', { token, password }),
        changePassword: (current_password, new_password) => signIn('/password', { current_password, new_password }),
        me: () => me(),
        logout: () => call('POST', '/logout', {}).then(out),
        sessions: () => call('GET', '/sessions'),
        async revokeSession(id) {
            await call('DELETE', '/sessions/' + encodeURIComponent(id));
            if (current && current.session.id == id)
                out();
        },
        logoutEverywhere: () => call('DELETE', '/sessions').then(out),
        doctor: () => call('GET', '/doctor', undefined, undefined, true),
        onChange(l) {
            listeners.add(l);
            return () => listeners.delete(l);
        },
        close() {
            channel && channel.close();
            if (typeof window == 'object')
                window.removeEventListener('storage', onStorage);
            if (browser) {
                document.removeEventListener('visibilitychange', wake);
                window.removeEventListener('online', wake);
            }
            listeners.clear();
        },
    };
}
