import { UsageError } from '../errors.ts';
import { endpointProblem } from '../../shared/endpoint-url.ts';

/** A setting's value and where it came from, as a usage error names it (`--endpoint`, `"endpoint"` in a file). */
export interface Source {
  value: string;
  name: string;
}

/** https: anywhere; http: only to this machine (endpoint-url.ts), decided from the URL alone. */
export function parseEndpoint(source: Source): URL {
  let url: URL;
  try {
    url = new URL(source.value);
  } catch {
    throw new UsageError(`${source.name} is not a valid URL: "${source.value}"`);
  }
  const problem = endpointProblem(url);
  if (problem) throw new UsageError(`${source.name} ${problem}`);
  return url;
}
