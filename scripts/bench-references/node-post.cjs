// Floor of `npm run bench`: the least a Node POST can cost, one request with node:https or
// node:http (whichever the URL names; only that one is loaded), then exit.
// Arguments: URL, body, and optionally "unverified". It trusts the bench's test CA the way the
// product does, through NODE_EXTRA_CA_CERTS; "unverified" skips the check instead, which shows
// what an https: POST costs without that variable (Node then loads its root store lazily).
'use strict';
const [url, body, verification] = process.argv.slice(2);
const client = require(url.startsWith('https:') ? 'node:https' : 'node:http');
const options = { method: 'POST', agent: false, headers: { 'content-type': 'application/json' }, rejectUnauthorized: verification !== 'unverified' };
const request = client.request(url, options, (response) => {
  response.resume();
  response.on('end', () => process.exit(response.statusCode === 200 ? 0 : 1));
});
request.on('error', () => process.exit(1));
request.end(body);
