import { Command } from 'commander';
import { VERSION } from '../core/version.js';

const program = new Command()
  .name('tokenrelay')
  .description('OAuth token fetching through outbound-only MID servers.')
  .version(VERSION);

program
  .command('up')
  .description('instance plus one MID server named "local", enrolled and validated, on the embedded SQLite store')
  .option('--port <port>', 'HTTP port (TOKENRELAY_PORT, default 8080)')
  .option('--host <host>', 'listen address (TOKENRELAY_HOST, default 127.0.0.1)')
  .option('--data <dir>', 'data dir (TOKENRELAY_DATA_DIR, default ./data)')
  .action(async (opts) => (await import('./commands.js')).runUp(opts));

program
  .command('instance')
  .description('the instance alone')
  .option('--port <port>', 'HTTP port (TOKENRELAY_PORT, default 8080)')
  .option('--host <host>', 'listen address (TOKENRELAY_HOST, default 0.0.0.0)')
  .option('--data <dir>', 'data dir (TOKENRELAY_DATA_DIR, default ./data)')
  .action(async (opts) => (await import('./commands.js')).runInstance(opts));

program
  .command('mid')
  .description('a MID server: enrolls once with the key, keeps its identity in the data dir, then works')
  .requiredOption('--instance <url>', 'the instance URL, e.g. https://tokenrelay.example.com')
  .requiredOption('--name <name>', 'this MID server\'s name, unique on the instance')
  .option('--enroll <key>', 'single-use enrollment key (first start only)')
  .option('--data <dir>', 'data dir for the identity (default ./mid-data)', './mid-data')
  .option('--capabilities <list>', 'comma-separated capabilities (default REST)', 'REST')
  .option('--max-concurrent <n>', 'RESTProbes run at once (default 25)')
  .option('--allow-hosts <patterns>', 'only these targets: host, *.domain, host:port, address or CIDR, comma-separated (default: any)')
  .option('--ca-file <pem>', 'extra trusted CA certificates (PEM) for token endpoints and the instance')
  // Each command loads only its own modules: a MID server never loads Fastify or SQLite.
  .action(async (opts) => (await import('./mid-command.js')).runMid(opts));

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(`tokenrelay: ${err.message}`);
  process.exit(1);
});
