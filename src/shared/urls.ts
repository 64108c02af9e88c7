/** A bare origin means PostHog's own path; any other path is the vendor's capture URL as given. */
export function captureUrl(endpoint: URL): URL {
  return endpoint.pathname === '/' ? new URL('/capture/', endpoint) : endpoint;
}

/** PostHog's /batch/ beside /capture/; a custom capture URL takes batch bodies too. */
export function batchUrl(endpoint: URL): URL {
  if (endpoint.pathname === '/') return new URL('/batch/', endpoint);
  return /\/capture\/?$/.test(endpoint.pathname) ? new URL(endpoint.pathname.replace(/capture\/?$/, 'batch/'), endpoint) : endpoint;
}
