import path from 'node:path';
import { errorCode, listNames, removeFile, writeNew } from './files.ts';

/**
 * The crash-loop limit, held under any concurrency: each event admitted in a clock hour claims
 * one slot file `limits/<event>.<hour>.<n>` with O_EXCL, n below the hourly limit. Of any number
 * of racing runs exactly one gets each slot, so sixty daemons crashing at once send at most the
 * limit, with no lock and no read-modify-write. Slots of hours gone by are removed, a bounded
 * number per run.
 */
const HOUR_MS = 60 * 60 * 1000;
const SLOT = /^([a-z][a-z-]{0,39})\.(\d{1,12})\.(\d{1,4})$/;
/** Entries one run reads, and old slots it removes, at most. */
const MAX_LISTED = 5000;
const MAX_SWEPT = 1000;

/**
 * Claims a slot for one `event` now, if the hour has one left. Returns whether it was admitted;
 * throws when the folder cannot be written (then no limit could hold).
 */
export function claimSlot(dir: string, event: string, now: number, perHour: number): boolean {
  // A clock before 1970 counts as hour 0: its events still meet the limit.
  const hour = Math.floor(Math.max(0, now) / HOUR_MS);
  const names = listNames(dir, SLOT, MAX_LISTED);
  let swept = 0;
  for (const name of names) {
    const slotHour = Number((SLOT.exec(name) as RegExpExecArray)[2]);
    if (slotHour !== hour && swept < MAX_SWEPT && removeFile(path.join(dir, name))) swept++;
  }
  const taken = names.filter((name) => name.startsWith(`${event}.${hour}.`)).length;
  for (let n = taken; n < perHour; n++) {
    try {
      writeNew(path.join(dir, `${event}.${hour}.${n}`), '');
      return true;
    } catch (error) {
      if (errorCode(error) !== 'EEXIST') throw error;
    }
  }
  return false;
}
