// Reference for `npm run bench`: the same POST through undici's request API, which the shipped
// file does not use (see README "Why node:http").
'use strict';
const { request } = require('undici');
request(process.argv[2], { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ api_key: 'k', event: 'start', properties: { distinct_id: 'x' } }) })
  .then((response) => response.body.dump())
  .then(() => process.exit(0));
