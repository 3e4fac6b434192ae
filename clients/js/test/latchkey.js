// The tests' Latchkey: the real binary, built from this repository, run
// as `latchkey serve` with a tenants file on free loopback ports and the
// in-memory store, and stopped by its PID. And the fetch a browser would
// make of the client's calls: Node's fetch keeps no cookies and sends no
// Origin, so browserFetch adds both, as a page on a given origin would.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** password is every test user's. */
export const password = 'correct horse battery staple';

const buildTimeout = 180_000; // a cold build of cmd/latchkey, on a busy machine
const readyTimeout = 20_000;
const stopTimeout = 10_000;

/** freePort is a loopback port that nothing listened on a moment ago. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// sleep's timer keeps no process alive: the waits it bounds have their own
// handles (the child, a fetch).
const sleep = (ms) => new Promise((r) => setTimeout(r, ms).unref());

/**
 * startLatchkey builds Latchkey and serves the given tenants (the tenants
 * file's entries, users given as [username, ...]: each gets the password
 * above). env sets further LATCHKEY_* variables (LATCHKEY_SMTP_URL, for
 * tenants with accounts). It resolves once /readyz answers 200, to
 * { public, stop }, public being host:port of the public listener on
 * 127.0.0.1.
 */
export async function startLatchkey(tenants, { env = {} } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'latchkey-js-'));
  const bin = join(dir, 'latchkey');
  execFileSync(process.env.GO || 'go', ['build', '-o', bin, './cmd/latchkey'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
    timeout: buildTimeout,
  });
  const hash = execFileSync(bin, ['hash-password'], { input: password + '\n', timeout: 30_000 }).toString().trim();
  // JSON is YAML: the tenants file needs no YAML library.
  const file = {
    tenants: tenants.map(({ users = [], ...t }) => ({
      ...t,
      name: 'js client ' + t.id,
      users: users.map((username) => ({ username, password_hash: hash })),
    })),
  };
  writeFileSync(join(dir, 'tenants.yaml'), JSON.stringify(file, null, 2));
  for (let attempt = 1; ; attempt++) {
    try {
      return await launch(bin, dir, env);
    } catch (err) {
      // A port picked free may be taken before Latchkey binds it.
      if (attempt < 3 && /address already in use/.test(err.message)) continue;
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }
}

async function launch(bin, dir, extra) {
  const pub = '127.0.0.1:' + (await freePort());
  const admin = '127.0.0.1:' + (await freePort());
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('LATCHKEY_')));
  Object.assign(env, {
    LATCHKEY_ADDR: pub,
    LATCHKEY_ADMIN_ADDR: admin,
    LATCHKEY_TENANTS_FILE: join(dir, 'tenants.yaml'),
    LATCHKEY_COOKIE_KEYS: randomBytes(32).toString('base64'),
    LATCHKEY_LOG_LEVEL: 'warn',
    ...extra,
  });
  const child = spawn(bin, ['serve'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b) => (output += b));
  child.stderr.on('data', (b) => (output += b));
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let gone = false;
  exited.then(() => (gone = true));
  const signal = (sig) => {
    try {
      process.kill(child.pid, sig);
    } catch {} // it exited meanwhile
  };
  // Should the test process end first, it takes Latchkey with it.
  const reap = () => gone || signal('SIGKILL');
  process.once('exit', reap);
  // kill ends the process by its PID, SIGTERM then SIGKILL, each wait bounded.
  const kill = async () => {
    process.off('exit', reap);
    if (gone) return;
    signal('SIGTERM');
    if (await Promise.race([exited.then(() => true), sleep(stopTimeout).then(() => false)])) return;
    signal('SIGKILL');
    await Promise.race([exited, sleep(stopTimeout)]);
  };
  // stop kills it, removes its files, and fails unless it exited 0 on SIGTERM.
  const stop = async () => {
    await kill();
    rmSync(dir, { recursive: true, force: true });
    const { code, signal: sig } = await Promise.race([exited, sleep(0).then(() => ({}))]);
    if (code !== 0) throw new Error(`latchkey (PID ${child.pid}) exited with ${code ?? sig} on SIGTERM\n${output}`);
  };

  const deadline = Date.now() + readyTimeout;
  for (;;) {
    if (gone) {
      await kill();
      throw new Error('latchkey exited before it was ready:\n' + output);
    }
    try {
      const res = await fetch(`http://${admin}/readyz`, { signal: AbortSignal.timeout(1000) });
      if (res.status == 200) return { public: pub, pid: child.pid, stop, output: () => output };
    } catch {}
    if (Date.now() > deadline) {
      await kill();
      throw new Error(`latchkey at http://${admin}/readyz not ready within ${readyTimeout} ms:\n${output}`);
    }
    await sleep(50);
  }
}

/**
 * browserFetch is the fetch of a page on origin, as far as Latchkey can
 * tell: it sends Origin, and keeps the cookies Latchkey sets in jar (a Map
 * that several clients may share, as the tabs of one browser do) and sends
 * them back, but only on calls made with credentials: 'include', as a
 * browser does cross-origin. dropCookies drops them all (a browser that
 * blocks the cookie); cors refuses to show an answer without the page's
 * Access-Control-Allow-Origin, as a browser does, by rejecting. Each call
 * is recorded in log before it is sent.
 */
export function browserFetch({ origin, jar = new Map(), log = [], dropCookies = false, cors = false, refuse }) {
  return async (url, init = {}) => {
    const headers = new Headers(init.headers);
    const credentials = init.credentials === 'include';
    headers.set('Origin', origin);
    if (credentials && !dropCookies && jar.size) {
      headers.set('Cookie', [...jar].map(([k, v]) => `${k}=${v}`).join('; '));
    }
    const path = new URL(url).pathname;
    log.push({ method: init.method || 'GET', path, headers: Object.fromEntries(headers), credentials: init.credentials, body: init.body });
    if (refuse && refuse(path)) throw new TypeError('Failed to fetch');
    const res = await fetch(url, { ...init, headers });
    if (cors && res.headers.get('Access-Control-Allow-Origin') !== origin) {
      throw new TypeError('Failed to fetch');
    }
    if (credentials && !dropCookies) {
      for (const c of res.headers.getSetCookie()) {
        const pair = c.split(';')[0];
        const i = pair.indexOf('=');
        if (/;\s*max-age=0\s*(;|$)/i.test(c)) jar.delete(pair.slice(0, i));
        else jar.set(pair.slice(0, i), pair.slice(i + 1));
      }
    }
    return res;
  };
}
