import assert from 'node:assert/strict';
import { test } from 'node:test';
import { bypassesProxy, proxyFor } from '../src/deliver/proxy.ts';

const https = new URL('https://telemetry.example.com/capture/');
const http = new URL('http://127.0.0.1:8000/capture/');

test('the proxy for https: comes from https_proxy, then HTTPS_PROXY, then all_proxy; lowercase first', () => {
  assert.equal(proxyFor(https, { HTTPS_PROXY: 'http://upper:3128' })?.href, 'http://upper:3128/');
  assert.equal(proxyFor(https, { https_proxy: 'http://lower:3128', HTTPS_PROXY: 'http://upper:3128' })?.href, 'http://lower:3128/');
  assert.equal(proxyFor(https, { ALL_PROXY: 'proxy.corp:8080' })?.href, 'http://proxy.corp:8080/', 'no scheme means http://');
  assert.equal(proxyFor(https, { http_proxy: 'http://only-for-http:3128' }), undefined);
});

test('plain http: honours only lowercase http_proxy, as curl does', () => {
  assert.equal(proxyFor(http, { HTTP_PROXY: 'http://set-by-a-cgi-header:80' }), undefined);
  assert.equal(proxyFor(http, { http_proxy: 'http://p:3128' })?.host, 'p:3128');
});

test("NO_PROXY matches curl's way: *, names with their subdomains, leading dots, IPs, IPv4 CIDR", () => {
  assert.equal(bypassesProxy('telemetry.example.com', '*'), true);
  assert.equal(bypassesProxy('telemetry.example.com', 'example.com'), true);
  assert.equal(bypassesProxy('telemetry.example.com', '.example.com'), true);
  assert.equal(bypassesProxy('telemetry.example.com', 'other.com, example.com:443'), true);
  assert.equal(bypassesProxy('notexample.com', 'example.com'), false, 'a suffix must end at a dot');
  assert.equal(bypassesProxy('127.0.0.1', '127.0.0.0/8'), true);
  assert.equal(bypassesProxy('128.0.0.1', '127.0.0.0/8'), false);
  assert.equal(bypassesProxy('[::1]', '::1'), true);
  assert.equal(bypassesProxy('[::1]', '[::1]:8080'), true);
  assert.equal(bypassesProxy('telemetry.example.com', ''), false);
  assert.equal(proxyFor(https, { https_proxy: 'http://p:3128', no_proxy: 'example.com' }), undefined);
  assert.equal(proxyFor(https, { https_proxy: 'http://p:3128', NO_PROXY: 'example.com' }), undefined);
});
