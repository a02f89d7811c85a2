// A real browser for the console tests: Debian's Chromium driven by playwright-core (which
// never downloads a browser). When Chromium is not installed, `browserSupport()` says why and
// the tests report themselves skipped with that reason.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Locator, type Page } from 'playwright-core';

export const CHROMIUM_PATH = process.env.TOKENRELAY_CHROMIUM ?? '/usr/lib/chromium/chromium';

const ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-quic',
  '--no-first-run',
];

export function browserSupport(): { ok: true } | { ok: false; reason: string } {
  try {
    fs.accessSync(CHROMIUM_PATH, fs.constants.X_OK);
    return { ok: true };
  } catch {
    return { ok: false, reason: `Chromium is not installed at ${CHROMIUM_PATH} (apt-get install chromium; .ci/run does)` };
  }
}

export interface TestBrowser {
  context: BrowserContext;
  page: Page;
  /** Saves a full-page screenshot to docs/screenshots/NAME.png when TOKENRELAY_SCREENSHOTS=1. */
  shot(name: string, page?: Page): Promise<void>;
  close(): Promise<void>;
}

const SCREENSHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../docs/screenshots');

/** A fresh profile in a temp dir, a laptop-sized viewport, and nothing shared between runs. */
export async function launchBrowser(opts: { viewport?: { width: number; height: number } } = {}): Promise<TestBrowser> {
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenrelay-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: ARGS,
    viewport: opts.viewport ?? { width: 1366, height: 860 },
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  context.setDefaultTimeout(20_000);
  const page = context.pages()[0] ?? (await context.newPage());
  return {
    context,
    page,
    async shot(name, p = page) {
      if (process.env.TOKENRELAY_SCREENSHOTS !== '1') return;
      fs.mkdirSync(SCREENSHOTS, { recursive: true });
      await p.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), fullPage: true, animations: 'disabled' });
    },
    async close() {
      await context.close().catch(() => {});
      fs.rmSync(profile, { recursive: true, force: true });
    },
  };
}

// Waiting assertions (playwright-core has no `expect`): poll until true, else fail saying what was seen.
const norm = (s: string | null) => (s ?? '').replace(/\s+/g, ' ').trim();

async function until<T>(what: string, read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastErr: unknown;
  for (;;) {
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > end) throw new Error(`${what}: still not so after ${timeoutMs} ms; last seen: ${last === undefined ? String(lastErr) : JSON.stringify(last)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const textOf = (l: Locator) => l.first().textContent({ timeout: 1000 }).then(norm);
const matches = (v: string, want: string | RegExp, exact: boolean) => (typeof want === 'string' ? (exact ? v === want : v.includes(want)) : want.test(v));

/** The (first) element's text contains `want` (or equals it with `exact`, or matches the RegExp). */
export const hasText = (l: Locator, want: string | RegExp, exact = false) => until(`${String(l)} has text ${String(want)}`, () => textOf(l), (v) => matches(v, want, exact));
export const lacksText = (l: Locator, unwanted: string | RegExp) => until(`${String(l)} lacks ${String(unwanted)}`, () => textOf(l), (v) => !matches(v, unwanted, false));
export const hasCount = (l: Locator, n: number) => until(`${String(l)} count is ${n}`, () => l.count(), (v) => v === n);
export const isDisabled = (l: Locator) => until(`${String(l)} is disabled`, () => l.isDisabled({ timeout: 1000 }), (v) => v);
