// A page's TypeScript against the published declarations (dist/*.d.ts,
// through the package's own name and its exports): the types the spec
// gives each method's answer, and the errors' members. Type-checked by
// test/package.test.js, never run.
import {
  CookieNotSentError,
  createClient,
  InvalidTokenError,
  tokenFromLocation,
  WeakPasswordError,
  LatchkeyError,
  NetworkError,
  RateLimitedError,
  type Client,
  type DoctorLive,
  type LoginResult,
  type SessionList,
  type SessionView,
  type SignupResult,
} from '@latchkey/client';

const c: Client = createClient({ baseUrl: 'https://auth.acme.com/v1' });

export async function page(): Promise<void> {
  const r: LoginResult = await c.login('alice', 'correct horse battery staple');
  const receipt: string = r.receipt;
  const v: SessionView = await c.me();
  const username: string = v.user.username;
  const current: true = v.session.current;
  const list: SessionList = await c.sessions();
  const ids: string[] = list.sessions.map((s) => s.id);
  const d: DoctorLive = await c.doctor();
  const works: boolean[] = d.results.map((x) => x.works);
  const family: 'chrome' | 'firefox' | 'safari' | 'unknown' = d.browser_family;
  const done: void = await c.logout();
  await c.revokeSession(ids[0]);
  await c.logoutEverywhere();
  const off: () => void = c.onChange((s: SessionView | null) => s?.user.username);
  off();
  const s: SignupResult = await c.signup('alice', 'alice@example.com', 'correct horse battery staple');
  const name: string = s.signedIn ? s.user.username + s.receipt : String(s.verificationSent);
  const token: string | null = tokenFromLocation();
  if (token) {
    const vr: LoginResult = await c.verifyEmail(token);
    const rr: LoginResult = await c.resetPassword(token, 'a new passphrase');
    void [vr, rr];
  }
  const cr: LoginResult = await c.changePassword('old passphrase', 'new passphrase');
  const sent: void[] = [await c.resendVerification('a@example.com'), await c.requestPasswordReset('a@example.com')];
  // @ts-expect-error: not signed in, no receipt
  if (!s.signedIn) s.receipt;
  c.close();
  // @ts-expect-error: the answer has no such member
  v.user.password;
  // @ts-expect-error: a session id is a string
  await c.revokeSession(1);
  // @ts-expect-error: the session is read-only
  c.session = null;
  void [receipt, username, current, works, family, done, name, cr, sent];
}

export function handle(e: unknown): string {
  if (e instanceof CookieNotSentError) return e.reasons.join(', ') + e.advice + e.browser;
  if (e instanceof RateLimitedError) return String(e.retryAfter ?? 0);
  if (e instanceof WeakPasswordError || e instanceof InvalidTokenError) return e.detail;
  if (e instanceof NetworkError) return e.doctor ? e.doctor.origin : e.message;
  if (e instanceof LatchkeyError) return e.type + e.status + e.title + e.detail;
  return '';
}
