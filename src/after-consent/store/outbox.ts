import { lstatSync, renameSync } from 'node:fs';
import { UUID_PATTERN } from '../../shared/uuid.ts';
import { errorCode, listNames, readOwnFile, removeFile, workingIn, writeNew } from './files.ts';
import { openFolder, type StateDir } from './state-dir.ts';

/**
 * The outbox: one file per event, moved between folders by rename (Maildir's protocol), so no
 * lock is ever needed and a crash at any point leaves every event whole in exactly one place.
 *
 *   tmp/      being written; a file here is not an event yet
 *   new/      waiting to be sent, oldest first by name (`<epoch ms>-<uuid>.json`); an event stored
 *             unfinished (--background, or held for the notice) is `<epoch ms>-<uuid>.unfinished.json`
 *             until a run finishes it with what is collected then (finishWaiting)
 *   cur/      claimed by one sender: `<name>.<pid>-<claimed ms>`; sent -> deleted, failed -> back to new/
 *   corrupt/  files that were not a whole event, set aside for a person to look at
 *
 * A claim is the rename new/ -> cur/: of any number of racing senders exactly one succeeds. A
 * claim whose sender is gone (kill -9, power loss) goes back to new/ on the next run. Every name
 * is one this module generated and matches its pattern; nothing else in a folder is touched.
 * Each folder is checked like the state dir (ours, writable by nobody else, no symlink) and
 * reached through its opened directory.
 */
export interface Outbox {
  folders: Record<Folder, string>;
  uid: number | undefined;
}

/** An event with the text it is stored as: a sink may send that text as it is instead of writing the event again. */
export interface Stored {
  event: OutboxEvent;
  text: string;
}

export interface Item extends Stored {
  /** Its file's name in cur/, claimed by us. */
  claim: string;
  name: string;
  /** The stored text's size in bytes. */
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
/**
 * Entries one run reads from a folder, and abandoned claims it takes back, at most: whatever a
 * folder holds (a flood of stale claims, files planted by hand), a run's work stays bounded;
 * the rest is left to the runs after it.
 */
const MAX_LISTED = 5000;
const MAX_RECOVERED = 1000;
const FOLDERS = ['tmp', 'new', 'cur', 'corrupt'] as const;
type Folder = (typeof FOLDERS)[number];
const UUID_SOURCE = UUID_PATTERN.source.replace(/^\^|\$$/g, '');
const EVENT_NAME = `\\d{13}-${UUID_SOURCE}(?:\\.unfinished)?\\.json`;
const ITEM_NAME = new RegExp(`^${EVENT_NAME}$`);
const UNFINISHED = /\.unfinished\.json$/;
const CLAIM = new RegExp(`^(${EVENT_NAME})\\.(\\d{1,10})-(\\d{1,16})$`);
const TEMPORARY = new RegExp(`^${EVENT_NAME}\\.\\d{1,10}\\.[0-9a-z]{1,16}$`);

/** The outbox of an opened state dir, its folders made when `create`; else why it cannot be used. */
export function openOutbox(stateDir: StateDir, create: boolean): Outbox | string {
  const outbox = openFolder(stateDir, 'outbox', create);
  if (typeof outbox === 'string') return outbox;
  const folders = {} as Record<Folder, string>;
  for (const name of FOLDERS) {
    const folder = openFolder(outbox, name, create);
    if (typeof folder === 'string') return folder;
    folders[name] = folder.dir;
  }
  return { folders, uid: stateDir.uid };
}

/** The largest time a name holds (13 digits, in 2286): a clock far ahead must not make a name no listing matches. */
const LATEST_NAMED_MS = 9_999_999_999_999;

/** `<ms>-<uuid>.json`, or `.unfinished.json` for an event still to be finished (it has `collect`). */
export function itemName(event: Pick<OutboxEvent, 'uuid' | 'timestamp' | 'collect'>): string {
  if (!UUID_PATTERN.test(event.uuid)) throw new Error('an event of ours has a uuid of ours');
  const ms = Date.parse(event.timestamp);
  return `${String(Number.isFinite(ms) && ms >= 0 ? Math.min(ms, LATEST_NAMED_MS) : 0).padStart(13, '0')}-${event.uuid}${event.collect === undefined ? '' : '.unfinished'}.json`;
}

function folder(outbox: Outbox, name: Folder): string {
  return outbox.folders[name];
}

/**
 * `name` in a folder: the folder is a normalized path and the name one of ours (no slash, no
 * dot segment), so a plain join is path.join's result without its normalizing, which a flush
 * of a thousand events would pay some four thousand times.
 */
function inFolder(outbox: Outbox, name: Folder, file: string): string {
  return `${outbox.folders[name]}/${file}`;
}

function list(dir: string, pattern: RegExp): string[] {
  return listNames(dir, pattern, MAX_LISTED);
}

function writeTmp(outbox: Outbox, name: string, body: string): string {
  const temporary = inFolder(outbox, 'tmp', `${name}.${process.pid}.${Math.random().toString(36).slice(2)}`);
  writeNew(temporary, body);
  return temporary;
}

/** Queues an event: whole in new/ or (throws) not at all. */
export function store(outbox: Outbox, event: OutboxEvent, body = JSON.stringify(event)): string {
  const name = itemName(event);
  const temporary = writeTmp(outbox, name, body);
  const target = inFolder(outbox, 'new', name);
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
  const claim = claimName(name, pid, now);
  renameSync(temporary, inFolder(outbox, 'cur', claim));
  return { claim, name, event, text: body, bytes: Buffer.byteLength(body) };
}

/**
 * A claimed unfinished event, finished: its whole content replaced in its claim (one rename, so a
 * crash leaves the old or the new whole), then waiting under its finished name. Returns false
 * when the claim was lost meanwhile.
 */
export function finishClaimed(outbox: Outbox, item: Item, finished: OutboxEvent): boolean {
  const name = itemName(finished);
  try {
    const file = inFolder(outbox, 'cur', item.claim);
    renameSync(writeTmp(outbox, name, JSON.stringify(finished)), file);
    renameSync(file, inFolder(outbox, 'new', name));
    return true;
  } catch {
    return false;
  }
}

/** A clock before 1970 still makes a name the claim pattern matches (and recovery takes back at once). */
function claimName(name: string, pid: number, now: number): string {
  return `${name}.${pid}-${Math.max(0, Math.floor(now))}`;
}

/** Sent, or refused for good: gone. */
export function removeClaimed(outbox: Outbox, items: readonly Pick<Item, 'claim'>[]): void {
  workingIn(folder(outbox, 'cur'), items.length, (inCur) => {
    for (const { claim } of items) removeFile(inCur(claim));
  });
}

/** Not sent this time: back in new/ for a later run. False when the claim was lost meanwhile. */
export function release(outbox: Outbox, item: Pick<Item, 'claim' | 'name'>): boolean {
  try {
    renameSync(inFolder(outbox, 'cur', item.claim), inFolder(outbox, 'new', item.name));
    return true;
  } catch {
    return false;
  }
}

/** Every event waiting, finished or not (what the caps and status count). */
export function waitingNames(outbox: Outbox): string[] {
  return list(folder(outbox, 'new'), ITEM_NAME);
}

/** Events not sent yet: waiting in new/, or claimed in cur/ (being sent, or by a sender that died, to be taken back). */
export function unsentCount(outbox: Outbox): number {
  return waitingNames(outbox).length + list(folder(outbox, 'cur'), CLAIM).length;
}

/** What a claim took: the items, the files set aside as not whole events, and why none could be claimed (an errno code). */
export interface Claim {
  items: Item[];
  corrupt: number;
  unclaimable?: string;
}

/**
 * Claims up to `max` waiting events, oldest first, and reads them: the finished ones (to send),
 * or with `unfinished` the ones still to be finished. A file that is not a whole event (torn by a
 * full disk, edited by hand, planted) is set aside in corrupt/ and counted.
 */
export function claimWaiting(outbox: Outbox, pid: number, now: number, max: number, unfinished = false): Claim {
  return claimNames(outbox, waitingNames(outbox).filter((name) => UNFINISHED.test(name) === unfinished), pid, now, max);
}

/**
 * The caps, then a claim, for a sender that may take all that waits at once. When every waiting
 * event is finished and one claim takes them all, the count cap holds already and the bytes cap
 * is applied to the sizes the claim read: the oldest claimed beyond it are dropped, and no file
 * is looked at twice. Otherwise capOutbox looks at each file first. `dropped`: what the caps took.
 */
export function claimWithinCaps(outbox: Outbox, pid: number, now: number, max: number): Claim & { dropped: number } {
  const names = waitingNames(outbox);
  if (names.length > Math.min(max, OUTBOX_MAX_EVENTS) || names.some((name) => UNFINISHED.test(name))) {
    const dropped = capOutbox(outbox);
    return { ...claimWaiting(outbox, pid, now, max), dropped };
  }
  const claim = claimNames(outbox, names, pid, now, max);
  let bytes = claim.items.reduce((sum, item) => sum + item.bytes, 0);
  let over = 0;
  while (bytes > OUTBOX_MAX_BYTES) bytes -= claim.items[over++].bytes;
  const dropped = claim.items.splice(0, over).filter((item) => removeFile(inFolder(outbox, 'cur', item.claim))).length;
  return { ...claim, dropped };
}

function claimNames(outbox: Outbox, names: readonly string[], pid: number, now: number, max: number): Claim {
  return workingIn(folder(outbox, 'cur'), Math.min(names.length, max), (inCur) => {
    const items: Item[] = [];
    let corrupt = 0;
    let unclaimable: string | undefined;
    for (const name of names) {
      if (items.length >= max) break;
      const claim = claimName(name, pid, now);
      try {
        renameSync(inFolder(outbox, 'new', name), inCur(claim));
      } catch (error) {
        // ENOENT: another sender claimed it first; anything else (EROFS, EACCES): none can be claimed.
        if (errorCode(error) !== 'ENOENT') unclaimable = errorCode(error);
        continue;
      }
      try {
        const text = readOwnFile(inCur(claim), outbox.uid);
        items.push({ claim, name, event: parseEvent(text), text, bytes: Buffer.byteLength(text) });
      } catch {
        corrupt++;
        try {
          renameSync(inCur(claim), inFolder(outbox, 'corrupt', name));
        } catch {
          removeFile(inCur(claim));
        }
      }
    }
    return { items, corrupt, ...(unclaimable === undefined ? {} : { unclaimable }) };
  });
}

function parseEvent(text: string): OutboxEvent {
  const event = JSON.parse(text);
  const valid =
    typeof event === 'object' && event !== null &&
    typeof event.api_key === 'string' && typeof event.event === 'string' && typeof event.uuid === 'string' && UUID_PATTERN.test(event.uuid) &&
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
  let recovered = 0;
  for (const claimed of list(folder(outbox, 'cur'), CLAIM)) {
    if (recovered >= MAX_RECOVERED) break;
    const [, name, pid, at] = CLAIM.exec(claimed) as RegExpExecArray;
    const age = now - Number(at);
    if (isAlive(Number(pid)) && age < ABANDONED_MS && age > -ABANDONED_MS) continue;
    if (release(outbox, { claim: claimed, name })) recovered++;
  }
  for (const name of list(folder(outbox, 'tmp'), TEMPORARY)) {
    const file = inFolder(outbox, 'tmp', name);
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
  const sizes = names.map((name) => {
    try {
      return lstatSync(inFolder(outbox, 'new', name)).size;
    } catch {
      return 0;
    }
  });
  let bytes = sizes.reduce((sum, size) => sum + size, 0);
  let excess = Math.max(0, names.length - OUTBOX_MAX_EVENTS);
  for (let i = 0; i < excess; i++) bytes -= sizes[i];
  while (excess < names.length && bytes > OUTBOX_MAX_BYTES) bytes -= sizes[excess++];
  let dropped = 0;
  for (const name of names.slice(0, excess)) if (removeFile(inFolder(outbox, 'new', name))) dropped++;
  return dropped;
}

/** Consent withdrawn: every event not yet sent is deleted. Returns how many. */
export function clearOutbox(outbox: Outbox): number {
  let cleared = 0;
  const owned = { new: ITEM_NAME, cur: CLAIM, tmp: TEMPORARY };
  for (const name of ['new', 'cur', 'tmp'] as const) {
    for (const entry of list(folder(outbox, name), owned[name])) if (removeFile(inFolder(outbox, name, entry))) cleared += name === 'tmp' ? 0 : 1;
  }
  return cleared;
}
