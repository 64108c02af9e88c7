import { existsSync } from 'node:fs';
import path from 'node:path';
import { readText } from './detect/fs.ts';
import { ensurePrivateDir, readJson, readNoFollow, writeQuietly } from '../store/state-dir.ts';
import { uuidV4FromBytes } from '../uuid.ts';

const MACHINE_ID = /^[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DISTINCT_ID_FILE = 'distinct-id';
const DERIVED_ID_FILE = 'distinct-id-derived.json';

export interface IdentityInput {
  root: string;
  product: string;
  stateDir: string;
  /** false under --dry-run: a new random id is shown but not kept. */
  persist: boolean;
  /** Our uid: the state dir must be ours before anything is written to it. */
  uid: number | undefined;
  uuid: () => string;
}

/**
 * An id for this product on this machine, as systemd derives application-specific ids: an
 * HMAC-SHA256 of /etc/machine-id keyed by the product, shaped as a UUID v4. Stable across
 * reinstalls, yet neither the raw machine id nor another vendor's id can be derived from it.
 * Without a machine id (an empty one in a container image does not count) a random id is kept
 * in the state dir, readable by its owner only.
 */
export function distinctId(input: IdentityInput): string {
  const machineId = readText(input.root, 'etc/machine-id')?.trim();
  if (machineId && MACHINE_ID.test(machineId)) return cachedAppSpecificId(machineId, input);
  return storedRandomId(input);
}

/**
 * Loading node:crypto costs every run ~4 ms, so the derived id is kept beside the queue with the
 * machine id and product it was derived from, and derived again only when either changes. The
 * local copy of the machine id is no secret (/etc/machine-id is world-readable); it never
 * leaves the host.
 */
function cachedAppSpecificId(machineId: string, { product, stateDir, persist, uid }: IdentityInput): string {
  const file = path.join(stateDir, DERIVED_ID_FILE);
  const cached = readJson(file);
  if (cached?.machine_id === machineId && cached.product === product && typeof cached.id === 'string' && UUID.test(cached.id)) return cached.id;
  const id = appSpecificId(machineId, product);
  // Not writable: derived again next time.
  if (persist && ensurePrivateDir(stateDir, uid)) writeQuietly(file, JSON.stringify({ machine_id: machineId, product, id }));
  return id;
}

/** Where distinct_id comes from on this machine, for `status`. */
export function identitySource(root: string, stateDir: string): string {
  const machineId = readText(root, 'etc/machine-id')?.trim();
  if (machineId && MACHINE_ID.test(machineId)) return `${path.join(root, 'etc/machine-id')} (only a keyed hash of it is sent)`;
  const stored = path.join(stateDir, DISTINCT_ID_FILE);
  return existsSync(stored) ? `${stored} (a random id)` : `none yet: a random id will be kept in ${stored}`;
}

export function appSpecificId(machineId: string, product: string): string {
  const { createHmac } = require('node:crypto') as typeof import('node:crypto');
  return uuidV4FromBytes(createHmac('sha256', product).update(machineId).digest());
}

function storedRandomId({ stateDir, persist, uuid, uid }: IdentityInput): string {
  const file = path.join(stateDir, DISTINCT_ID_FILE);
  try {
    const stored = readNoFollow(file).trim();
    if (UUID.test(stored)) return stored;
  } catch {
    // none stored yet, or unreadable: make one below
  }
  const id = uuid();
  // A read-only or full disk costs only stability of the id, never the event.
  if (persist && ensurePrivateDir(stateDir, uid)) writeQuietly(file, `${id}\n`);
  return id;
}
