import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';
import { startTokenEndpoint } from './token-endpoint.js';
import { cpuSeconds, histogramQuantile, percentile, rssMb, sortNum } from './stats.js';

/**
 * `npm run bench`: the relay measured against a direct call, side by side, on loopback. A
 * minimal token endpoint (so our overhead is what is measured), `tokenrelay instance` and one
 * `tokenrelay mid` as real processes. Phases alternate the two sides so machine drift hits
 * both. Prints a table and writes bench/results.json. `--quick` runs in under a minute.
 */
const quick = process.argv.includes('--quick');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.join(ROOT, 'bin', 'tokenrelay.js');
const ADMIN = 'bench-admin-token';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Row {
  figure: string;
  value: string;
  target: string;
  met: boolean | null;
}
const rows: Row[] = [];
const results: Record<string, unknown> = {};
const log = (msg: string) => process.stderr.write(`bench: ${msg}\n`);

function spawnNode(args: string[], env: Record<string, string>): ChildProcess {
  const child = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  child.stderr?.on('data', (d: Buffer) => {
    const line = d.toString();
    if (/error|fatal/i.test(line)) process.stderr.write(`[child] ${line}`);
  });
  return child;
}

async function main(): Promise<void> {
  const data = fs.mkdtempSync(path.join(os.tmpdir(), 'tokenrelay-bench-'));
  const endpoint = await startTokenEndpoint({ ttlS: 3600 });
  const port = 20000 + Math.floor(Math.random() * 20000);
  const base = `http://127.0.0.1:${port}`;
  const instance = spawnNode([BIN, 'instance', '--host', '127.0.0.1', '--port', String(port), '--data', path.join(data, 'instance')], {
    TOKENRELAY_ADMIN_TOKEN: ADMIN,
    TOKENRELAY_LOG_LEVEL: 'warn',
  });
  const pool = new Pool(base, { connections: 128, pipelining: 1 });
  const call = async (method: 'GET' | 'POST', p: string, body?: unknown): Promise<{ status: number; json: any }> => {
    const res = await pool.request({
      method,
      path: p,
      headers: { authorization: `Bearer ${ADMIN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.body.text();
    return { status: res.statusCode, json: text ? JSON.parse(text) : null };
  };
  let mid: ChildProcess | undefined;
  try {
    for (let i = 0; ; i++) {
      try {
        if ((await pool.request({ method: 'GET', path: '/healthz' }).then((r) => (r.body.resume(), r.statusCode))) === 200) break;
      } catch {
        /* not up yet */
      }
      if (i > 200) throw new Error('instance did not start');
      await sleep(100);
    }
    const key = (await call('POST', '/api/v1/mid_enrollment_keys', {})).json.key;
    mid = spawnNode([BIN, 'mid', '--instance', base, '--name', 'bench', '--enroll', key, '--data', path.join(data, 'mid')], { TOKENRELAY_LOG_LEVEL: 'warn' });
    for (let i = 0; (await call('GET', '/api/v1/mid_servers/bench')).json?.status !== 'up'; i++) {
      if (i > 200) throw new Error('MID server did not come up');
      await sleep(100);
    }
    await call('POST', '/api/v1/mid_servers/bench/validate', {});
    const provider = (await call('POST', '/api/v1/oauth_providers', { name: 'bench', client_id: 'bench', client_secret: 'bench-secret', token_url: endpoint.url })).json;
    const makeCreds = async (prefix: string, n: number, viaMid: boolean) => {
      const ids: string[] = [];
      await runPool(32, n, async (i) => {
        const r = await call('POST', '/api/v1/credentials', { name: `${prefix}-${i}`, profile_id: provider.default_profile_id, use_mid_server: viaMid, applies_to: 'specific', mid_servers: viaMid ? ['bench'] : [] });
        if (r.status !== 201) throw new Error(`credential: ${JSON.stringify(r.json)}`);
        ids[i] = r.json.id;
      });
      return ids;
    };
    const via = await makeCreds('via', 64, true);
    const direct = await makeCreds('direct', 64, false);
    const getToken = async (id: string) => {
      const r = await call('POST', `/api/v1/credentials/${id}/get_token`, {});
      if (r.status !== 200) throw new Error(`get_token: ${JSON.stringify(r.json)}`);
    };
    await sleep(1_000);
    const midIdleRss = rssMb(mid.pid!);
    let midPeakRss = midIdleRss;
    const sampler = setInterval(() => {
      try {
        midPeakRss = Math.max(midPeakRss, rssMb(mid!.pid!));
      } catch {
        /* exited */
      }
    }, 200);

    // 1. Latency, concurrency 1, alternating sides.
    const n = quick ? 300 : 2000;
    for (let i = 0; i < 50; i++) await getToken(i % 2 ? via[0]! : direct[0]!);
    const claimBefore = await claimHistogram(base);
    const lat = { via: [] as number[], direct: [] as number[] };
    for (let i = 0; i < n; i++) {
      for (const side of i % 2 ? (['via', 'direct'] as const) : (['direct', 'via'] as const)) {
        const t0 = performance.now();
        await getToken(side === 'via' ? via[0]! : direct[0]!);
        lat[side].push(performance.now() - t0);
      }
    }
    const claimAfter = await claimHistogram(base);
    const v = sortNum(lat.via);
    const d = sortNum(lat.direct);
    const d50 = percentile(v, 50) - percentile(d, 50);
    const d99 = percentile(v, 99) - percentile(d, 99);
    results.latency_ms = { via: { p50: percentile(v, 50), p99: percentile(v, 99) }, direct: { p50: percentile(d, 50), p99: percentile(d, 99) }, samples: n };
    rows.push({ figure: 'get_token via MID − direct, c=1: p50 / p99', value: `${d50.toFixed(2)} / ${d99.toFixed(2)} ms`, target: '≤ 2 / ≤ 10 ms', met: d50 <= 2 && d99 <= 10 });
    log(`latency via p50 ${percentile(v, 50).toFixed(2)} p99 ${percentile(v, 99).toFixed(2)}; direct p50 ${percentile(d, 50).toFixed(2)} p99 ${percentile(d, 99).toFixed(2)}`);

    // 6. Enqueue-to-claim wake-up, from the instance's own histogram over the latency phase.
    const wake = claimAfter.map((b, i) => ({ le: b.le, count: b.count - (claimBefore[i]?.count ?? 0) }));
    const w50 = histogramQuantile(wake, 0.5) * 1000;
    const w99 = histogramQuantile(wake, 0.99) * 1000;
    results.wakeup_ms = { p50: w50, p99: w99, samples: wake.at(-1)?.count };

    // 2. Throughput ratio at concurrency 1, 8, 64, alternating sides.
    const seconds = quick ? 2 : 8;
    const tput: Record<string, { via: number; direct: number; ratio: number }> = {};
    for (const c of [1, 8, 64]) {
      const rates = { via: [] as number[], direct: [] as number[] };
      for (const side of ['direct', 'via', 'via', 'direct'] as const) {
        const ids = side === 'via' ? via : direct;
        rates[side].push(await throughput(c, seconds * 1000, (w) => getToken(ids[w]!)));
      }
      const rv = avg(rates.via);
      const rd = avg(rates.direct);
      tput[c] = { via: rv, direct: rd, ratio: rv / rd };
      log(`throughput c=${c}: via ${rv.toFixed(0)}/s direct ${rd.toFixed(0)}/s`);
    }
    results.throughput = tput;
    rows.push({
      figure: 'relayed ÷ direct token requests/s, c=1 / 8 / 64',
      value: [1, 8, 64].map((c) => tput[c]!.ratio.toFixed(2)).join(' / '),
      target: '≥ 0.33 at 64',
      met: tput[64]!.ratio >= 0.33,
    });

    // 3. Cached access_token reads through the HTTP API. wrk (Debian package) when present: a
    // load generator in C leaves the second core to the instance; else undici from this process.
    const readSeconds = quick ? 3 : 10;
    const wrk = await wrkReads(`${base}/api/v1/credentials/${via[0]}/access_token`, readSeconds);
    const readRate =
      wrk ??
      (await throughput(64, readSeconds * 1000, async (w) => {
        const r = await pool.request({ method: 'GET', path: `/api/v1/credentials/${via[w]}/access_token`, headers: { authorization: `Bearer ${ADMIN}` } });
        await r.body.text();
        if (r.statusCode !== 200) throw new Error(`read ${r.statusCode}`);
      }));
    results.cached_reads_per_s = readRate;
    results.cached_reads_generator = wrk === null ? 'undici (in the bench process)' : 'wrk -t1 -c64';
    rows.push({ figure: `cached GET …/access_token reads/s (HTTP API, ${wrk === null ? 'undici' : 'wrk'})`, value: readRate.toFixed(0), target: '≥ 20,000', met: readRate >= 20_000 });

    // 4. Many credentials with short tokens, refreshed through the MID server by the scheduler.
    const soakN = quick ? 1000 : 10_000;
    const ttl = quick ? 20 : 60;
    const soakS = quick ? 20 : 300;
    endpoint.setTtl(ttl);
    log(`soak: creating ${soakN} credentials`);
    const soak = await makeCreds('soak', soakN, true);
    await runPool(32, soakN, (i) => getToken(soak[i]!));
    const before = endpoint.requests();
    const cpu0 = cpuSeconds(instance.pid!);
    const t0 = Date.now();
    let expired = 0;
    let reads = 0;
    let slowReads = 0;
    log(`soak: ${soakS} s of ${ttl} s tokens`);
    while (Date.now() - t0 < soakS * 1000) {
      const batch = Array.from({ length: 20 }, () => soak[Math.floor(Math.random() * soakN)]!);
      await Promise.all(
        batch.map(async (id) => {
          const s = performance.now();
          const r = await call('GET', `/api/v1/credentials/${id}/access_token`);
          const ms = performance.now() - s;
          reads++;
          if (ms > 50) slowReads++;
          if (r.status !== 200 || Date.parse(r.json.expires_at) <= Date.now()) expired++;
        }),
      );
      await sleep(100);
    }
    const cpu = (cpuSeconds(instance.pid!) - cpu0) / ((Date.now() - t0) / 1000);
    const refreshes = endpoint.requests() - before;
    results.soak = { credentials: soakN, ttl_s: ttl, seconds: soakS, refreshes, reads, expired_reads: expired, reads_over_50ms: slowReads, instance_cpu_share: cpu };
    rows.push({
      figure: `${soakN} credentials, ${ttl} s tokens, refreshed via MID for ${soakS} s: expired reads; instance CPU`,
      value: `${expired} of ${reads}; ${(cpu * 100).toFixed(1)} % of a core (${refreshes} refreshes)`,
      target: '0; ≤ 25 %',
      met: expired === 0 && cpu <= 0.25,
    });
    clearInterval(sampler);
    results.mid_rss_mb = { idle: midIdleRss, peak: midPeakRss };
    rows.push({ figure: 'MID server RSS idle / under load', value: `${midIdleRss.toFixed(0)} / ${midPeakRss.toFixed(0)} MB`, target: '≤ 80 MB idle', met: midIdleRss <= 80 });
    rows.push({ figure: 'enqueue-to-claim wake-up p50 / p99', value: `${w50.toFixed(2)} / ${w99.toFixed(2)} ms`, target: '≤ 1 / ≤ 5 ms', met: w50 <= 1 && w99 <= 5 });
  } finally {
    mid?.kill('SIGTERM');
    instance.kill('SIGTERM');
    await pool.close();
    await endpoint.close();
    await sleep(500);
    fs.rmSync(data, { recursive: true, force: true });
  }

  const meta = { date: new Date().toISOString(), quick, cores: os.cpus().length, cpu: os.cpus()[0]?.model, node: process.version };
  fs.writeFileSync(path.join(ROOT, 'bench', 'results.json'), JSON.stringify({ ...meta, rows, results }, null, 2) + '\n');
  const w = [Math.max(...rows.map((r) => r.figure.length)), Math.max(...rows.map((r) => r.value.length)), Math.max(...rows.map((r) => r.target.length))];
  console.log(`\ntokenrelay bench — ${meta.date}, ${meta.cores} cores (${meta.cpu}), Node ${meta.node}${quick ? ', --quick' : ''}\n`);
  console.log(`| ${'figure'.padEnd(w[0]!)} | ${'value'.padEnd(w[1]!)} | ${'target'.padEnd(w[2]!)} | met? |`);
  console.log(`|${'-'.repeat(w[0]! + 2)}|${'-'.repeat(w[1]! + 2)}|${'-'.repeat(w[2]! + 2)}|------|`);
  for (const r of rows) console.log(`| ${r.figure.padEnd(w[0]!)} | ${r.value.padEnd(w[1]!)} | ${r.target.padEnd(w[2]!)} | ${r.met === null ? '  - ' : r.met ? 'yes ' : 'no  '} |`);
  console.log('\nwritten: bench/results.json');
}

const avg = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

async function runPool(concurrency: number, n: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, async () => {
    while (next < n) await fn(next++);
  }));
}

/** Completed operations per second with `c` workers for `ms`. */
async function throughput(c: number, ms: number, op: (worker: number) => Promise<void>): Promise<number> {
  const until = performance.now() + ms;
  let done = 0;
  const start = performance.now();
  await Promise.all(Array.from({ length: c }, async (_, w) => {
    while (performance.now() < until) {
      await op(w);
      done++;
    }
  }));
  return done / ((performance.now() - start) / 1000);
}

/** Requests/s from `wrk -t1 -c64`, or null when wrk is not installed (apt-get install wrk). */
function wrkReads(url: string, seconds: number): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('wrk', ['-t1', '-c64', `-d${seconds}s`, '-H', `Authorization: Bearer ${ADMIN}`, url], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', () => resolve(null));
    child.on('close', (code) => {
      const rps = Number(out.match(/Requests\/sec:\s+([\d.]+)/)?.[1]);
      const non2xx = Number(out.match(/Non-2xx or 3xx responses:\s+(\d+)/)?.[1] ?? 0);
      resolve(code === 0 && Number.isFinite(rps) && non2xx === 0 ? rps : null);
    });
  });
}

/** The instance's enqueue-to-claim histogram, from /metrics (cumulative buckets). */
async function claimHistogram(base: string): Promise<Array<{ le: number; count: number }>> {
  const text = await (await fetch(`${base}/metrics`)).text();
  const out: Array<{ le: number; count: number }> = [];
  for (const m of text.matchAll(/^tokenrelay_ecc_claim_wait_seconds_bucket\{le="([^"]+)"\} (\d+)$/gm)) {
    out.push({ le: m[1] === '+Inf' ? Infinity : Number(m[1]), count: Number(m[2]) });
  }
  return out;
}

main().catch((err: Error) => {
  console.error(`bench failed: ${err.stack ?? err.message}`);
  process.exit(1);
});
