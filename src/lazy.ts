/**
 * Everything a run needs only past the opt-out check, behind one door: run.ts imports this
 * module dynamically, and the build ships it as a string compiled on first use, so an opted-out
 * run neither evaluates nor even compiles detection, crypto, HTTP or queue code.
 */
export { flushQueue } from './delivery.ts';
export { identitySource } from './identity.ts';
export { formatLedger, readLedger } from './ledger.ts';
export { buildPayload, pendingCounts, report } from './report.ts';
export { clearQueue, openSpool, queuedFiles, spoolAt } from './spool.ts';
