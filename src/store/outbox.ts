import { lstatSync, mkdirSync, readdirSync, renameSync } from 'node:fs';
import path from 'node:path';
import { readOwnFile, removeFile, writeNew } from './files.ts';
import type { StateDir } from './state-dir.ts';

/**
 * The outbox: one file per event, moved between folders by rename (Maildir's protocol), so no
 * lock is ever needed and a crash at any point leaves every event whole in exactly one place.
 *
 *   tmp/      being written; a file here is not an event yet
 *   new/      waiting to be sent, oldest first by name (`<epoch ms>-<uuid>.json`)
 *   cur/      claimed by one sender: `<name>.<pid>-<claimed ms>`; sent -> deleted, failed -> back to new/
 *   corrupt/  files that were not a whole event, set aside for a person to look at
 *
 * A claim is the rename new/ -> cur/: of any number of racing senders exactly one succeeds. A
 * claim whose sender is gone (kill -9, power loss) goes back to new/ on the next run.
 */
export interface Outbox {
  dir: string;
  uid: number | undefined;
}

export interface Item {
  /** Its file in cur/, claimed by us. */
  file: string;
  name: string;
  event: OutboxEvent;
  bytes: number;
}

/** A capture event, or (from --background) one still to be completed with what is collected. */
export interface OutboxEvent {
  api_key: string;
  event: string;
  uuid: string;
  timestamp: string;
  properties: Record<string, unknown>;
  /** Present until completed: the settings the event was created with. */
  collect?: { product_version?: string; root: string };
}

/** Past either cap the oldest events are dropped first, and the drop is counted. */
export const OUTBOX_MAX_EVENTS = 1000;
export const OUTBOX_MAX_BYTES = 4 * 1024 * 1024;
/** Longer than any run may last (the longest --timeout): a claim or temp file this old was abandoned. */
export const ABANDONED_MS = 11 * 60 * 1000;
const FOLDERS = ['tmp', 'new', 'cur', 'corrupt'] as const;
const ITEM_NAME = /^\d{13}-[0-9a-f-]{36}\.json$/;
const CLAIM = /^(.+\.json)\.(\d+)-(\d+)$/;

/** The outbox of a usable state dir; undefined when its folders cannot be made. */
export function openOutbox(stateDir: StateDir): Outbox | undefined {
  const dir = path.join(stateDir.dir, 'outbox');
  try {
    for (const folder of FOLDERS) mkdirSync(path.join(dir, folder), { recursive: true, mode: 0o700 });
    return { dir, uid: stateDir.uid };
  } catch {
    return undefined;
  }
}

/** The outbox as it is, for reading only (nothing is created). */
export function outboxAt(stateDir: StateDir): Outbox {
  return { dir: path.join(stateDir.dir, 'outbox'), uid: stateDir.uid };
}

export function itemName(event: { uuid: string; timestamp: string }): string {
  const ms = Date.parse(event.timestamp);
  return `${String(Number.isFinite(ms) && ms >= 0 ? ms : 0).padStart(13, '0')}-${event.uuid}.json`;
}

function folder(outbox: Outbox, name: (typeof FOLDERS)[number]): string {
  return path.join(outbox.dir, name);
}

function list(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}

function writeTmp(outbox: Outbox, name: string, body: string): string {
  const temporary = path.join(folder(outbox, 'tmp'), `${name}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeNew(temporary, body);
  return temporary;
}

/** Queues an event: whole in new/ or (throws) not at all. */
export function store(outbox: Outbox, event: OutboxEvent, body = JSON.stringify(event)): string {
  const name = itemName(event);
  const temporary = writeTmp(outbox, name, body);
  const target = path.join(folder(outbox, 'new'), name);
  renameSync(temporary, target);
  return target;
}

/**
 * Write-ahead for an event about to be sent: stored straight into cur/ as claimed by us, so a run
 * killed mid-send leaves it for the next run instead of losing it. Throws when it cannot be written.
 */
export function storeClaimed(outbox: Outbox, event: OutboxEvent, body: string, pid: number, now: number): Item {
  const name = itemName(event);
  const temporary = writeTmp(outbox, name, body);
  const file = path.join(folder(outbox, 'cur'), `${name}.${pid}-${now}`);
  renameSync(temporary, file);
  return { file, name, event, bytes: Buffer.byteLength(body) };
}

/** Sent, or refused for good: gone. */
export function settle(item: Item): void {
  removeFile(item.file);
}

/** Not sent this time: back in new/ for a later run. False when the claim was lost meanwhile. */
export function release(outbox: Outbox, item: Pick<Item, 'file' | 'name'>): boolean {
  try {
    renameSync(item.file, path.join(folder(outbox, 'new'), item.name));
    return true;
  } catch {
    return false;
  }
}

export function waitingNames(outbox: Outbox): string[] {
  return list(folder(outbox, 'new')).filter((name) => ITEM_NAME.test(name));
}

/**
 * Claims up to `max` waiting events, oldest first, and reads them. A file that is not a whole
 * event (torn by a full disk, edited by hand, planted) is set aside in corrupt/ and counted.
 */
export function claimWaiting(outbox: Outbox, pid: number, now: number, max: number): { items: Item[]; corrupt: number } {
  const items: Item[] = [];
  let corrupt = 0;
  for (const name of waitingNames(outbox)) {
    if (items.length >= max) break;
    const file = path.join(folder(outbox, 'cur'), `${name}.${pid}-${now}`);
    try {
      renameSync(path.join(folder(outbox, 'new'), name), file);
    } catch {
      continue; // another sender claimed it first
    }
    try {
      const text = readOwnFile(file, outbox.uid);
      items.push({ file, name, event: parseEvent(text), bytes: Buffer.byteLength(text) });
    } catch {
      corrupt++;
      try {
        renameSync(file, path.join(folder(outbox, 'corrupt'), name));
      } catch {
        removeFile(file);
      }
    }
  }
  return { items, corrupt };
}

function parseEvent(text: string): OutboxEvent {
  const event = JSON.parse(text);
  const valid =
    typeof event === 'object' && event !== null &&
    typeof event.api_key === 'string' && typeof event.event === 'string' && typeof event.uuid === 'string' &&
    typeof event.timestamp === 'string' && typeof event.properties === 'object' && event.properties !== null;
  if (!valid) throw new Error('not an event');
  return event;
}

/**
 * Claims whose sender is gone go back to new/; temp files older than any run are removed. A
 * sender is gone when its pid is no longer alive, or its claim is older than any run can last
 * (a reused pid), or the claim says it was made far in the future (a clock that jumped back).
 */
export function recoverAbandoned(outbox: Outbox, now: number, isAlive: (pid: number) => boolean): void {
  for (const claimed of list(folder(outbox, 'cur'))) {
    const match = CLAIM.exec(claimed);
    if (!match) continue;
    const [, name, pid, at] = match;
    const age = now - Number(at);
    if (isAlive(Number(pid)) && age < ABANDONED_MS && age > -ABANDONED_MS) continue;
    release(outbox, { file: path.join(folder(outbox, 'cur'), claimed), name });
  }
  for (const name of list(folder(outbox, 'tmp'))) {
    const file = path.join(folder(outbox, 'tmp'), name);
    try {
      if (Math.abs(now - lstatSync(file).mtimeMs) > ABANDONED_MS) removeFile(file);
    } catch {
      // gone already
    }
  }
}

/** Drops the oldest waiting events beyond the caps; returns how many. */
export function capOutbox(outbox: Outbox): number {
  const names = waitingNames(outbox);
  const dir = folder(outbox, 'new');
  const sizes = names.map((name) => {
    try {
      return lstatSync(path.join(dir, name)).size;
    } catch {
      return 0;
    }
  });
  let bytes = sizes.reduce((sum, size) => sum + size, 0);
  let excess = Math.max(0, names.length - OUTBOX_MAX_EVENTS);
  for (let i = 0; i < excess; i++) bytes -= sizes[i];
  while (excess < names.length && bytes > OUTBOX_MAX_BYTES) bytes -= sizes[excess++];
  let dropped = 0;
  for (const name of names.slice(0, excess)) if (removeFile(path.join(dir, name))) dropped++;
  return dropped;
}

/** Consent withdrawn: every event not yet sent is deleted. Returns how many. */
export function clearOutbox(outbox: Outbox): number {
  let cleared = 0;
  for (const name of ['new', 'cur', 'tmp'] as const) {
    for (const entry of list(folder(outbox, name))) if (removeFile(path.join(folder(outbox, name), entry))) cleared += name === 'tmp' ? 0 : 1;
  }
  return cleared;
}
