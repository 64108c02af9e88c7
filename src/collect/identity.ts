import path from 'node:path';
import { uuidV4FromBytes } from '../config/uuid.ts';
import { readText } from './detect/fs.ts';

const MACHINE_ID = /^[0-9a-f]{32}$/;

/**
 * An id for this product on this machine, as systemd derives application-specific ids: an
 * HMAC-SHA256 of /etc/machine-id keyed by the product, shaped as a UUID v4. Stable across
 * reinstalls, yet neither the raw machine id nor another vendor's id can be derived from it, and
 * no copy of the machine id is kept anywhere. Without a machine id (an empty one in a container
 * image does not count) the random id kept in the state file is used, made on first need.
 */
export function distinctId(root: string, product: string, storedRandomId: () => string): string {
  const machineId = readMachineId(root);
  return machineId ? appSpecificId(machineId, product) : storedRandomId();
}

function readMachineId(root: string): string | undefined {
  const machineId = readText(root, 'etc/machine-id')?.trim();
  return machineId && MACHINE_ID.test(machineId) ? machineId : undefined;
}

/** Where distinct_id comes from on this machine, for `status`. */
export function identitySource(root: string, stateFile: string): string {
  if (readMachineId(root)) return `${path.join(root, 'etc/machine-id')} (only a keyed hash of it is sent)`;
  return `a random id kept in ${stateFile}`;
}

export function appSpecificId(machineId: string, product: string): string {
  // Loaded on first use: a --background caller or a dry run would pay ~7 ms just to load it.
  const { createHmac } = require('node:crypto') as typeof import('node:crypto');
  return uuidV4FromBytes(createHmac('sha256', product).update(machineId).digest());
}
