// Reference row of `npm run bench`: the same POST as node-post.cjs through undici's request API,
// which the shipped file does not use (see README "Why node:http"). Arguments: URL, body.
'use strict';
const { request } = require('undici');
const [url, body] = process.argv.slice(2);
request(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
  .then(async (response) => {
    await response.body.dump();
    process.exit(response.statusCode === 200 ? 0 : 1);
  })
  .catch(() => process.exit(1));
