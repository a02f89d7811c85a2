import { EventEmitter } from 'node:events';

/**
 * In-process wake-ups: an enqueue wakes the long-poll of its agent at once; an input wakes
 * whoever waits for the output it answers. Waiters still re-read the database, and poll it
 * on a floor interval, so a missed notification only delays, never loses.
 */
export interface Wakeups {
  onAgent(agent: string, fn: () => void): () => void;
  wakeAgent(agent: string): void;
  onRecord(outputId: string, fn: () => void): () => void;
  wakeRecord(outputId: string): void;
  /** Wake every waiter (shutdown). */
  wakeAll(): void;
}

export function createWakeups(): Wakeups {
  const ee = new EventEmitter();
  ee.setMaxListeners(0);
  const on = (event: string, fn: () => void) => {
    ee.on(event, fn);
    ee.on('*', fn);
    return () => {
      ee.off(event, fn);
      ee.off('*', fn);
    };
  };
  return {
    onAgent: (agent, fn) => on(`agent:${agent}`, fn),
    wakeAgent: (agent) => void ee.emit(`agent:${agent}`),
    onRecord: (id, fn) => on(`record:${id}`, fn),
    wakeRecord: (id) => void ee.emit(`record:${id}`),
    wakeAll: () => void ee.emit('*'),
  };
}
