/**
 * The ECC queue's state machine.
 *
 * Output records (instance → MID server):
 *   ready ──claim──► processing ──input posted by the holder──► processed
 *     │                  │   └──input carrying an error────────► error
 *     │                  └──lease ran out: attempts left ► ready; none left ► error
 *     └──nobody claimed it in time, or its MID server was invalidated ──► error
 *
 * Input records (MID server → instance) are written `ready`; the instance side that waits for
 * them (the "sensor") moves them to `processed`, or `error` when they carry one.
 *
 * Every transition is a compare-and-set on (id, state[, claimed_by]), so two parties never both
 * win: a MID server that lost its lease cannot complete a record another one now holds.
 */
export const TOPIC_REST_PROBE = 'RESTProbe';

export const agentName = (midName: string): string => `mid.server.${midName}`;
export const midNameOf = (agent: string): string => agent.replace(/^mid\.server\./, '');

/** Priorities as the reference: 0 interactive, 1 expedited, 2 standard. Token requests and REST steps are interactive. */
export const PRIORITY_INTERACTIVE = 0;
