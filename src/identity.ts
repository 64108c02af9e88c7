import { createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { readText } from './detect/fs.ts';
import { ensurePrivateDir, readNoFollow, writeAtomically } from './state-dir.ts';

const MACHINE_ID = /^[0-9a-f]{32}$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const DISTINCT_ID_FILE = 'distinct-id';

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
  if (machineId && MACHINE_ID.test(machineId)) return appSpecificId(machineId, input.product);
  return storedRandomId(input);
}

/** Where distinct_id comes from on this machine, for `status`. */
export function identitySource(root: string, stateDir: string): string {
  const machineId = readText(root, 'etc/machine-id')?.trim();
  if (machineId && MACHINE_ID.test(machineId)) return `${path.join(root, 'etc/machine-id')} (only a keyed hash of it is sent)`;
  const stored = path.join(stateDir, DISTINCT_ID_FILE);
  return existsSync(stored) ? `${stored} (a random id)` : `none yet: a random id will be kept in ${stored}`;
}

export function appSpecificId(machineId: string, product: string): string {
  const bytes = createHmac('sha256', product).update(machineId).digest().subarray(0, 16);
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
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
  if (persist && ensurePrivateDir(stateDir, uid)) {
    try {
      writeAtomically(file, `${id}\n`);
    } catch {
      // A read-only or full disk costs only stability of the id, never the event.
    }
  }
  return id;
}
