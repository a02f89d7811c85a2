import { EventEmitter } from 'node:events';

/**
 * In-process wake-ups: an enqueue wakes the long-poll of its agent at once; an input wakes
 * whoever waits for the output it answers. Waiters still re-read the database, and poll it
 * on a floor interval, so a missed notification only delays, never loses.
 */
/** An input record handed straight to a waiter in this process (it is in the database too). */
export interface InputHandoff {
  inputId: string;
  agent: string;
  payload: string;
  errorString: string | null;
}

export interface Wakeups {
  onAgent(agent: string, fn: () => void): () => void;
  wakeAgent(agent: string): void;
  onRecord(outputId: string, fn: (handoff?: InputHandoff) => void): () => void;
  /** Is someone in this process waiting for this output's answer? */
  hasWaiter(outputId: string): boolean;
  wakeRecord(outputId: string, handoff?: InputHandoff): void;
  /** Wake every waiter (shutdown). */
  wakeAll(): void;
  /** Enqueue time (performance.now()) of a record, for the enqueue-to-claim latency metric. */
  noteEnqueued(id: string): void;
  /** ms since the record was enqueued in this process, once; undefined if unknown. */
  takeEnqueueAge(id: string): number | undefined;
}

export function createWakeups(): Wakeups {
  const ee = new EventEmitter();
  ee.setMaxListeners(0);
  // Bounded: records claimed elsewhere or never are forgotten when the map is full.
  const enqueued = new Map<string, number>();
  const on = (event: string, fn: (arg?: InputHandoff) => void) => {
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
    hasWaiter: (id) => ee.listenerCount(`record:${id}`) > 0,
    wakeRecord: (id, handoff) => void ee.emit(`record:${id}`, handoff),
    wakeAll: () => void ee.emit('*'),
    noteEnqueued(id) {
      if (enqueued.size >= 50_000) enqueued.delete(enqueued.keys().next().value!);
      enqueued.set(id, performance.now());
    },
    takeEnqueueAge(id) {
      const t = enqueued.get(id);
      if (t === undefined) return undefined;
      enqueued.delete(id);
      return performance.now() - t;
    },
  };
}
