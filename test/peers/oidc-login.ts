// Headless end-user login against the oidc peer's real browser-facing flow:
// plain fetch + a cookie jar, no browser.
//
//   GET authorize URL -> 303 /interaction/<uid> (login page) -> POST the login form
//   -> 303 /auth/<uid> (resume) -> 303 /interaction/<uid> (consent page) -> POST the
//   consent (or deny) form -> 303 /auth/<uid> -> 303 <redirect_uri>?code=...&state=...
//
// The forms are parsed from the HTML the peer serves (action, method, hidden
// fields), exactly what a browser would submit. The final redirect to the
// client's redirect_uri is returned, never requested.

export interface LoginCredentials {
  username: string;
  password: string;
}

export interface CompleteLoginOptions {
  /** Deny consent on the consent page: the redirect then carries error=access_denied. */
  deny?: boolean;
  /** Give up after this many HTTP requests. Default 20. */
  maxRequests?: number;
  /** Per-request timeout, ms. Default 10 000. */
  timeoutMs?: number;
  /** Use this jar (e.g. to keep the provider session across logins). A fresh one by default. */
  jar?: CookieJar;
}

export class LoginError extends Error {
  constructor(
    message: string,
    readonly status?: number,
    readonly url?: string,
  ) {
    super(message);
    this.name = 'LoginError';
  }
}

interface StoredCookie {
  name: string;
  value: string;
  host: string;
  path: string;
  secure: boolean;
  expiresAt: number;
}

/** A small RFC 6265-ish cookie jar: host-only cookies, Path, Secure, Max-Age/Expires. */
export class CookieJar {
  private cookies: StoredCookie[] = [];

  /** Store the Set-Cookie headers of a response to `url`. */
  store(url: string | URL, headers: Headers): void {
    const u = new URL(url);
    for (const line of headers.getSetCookie()) {
      const [pair = '', ...attrs] = line.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      const lastSlash = u.pathname.lastIndexOf('/');
      let path = lastSlash > 0 ? u.pathname.slice(0, lastSlash) : '/';
      let secure = false;
      let expiresAt = Number.POSITIVE_INFINITY;
      let maxAgeSeen = false;
      for (const attr of attrs) {
        const i = attr.indexOf('=');
        const key = (i >= 0 ? attr.slice(0, i) : attr).trim().toLowerCase();
        const val = i >= 0 ? attr.slice(i + 1).trim() : '';
        if (key === 'path' && val.startsWith('/')) path = val;
        else if (key === 'secure') secure = true;
        else if (key === 'max-age') {
          const n = Number(val);
          if (Number.isFinite(n)) {
            expiresAt = Date.now() + n * 1000;
            maxAgeSeen = true;
          }
        } else if (key === 'expires' && !maxAgeSeen) {
          const t = Date.parse(val);
          if (Number.isFinite(t)) expiresAt = t;
        }
      }
      this.cookies = this.cookies.filter((c) => !(c.name === name && c.host === u.host && c.path === path));
      if (expiresAt > Date.now()) this.cookies.push({ name, value, host: u.host, path, secure, expiresAt });
    }
  }

  /** The Cookie header value for a request to `url` ('' when none apply). */
  header(url: string | URL): string {
    const u = new URL(url);
    const now = Date.now();
    this.cookies = this.cookies.filter((c) => c.expiresAt > now);
    return this.cookies
      .filter(
        (c) =>
          c.host === u.host &&
          (!c.secure || u.protocol === 'https:') &&
          (u.pathname === c.path || u.pathname.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)),
      )
      .sort((a, b) => b.path.length - a.path.length)
      .map((c) => `${c.name}=${c.value}`)
      .join('; ');
  }

  /** Names of all live cookies (for debugging). */
  names(): string[] {
    return this.cookies.map((c) => c.name);
  }
}

export interface HtmlForm {
  id: string | undefined;
  action: string;
  method: string;
  /** name -> value of every named input (hidden ones included) */
  fields: Map<string, string>;
  /** names of password inputs */
  passwordFields: string[];
  /** names of text-like inputs (text, email, no type) */
  textFields: string[];
}

function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]+|#\d+|amp|lt|gt|quot|apos|#39);/gi, (m, e: string) => {
    const k = e.toLowerCase();
    if (k === 'amp') return '&';
    if (k === 'lt') return '<';
    if (k === 'gt') return '>';
    if (k === 'quot') return '"';
    if (k === 'apos' || k === '#39') return "'";
    if (k.startsWith('#x')) return String.fromCodePoint(parseInt(k.slice(2), 16));
    if (k.startsWith('#')) return String.fromCodePoint(parseInt(k.slice(1), 10));
    return m;
  });
}

function attrsOf(tag: string): Map<string, string> {
  const attrs = new Map<string, string>();
  const re = /([a-zA-Z_:][-a-zA-Z0-9_:.]*)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'=<>`]+)))?/g;
  // skip the tag name
  const body = tag.replace(/^<\s*[a-zA-Z]+/, '').replace(/\/?>$/, '');
  for (const m of body.matchAll(re)) {
    attrs.set(m[1]!.toLowerCase(), decodeEntities(m[2] ?? m[3] ?? m[4] ?? ''));
  }
  return attrs;
}

/** Every <form> in `html`, with its action resolved against `baseUrl`. */
export function parseForms(html: string, baseUrl: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const m of html.matchAll(/<form\b[^>]*>([\s\S]*?)<\/form\s*>/gi)) {
    const openTag = /^<form\b[^>]*>/i.exec(m[0])![0];
    const a = attrsOf(openTag);
    const fields = new Map<string, string>();
    const passwordFields: string[] = [];
    const textFields: string[] = [];
    for (const im of (m[1] ?? '').matchAll(/<input\b[^>]*>/gi)) {
      const ia = attrsOf(im[0]);
      const name = ia.get('name');
      if (!name) continue;
      const type = (ia.get('type') ?? 'text').toLowerCase();
      if (type === 'submit' || type === 'button' || type === 'image' || type === 'reset') continue;
      if ((type === 'checkbox' || type === 'radio') && !ia.has('checked')) continue;
      fields.set(name, ia.get('value') ?? '');
      if (type === 'password') passwordFields.push(name);
      else if (type === 'text' || type === 'email') textFields.push(name);
    }
    forms.push({
      id: a.get('id'),
      action: new URL(a.get('action') ?? '', baseUrl).href,
      method: (a.get('method') ?? 'get').toUpperCase(),
      fields,
      passwordFields,
      textFields,
    });
  }
  return forms;
}

function snippet(html: string): string {
  const text = html
    .replace(/<(script|style)\b[\s\S]*?<\/\1>/gi, ' ')
    .replace(/<[^>]+>/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  return decodeEntities(text).slice(0, 300);
}

/**
 * Log `creds` in at the provider and consent (or deny), starting from the
 * client's authorization request URL. Resolves with the Location of the
 * provider's final redirect to the client's redirect_uri (carrying `code` and
 * `state`, or `error`), without requesting it.
 *
 * Rejects with LoginError when the provider shows an error page, refuses the
 * credentials, or the flow does not end at the client within maxRequests.
 */
export async function completeLogin(
  authorizeUrl: string,
  creds: LoginCredentials,
  opts: CompleteLoginOptions = {},
): Promise<string> {
  const start = new URL(authorizeUrl);
  const providerOrigin = start.origin;
  const redirectUri = start.searchParams.get('redirect_uri') ?? undefined;
  const jar = opts.jar ?? new CookieJar();
  const maxRequests = opts.maxRequests ?? 20;
  const timeoutMs = opts.timeoutMs ?? 10_000;

  // The flow is over once the provider redirects away from itself, or to the
  // redirect_uri the client asked for.
  const isClientRedirect = (loc: URL) => {
    if (redirectUri !== undefined && `${loc.origin}${loc.pathname}` === new URL(redirectUri).href.replace(/[?#].*$/, '')) {
      return true;
    }
    return loc.origin !== providerOrigin;
  };

  let next: { url: string; method: string; body?: URLSearchParams } = { url: start.href, method: 'GET' };
  let loggedIn = false;
  let consented = false;
  for (let n = 0; n < maxRequests; n += 1) {
    const headers: Record<string, string> = { accept: 'text/html' };
    const cookie = jar.header(next.url);
    if (cookie) headers.cookie = cookie;
    if (next.body) headers['content-type'] = 'application/x-www-form-urlencoded';
    const res = await fetch(next.url, {
      method: next.method,
      headers,
      ...(next.body ? { body: next.body.toString() } : {}),
      redirect: 'manual',
      signal: AbortSignal.timeout(timeoutMs),
    });
    jar.store(next.url, res.headers);

    if (res.status >= 300 && res.status < 400) {
      await res.arrayBuffer();
      const location = res.headers.get('location');
      if (!location) throw new LoginError(`HTTP ${res.status} without Location`, res.status, next.url);
      const loc = new URL(location, next.url);
      if (isClientRedirect(loc)) return loc.href;
      // like a browser: 307/308 repeat the request, 301/302/303 turn it into a GET
      next =
        res.status === 307 || res.status === 308
          ? { ...next, url: loc.href }
          : { url: loc.href, method: 'GET' };
      continue;
    }

    const html = await res.text();
    if (res.status !== 200 && res.status !== 401) {
      throw new LoginError(`provider answered HTTP ${res.status} at ${next.url}: ${snippet(html)}`, res.status, next.url);
    }
    const forms = parseForms(html, next.url);
    const byId = (id: string) => forms.find((f) => f.id === id);
    const loginForm = forms.find((f) => f.passwordFields.length > 0);
    if (loginForm) {
      if (loggedIn) {
        throw new LoginError(`login refused for ${creds.username}: ${snippet(html)}`, res.status, next.url);
      }
      loggedIn = true;
      const body = new URLSearchParams();
      for (const [k, v] of loginForm.fields) body.set(k, v);
      const userField = loginForm.textFields.find((f) => /user|login|email/i.test(f)) ?? loginForm.textFields[0];
      if (!userField) throw new LoginError('login form has no username field', res.status, next.url);
      body.set(userField, creds.username);
      body.set(loginForm.passwordFields[0]!, creds.password);
      next = { url: loginForm.action, method: loginForm.method, body };
      continue;
    }
    const consentForm = byId('consent-form') ?? forms.find((f) => /\/confirm$/.test(new URL(f.action).pathname));
    const denyForm = byId('deny-form') ?? forms.find((f) => /\/abort$/.test(new URL(f.action).pathname));
    if (consentForm || denyForm) {
      if (consented) throw new LoginError(`consent page shown twice: ${snippet(html)}`, res.status, next.url);
      consented = true;
      const form = opts.deny ? denyForm : consentForm;
      if (!form) throw new LoginError(`consent page has no ${opts.deny ? 'deny' : 'allow'} form`, res.status, next.url);
      const body = new URLSearchParams();
      for (const [k, v] of form.fields) body.set(k, v);
      next = form.method === 'GET' ? { url: form.action, method: 'GET' } : { url: form.action, method: form.method, body };
      continue;
    }
    throw new LoginError(`unexpected page at ${next.url} (HTTP ${res.status}): ${snippet(html)}`, res.status, next.url);
  }
  throw new LoginError(`login did not reach the client within ${maxRequests} requests`, undefined, next.url);
}
