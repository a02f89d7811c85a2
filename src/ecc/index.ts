export * from './states.js';
export * from './records.js';
export * from './claim.js';
export * from './complete.js';
export * from './reaper.js';
export * from './wakeups.js';
