import { UsageError } from '../errors.ts';
import type { EventName } from './events.ts';

interface LegacyForm {
  command: EventName;
  values: (args: string[], name: string) => Record<string, string | string[]>;
}

function legacyArgs(name: string, args: string[], min: number, max: number): void {
  if (args.length < min || args.length > max) {
    throw new UsageError(`${name} takes ${min === max ? min : `${min} to ${max}`} arguments, got ${args.length}`);
  }
}

/** netdata's daemon log.c writes `%04lu@%-10.10s:%-15.15s/%d` (line@file:function/errno). */
const NETDATA_FATAL_DATA = /^(\d+)@(.*?)\s*:(.*?)\s*\/(-?\d+)$/;

/** The positional form daemons already use with anonymous-statistics.sh. */
export const LEGACY_FORMS: Record<string, LegacyForm> = {
  START: {
    command: 'start',
    // netdata calls `START - -`: the placeholders carry nothing.
    values: (args, name) => (legacyArgs(name, args, 0, 2), {}),
  },
  EXIT: {
    command: 'stop',
    values: (args, name) => {
      legacyArgs(name, args, 1, 2);
      if (args[0] !== 'OK' && args[0] !== 'ERROR') throw new UsageError(`EXIT takes OK or ERROR, got "${args[0]}"`);
      return { 'exit-code': args[0] === 'OK' ? '0' : '1' };
    },
  },
  FATAL: {
    command: 'fatal',
    values: (args, name) => {
      legacyArgs(name, args, 1, 2);
      const [where, data = ''] = args;
      const colon = where.indexOf(':');
      const values: Record<string, string> = {
        process: colon === -1 ? where : where.slice(0, colon),
        thread: colon === -1 ? 'unknown' : where.slice(colon + 1) || 'unknown',
      };
      const parsed = NETDATA_FATAL_DATA.exec(data.trim());
      if (parsed) Object.assign(values, { line: String(Number(parsed[1])), file: parsed[2], function: parsed[3] });
      if (data.trim() !== '' && data !== '-') values.message = data;
      return values;
    },
  },
  ACLK_CONN_FAIL: {
    command: 'cloud-connect-fail',
    values: (args, name) => {
      legacyArgs(name, args, 1, 2);
      const [result, data] = args;
      const values: Record<string, string | string[]> = { code: [result] };
      if (data !== undefined && data !== '-') values.message = data;
      return values;
    },
  },
};

