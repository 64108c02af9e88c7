import type { RootReader } from './reader.ts';
import { parseOsRelease } from './os-release.ts';

export interface OsFacts {
  name: string;
  id: string;
  id_like: string;
  version: string;
  version_id: string;
  detection: string;
}

type OsFields = Omit<OsFacts, 'detection'>;
interface OsSource {
  file: string;
  read: (text: string) => OsFields;
}

const UNKNOWN = 'unknown';
const OS_UNKNOWN: OsFacts = fill(UNKNOWN);
export const OS_NONE: OsFacts = fill('none');

function fill(value: string): OsFacts {
  return { name: value, id: value, id_like: value, version: value, version_id: value, detection: value };
}

/** os-release keys as written; a missing key stays unknown, never filled from another key. */
function fromOsRelease(text: string): OsFields {
  const r = parseOsRelease(text);
  return {
    name: r.NAME ?? UNKNOWN,
    id: r.ID ?? UNKNOWN,
    id_like: r.ID_LIKE ?? UNKNOWN,
    version: r.VERSION ?? UNKNOWN,
    version_id: r.VERSION_ID ?? UNKNOWN,
  };
}

function fromLsbRelease(text: string): OsFields {
  const r = parseOsRelease(text);
  return { ...fill(UNKNOWN), name: r.DISTRIB_ID ?? UNKNOWN, version: r.DISTRIB_RELEASE ?? UNKNOWN };
}

function plistString(text: string, key: string): string | undefined {
  const match = new RegExp(`<key>${key}</key>\\s*<string>([^<]*)</string>`).exec(text);
  return match?.[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

function fromSystemVersionPlist(text: string): OsFields {
  const version = plistString(text, 'ProductVersion') ?? UNKNOWN;
  return { name: plistString(text, 'ProductName') ?? UNKNOWN, id: 'macos', id_like: UNKNOWN, version, version_id: version };
}

/** /bin/freebsd-version is a shell script; its USERLAND_VERSION assignment is read, not run. */
function fromFreebsdVersion(text: string): OsFields {
  const version = parseOsRelease(text).USERLAND_VERSION ?? UNKNOWN;
  const versionId = /^\d+(\.\d+)?/.exec(version)?.[0] ?? UNKNOWN;
  return { name: 'FreeBSD', id: 'freebsd', id_like: UNKNOWN, version, version_id: versionId };
}

/** The system's own OS, in the order the os-release spec and the older conventions give. */
export const OWN_OS_SOURCES: readonly OsSource[] = [
  { file: 'etc/os-release', read: fromOsRelease },
  { file: 'usr/lib/os-release', read: fromOsRelease },
  { file: 'etc/lsb-release', read: fromLsbRelease },
  { file: 'System/Library/CoreServices/SystemVersion.plist', read: fromSystemVersionPlist },
  { file: 'bin/freebsd-version', read: fromFreebsdVersion },
];

/** Where a container may see its host's os-release (bind mounts by convention, systemd's /run/host). */
export const HOST_OS_SOURCES: readonly OsSource[] = [
  { file: 'host/etc/os-release', read: fromOsRelease },
  { file: 'host/usr/lib/os-release', read: fromOsRelease },
  { file: 'run/host/os-release', read: fromOsRelease },
];

export function detectOs(files: RootReader, sources: readonly OsSource[]): OsFacts {
  for (const source of sources) {
    const text = files.text(source.file);
    if (text !== undefined) return { ...source.read(text), detection: `/${source.file}` };
  }
  return OS_UNKNOWN;
}
