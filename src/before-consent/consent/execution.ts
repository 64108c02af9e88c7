import { asVersion8, isVersion8 } from '../../shared/uuid.ts';
import type { OptOut } from './optout.ts';

/**
 * An execution keeps its start's decision. An opted-out command-start writes nothing, so the
 * decision travels in the id it prints: opted in, a random UUID v4; opted out, the same random
 * bits marked version 8. A command-action or command-end given a version-8 id is opted out
 * whatever its own options and environment say, and needs nothing but its arguments to know it.
 */
export function executionId(randomUuidV4: string, optedOut: boolean): string {
  return optedOut ? asVersion8(randomUuidV4) : randomUuidV4;
}

/** The opt-out an execution id carries, for a command-action or command-end given it. */
export function executionOptOut(id: unknown): OptOut | undefined {
  if (typeof id !== 'string' || !isVersion8(id.trim())) return undefined;
  return { mechanism: 'execution', detail: `the execution's command-start ran opted out (its id ${id.trim()} says so)` };
}
