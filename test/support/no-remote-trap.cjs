// Preloaded into every run of the built file by the tests (NODE_OPTIONS=--require). It lets
// connections and lookups reach loopback only; anything else is recorded in TRAP_LOG and fails,
// so a test can prove that no run ever tried to reach another address.
'use strict';
const fs = require('node:fs');
const net = require('node:net');
const dns = require('node:dns');

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|localhost)$/;
function guard(host, what) {
  const name = String(host ?? 'localhost').replace(/^\[|\]$/g, '');
  if (LOOPBACK.test(name)) return;
  if (process.env.TRAP_LOG) fs.appendFileSync(process.env.TRAP_LOG, `${what} ${name}\n`);
  throw new Error(`test trap: ${what} to non-loopback ${name} refused`);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const options = typeof args[0] === 'object' && args[0] !== null ? (Array.isArray(args[0]) ? args[0][0] : args[0]) : { host: args[1] };
  if (options && options.path === undefined) guard(options.host, 'connect');
  return connect.apply(this, args);
};
const lookup = dns.lookup;
dns.lookup = function (host, ...rest) {
  guard(host, 'lookup');
  return lookup.call(this, host, ...rest);
};
const promiseLookup = dns.promises.lookup;
dns.promises.lookup = function (host, ...rest) {
  guard(host, 'lookup');
  return promiseLookup.call(this, host, ...rest);
};
