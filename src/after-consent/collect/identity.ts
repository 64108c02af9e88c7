import path from 'node:path';
import { uuidV4FromBytes } from '../../shared/uuid.ts';
import { readText } from './detect/fs.ts';

const MACHINE_ID = /^[0-9a-f]{32}$/;

/** What distinct_id is made from: the salt and the random id kept in the state file, each made on first need. */
export interface IdentitySources {
  salt: () => string;
  randomId: () => string;
}

/**
 * An id for this product on this machine, as systemd derives application-specific ids: an
 * HMAC-SHA256 of /etc/machine-id, shaped as a UUID v4, keyed by the product and a random salt
 * kept in the state dir. Neither the raw machine id nor another vendor's id can be derived from
 * it, and no copy of the machine id is kept anywhere. It is stable while the state dir is (a
 * reinstall that keeps it keeps the id); `disable` forgets the salt, so the id after a later
 * `enable` cannot be linked to the one before; a state dir copied to a clone with a new machine
 * id gives another id. Without a machine id (an empty one in a container image does not count)
 * the random id kept in the state file is used, which `disable` forgets too.
 */
export function distinctId(root: string, product: string, sources: IdentitySources): string {
  const machineId = readMachineId(root);
  return machineId ? appSpecificId(machineId, product, sources.salt()) : sources.randomId();
}

function readMachineId(root: string): string | undefined {
  const machineId = readText(root, 'etc/machine-id')?.trim();
  return machineId && MACHINE_ID.test(machineId) ? machineId : undefined;
}

/** Where distinct_id comes from on this machine, for `status`. */
export function identitySource(root: string, stateFile: string): string {
  if (readMachineId(root)) return `${path.join(root, 'etc/machine-id')} (only a keyed hash of it is sent; the key includes a salt kept in ${stateFile}, which disable forgets)`;
  return `a random id kept in ${stateFile}`;
}

export function appSpecificId(machineId: string, product: string, salt: string): string {
  // Loaded on first use: a --background caller or a dry run would pay ~7 ms just to load it.
  const { createHmac } = require('node:crypto') as typeof import('node:crypto');
  return uuidV4FromBytes(createHmac('sha256', `${product}\n${salt}`).update(machineId).digest());
}
