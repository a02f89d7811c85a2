/**
 * A small Prometheus registry: counters kept in memory, gauges read at scrape time. Text
 * format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/).
 */
export interface Metrics {
  inc(name: string, labels?: Record<string, string>, by?: number): void;
  render(gauges: Array<{ name: string; help: string; values: Array<[Record<string, string>, number]> }>): string;
}

const help: Record<string, string> = {
  tokenrelay_token_requests_total: 'Token endpoint requests by outcome and path (direct or mid).',
  tokenrelay_ecc_outputs_total: 'ECC output records written.',
  tokenrelay_ecc_inputs_total: 'ECC input records accepted from MID servers.',
  tokenrelay_access_token_reads_total: 'Access token reads through the API, by source (stored or fetched).',
};

const fmt = (labels: Record<string, string>) => {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/["\\\n]/g, '_')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
};

export function createMetrics(): Metrics {
  const counters = new Map<string, Map<string, number>>();
  return {
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
      for (const g of gauges) {
        out.push(`# HELP ${g.name} ${g.help}`, `# TYPE ${g.name} gauge`);
        for (const [labels, v] of g.values) out.push(`${g.name}${fmt(labels)} ${v}`);
      }
      return out.join('\n') + '\n';
    },
  };
}
