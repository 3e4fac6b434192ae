// The tests' mail server: a minimal SMTP receiver on a free loopback
// port, in this process, that accepts every message (no TLS, no AUTH:
// Latchkey only sends plain SMTP to a loopback host) and keeps it parsed:
// To, Subject, the text and HTML parts decoded, and the text's first link.
// It is enough for what Latchkey's mailer sends (go-mail: quoted-printable
// or base64 parts, multipart/alternative), not a general MIME parser.
import { createServer } from 'node:net';

/**
 * startSMTP listens on 127.0.0.1:0 and resolves to { url, messages,
 * waitMail, stop }: url is the LATCHKEY_SMTP_URL to give Latchkey.
 */
export function startSMTP() {
  const messages = [];
  const waiters = new Set();
  const sockets = new Set();
  const server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => {});
    sock.setEncoding('latin1'); // bytes as they came: decoded per part below
    let buf = '';
    let data = null; // the DATA being read, or null in command mode
    const say = (line) => sock.write(line + '\r\n');
    say('220 localhost latchkey-js-test ESMTP');
    sock.on('data', (chunk) => {
      buf += chunk;
      for (;;) {
        if (data != null) {
          const end = buf.indexOf('\r\n.\r\n');
          if (end < 0) return;
          data += buf.slice(0, end + 2);
          buf = buf.slice(end + 5);
          const m = parse(data.replace(/^\.\./gm, '.'));
          data = null;
          messages.push(m);
          for (const w of waiters) w();
          say('250 2.0.0 queued');
          continue;
        }
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        if (verb == 'EHLO') say('250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8');
        else if (verb == 'DATA') {
          data = '';
          say('354 end with <CRLF>.<CRLF>');
          // The DATA may already be in buf: the loop goes on in data mode.
        } else if (verb == 'QUIT') {
          say('221 2.0.0 bye');
          sock.end();
        } else say('250 2.0.0 ok'); // HELO, MAIL, RCPT, RSET, NOOP
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      resolve({
        url: `smtp://127.0.0.1:${port}`,
        messages,
        /**
         * waitMail resolves to the first message to address (and, when
         * given, matching the predicate) not yet taken, and takes it.
         */
        waitMail(to, { timeout = 15_000, match = () => true } = {}) {
          const taken = (m) => m.to.toLowerCase().includes(to.toLowerCase()) && !m.taken && match(m);
          return new Promise((resolve, reject) => {
            const check = () => {
              const m = messages.find(taken);
              if (!m) return false;
              m.taken = true;
              waiters.delete(check);
              clearTimeout(timer);
              resolve(m);
              return true;
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              reject(new Error(`no mail to ${to} within ${timeout} ms; got mail to: ${messages.map((m) => m.to).join(', ') || 'nobody'}`));
            }, timeout);
            if (!check()) waiters.add(check);
          });
        },
        stop: () =>
          new Promise((resolve) => {
            for (const s of sockets) s.destroy();
            server.close(() => resolve());
          }),
      });
    });
  });
}

// split cuts a message or part into its headers (lowercased names,
// unfolded) and its body.
function split(raw) {
  const i = raw.search(/\r?\n\r?\n/);
  const head = i < 0 ? raw : raw.slice(0, i);
  const body = i < 0 ? '' : raw.slice(i).replace(/^\r?\n\r?\n/, '');
  const headers = {};
  for (const line of head.replace(/\r?\n[ \t]+/g, ' ').split(/\r?\n/)) {
    const c = line.indexOf(':');
    if (c > 0) headers[line.slice(0, c).trim().toLowerCase()] = line.slice(c + 1).trim();
  }
  return { headers, body };
}

// decode is a part's body as text: its transfer encoding undone, its
// bytes read as UTF-8.
function decode(headers, body) {
  const cte = (headers['content-transfer-encoding'] || '').toLowerCase();
  let bytes;
  if (cte == 'base64') bytes = Buffer.from(body.replace(/\s+/g, ''), 'base64');
  else if (cte == 'quoted-printable') {
    const s = body.replace(/=\r?\n/g, '');
    bytes = Buffer.from(s.replace(/=([0-9A-Fa-f]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16))), 'latin1');
  } else bytes = Buffer.from(body, 'latin1');
  return bytes.toString('utf8');
}

// words decodes RFC 2047 encoded words (a Subject go-mail encoded).
function words(s) {
  return s.replace(/=\?utf-8\?([bq])\?([^?]*)\?=/gi, (_, enc, text) =>
    enc.toLowerCase() == 'b'
      ? Buffer.from(text, 'base64').toString('utf8')
      : decode({ 'content-transfer-encoding': 'quoted-printable' }, text.replace(/_/g, ' ')),
  );
}

function parts(headers, body, out) {
  const type = headers['content-type'] || 'text/plain';
  const b = /boundary="?([^";]+)"?/i.exec(type);
  if (/^multipart\//i.test(type) && b) {
    for (const chunk of body.split('--' + b[1]).slice(1)) {
      if (chunk.startsWith('--')) break;
      const p = split(chunk.replace(/^\r?\n/, ''));
      parts(p.headers, p.body, out);
    }
  } else if (/^text\/html/i.test(type)) out.html ??= decode(headers, body);
  else if (/^text\//i.test(type)) out.text ??= decode(headers, body);
}

function parse(raw) {
  const { headers, body } = split(raw);
  const m = { to: words(headers.to || ''), subject: words(headers.subject || ''), text: undefined, html: undefined, raw };
  parts(headers, body, m);
  const link = /https?:\/\/[^\s"<>]+/.exec(m.text || '');
  m.link = link ? link[0] : undefined;
  return m;
}
