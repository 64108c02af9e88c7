import { exists, listDir, readLink, readText } from './fs.ts';

/** One detection pass's view of the root: each file is read at most once. */
export interface RootReader {
  readonly root: string;
  text(rel: string): string | undefined;
  line(rel: string): string | undefined;
  exists(rel: string): boolean;
  list(rel: string): string[];
  link(rel: string): string | undefined;
  /** pid 1's environment (NUL-separated `KEY=value`), empty when unreadable. */
  pid1Env(): Record<string, string>;
}

export function createReader(root: string): RootReader {
  const texts = new Map<string, string | undefined>();
  let pid1: Record<string, string> | undefined;
  const text = (rel: string) => {
    if (!texts.has(rel)) texts.set(rel, readText(root, rel));
    return texts.get(rel);
  };
  return {
    root,
    text,
    line: (rel) => text(rel)?.split('\n', 1)[0].trim() || undefined,
    exists: (rel) => texts.get(rel) !== undefined || exists(root, rel),
    list: (rel) => listDir(root, rel),
    link: (rel) => readLink(root, rel),
    pid1Env() {
      pid1 ??= parseEnviron(text('proc/1/environ') ?? '');
      return pid1;
    },
  };
}

function parseEnviron(raw: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const entry of raw.split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}
