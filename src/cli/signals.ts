import { isAppError } from '../core/errors.js';

/** First SIGTERM/SIGINT drains and exits 0; a second one exits at once. */
export function onSignals(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = (sig: string) => {
    if (stopping) {
      console.error(`tokenrelay: second ${sig}, exiting now`);
      process.exit(1);
    }
    stopping = true;
    stop().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`tokenrelay: error while stopping: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => handler('SIGTERM'));
  process.on('SIGINT', () => handler('SIGINT'));
}

/** Says what went wrong (a known error's message, else the stack) and exits 1. */
export function fail(err: unknown): never {
  const known = isAppError(err) || (err instanceof Error && err.name === 'IdentityError');
  console.error(`tokenrelay: ${known ? (err as Error).message : ((err as Error).stack ?? String(err))}`);
  process.exit(1);
}
