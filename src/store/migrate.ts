import { lstatSync, readdirSync, renameSync, rmdirSync } from 'node:fs';
import path from 'node:path';
import { readOwnFile, removeFile } from './files.ts';
import { ABANDONED_MS, itemName, type Outbox } from './outbox.ts';
import { updateState, type State } from './state.ts';
import type { StateDir } from './state-dir.ts';

/**
 * State dirs written by 0.1 (a `queue/` dir and a file per counter) are taken over, not lost:
 * queued events move to the outbox, the random id, the crash-loop windows, the drop count and
 * the notice move into state.json. The old back-off is dropped (it was not per endpoint), and so
 * is the derived-id cache, which held a copy of the raw machine id.
 */
const LEGACY_FILES = ['queue-dropped', 'delivery-backoff.json', 'event-rate.json', 'distinct-id', 'distinct-id-derived.json', 'notice-shown', 'queue.lock'];

export function hasLegacyLayout(names: readonly string[]): boolean {
  return names.some((name) => name === 'queue' || LEGACY_FILES.includes(name) || name.startsWith('queue.lock.'));
}

function readLegacy(stateDir: StateDir, name: string): string | undefined {
  try {
    return readOwnFile(path.join(stateDir.dir, name), stateDir.uid);
  } catch {
    return undefined;
  }
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  try {
    const value = text === undefined ? undefined : JSON.parse(text);
    return typeof value === 'object' && value !== null ? value : undefined;
  } catch {
    return undefined;
  }
}

function migrateQueue(stateDir: StateDir, outbox: Outbox, now: number): void {
  const queue = path.join(stateDir.dir, 'queue');
  let names: string[];
  try {
    names = readdirSync(queue);
  } catch {
    return;
  }
  for (const name of names) {
    const file = path.join(queue, name);
    // A .pending file may belong to a 0.1 run still sending it; once it is older than any run, it is an event.
    const pending = name.endsWith('.pending');
    try {
      if (pending && now - lstatSync(file).mtimeMs < ABANDONED_MS) continue;
      if (name.endsWith('.json') || pending) {
        const event = parseJson(readOwnFile(file, stateDir.uid));
        const valid = event && typeof event.uuid === 'string' && typeof event.timestamp === 'string';
        renameSync(file, valid ? path.join(outbox.dir, 'new', itemName(event as { uuid: string; timestamp: string })) : path.join(outbox.dir, 'corrupt', name));
      } else if (name.endsWith('.corrupt')) {
        renameSync(file, path.join(outbox.dir, 'corrupt', name));
      } else {
        removeFile(file);
      }
    } catch {
      // left for the next run
    }
  }
  try {
    rmdirSync(queue);
  } catch {
    // not empty yet: a pending file of a live 0.1 run
  }
}

export function migrateLegacyLayout(stateDir: StateDir, outbox: Outbox, now: number): void {
  migrateQueue(stateDir, outbox, now);
  const dropped = Number(readLegacy(stateDir, 'queue-dropped')?.trim());
  const rate = parseJson(readLegacy(stateDir, 'event-rate.json'));
  const id = readLegacy(stateDir, 'distinct-id')?.trim();
  const notice = readLegacy(stateDir, 'notice-shown')?.trim();
  const migrated = updateState(stateDir, (state): State => ({
    ...state,
    distinctId: state.distinctId ?? (id && /^[0-9a-f-]{36}$/.test(id) ? id : undefined),
    noticeShown: state.noticeShown ?? (notice || undefined),
    dropped: state.dropped + (Number.isSafeInteger(dropped) && dropped > 0 ? dropped : 0),
    suppressed: state.suppressed + (Number.isSafeInteger(rate?.suppressed) ? (rate?.suppressed as number) : 0),
    windows: { ...((rate?.windows as State['windows']) ?? {}), ...state.windows },
  }));
  if (!migrated) return; // keep the old files until their contents have a new home
  for (const name of readdirSync(stateDir.dir)) if (LEGACY_FILES.includes(name) || name.startsWith('queue.lock.')) removeFile(path.join(stateDir.dir, name));
}
