/**
 * A small Prometheus registry: counters kept in memory, gauges read at scrape time. Text
 * format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  /** Records a value (seconds) into a histogram with fixed buckets. */
  observe(name: string, seconds: number): void;
  render(gauges: Array<{ name: string; help: string; values: Array<[Record<string, string>, number]> }>): string;
}

const help: Record<string, string> = {
  tokenrelay_token_requests_total: 'Token endpoint requests by outcome and path (direct or mid).',
  tokenrelay_ecc_outputs_total: 'ECC output records written.',
  tokenrelay_ecc_inputs_total: 'ECC input records accepted from MID servers.',
  tokenrelay_access_token_reads_total: 'Access token reads through the API, by source (stored or fetched).',
  tokenrelay_ecc_claim_wait_seconds: 'Time from writing an ECC output record to a MID server claiming it (records enqueued by this process).',
};

const BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

const fmt = (labels: Record<string, string>) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

export function createMetrics(): Metrics {
  const counters = new Map<string, Map<string, number>>();
  const histograms = new Map<string, { counts: number[]; sum: number; count: number }>();
  return {
    observe(name, seconds) {
      let h = histograms.get(name);
      if (!h) histograms.set(name, (h = { counts: BUCKETS.map(() => 0), sum: 0, count: 0 }));
      for (let i = 0; i < BUCKETS.length; i++) if (seconds <= BUCKETS[i]!) h.counts[i]!++;
      h.sum += seconds;
      h.count++;
    },
    inc(name, labels = {}, by = 1) {
      let series = counters.get(name);
      if (!series) counters.set(name, (series = new Map()));
      const key = fmt(labels);
      series.set(key, (series.get(key) ?? 0) + by);
    },
    render(gauges) {
      const out: string[] = [];
      for (const [name, series] of counters) {
        out.push(`# HELP ${name} ${help[name] ?? name}`, `# TYPE ${name} counter`);
        for (const [k, v] of series) out.push(`${name}${k} ${v}`);
      }
      for (const [name, h] of histograms) {
        out.push(`# HELP ${name} ${help[name] ?? name}`, `# TYPE ${name} histogram`);
        BUCKETS.forEach((b, i) => out.push(`${name}_bucket{le="${b}"} ${h.counts[i]}`));
        out.push(`${name}_bucket{le="+Inf"} ${h.count}`, `${name}_sum ${h.sum}`, `${name}_count ${h.count}`);
      }
      for (const g of gauges) {
        out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const [labels, v] of g.values) out.push(`${g.name}${fmt(labels)} ${v}`);
      }
      return out.join('\n') + '\n';
    },
  };
}
