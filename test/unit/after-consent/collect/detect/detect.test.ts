import assert from 'node:assert/strict';
import { test } from 'node:test';
import { detectSystem } from '../../../../../src/after-consent/collect/detect/index.ts';
import { makeRoot } from '../../../../support/helpers.ts';

const platform = { type: 'Linux', release: '6.1.0-host', machine: 'aarch64' };
const BARE_PROC = { 'proc/sys/kernel/ostype': 'Linux\n', 'proc/sys/kernel/osrelease': '6.1.0-18-amd64\n', 'proc/cpuinfo': 'flags\t\t: fpu vme sse2\n', 'proc/1/cgroup': '0::/init.scope\n' };

test('under --root the kernel comes from proc/sys/kernel, the architecture from the running machine', (t) => {
  const root = makeRoot(t, BARE_PROC);
  const detected = detectSystem({ root, env: {}, platform });
  assert.equal(detected.system_kernel_name, 'Linux');
  assert.equal(detected.system_kernel_version, '6.1.0-18-amd64');
  assert.equal(detected.system_architecture, 'aarch64');
});

test('an empty root says unknown everywhere rather than guessing none', (t) => {
  const detected = detectSystem({ root: makeRoot(t, {}), env: {}, platform });
  assert.equal(detected.system_kernel_name, 'unknown');
  assert.equal(detected.system_virtualization, 'unknown');
  assert.equal(detected.system_container, 'unknown');
  assert.equal(detected.host_os_name, 'unknown');
  assert.equal(detected.container_os_name, 'none');
});

test('os-release in /etc wins over /usr/lib, and lsb-release is used only when neither exists', (t) => {
  const both = makeRoot(t, { ...BARE_PROC, 'etc/os-release': 'ID=etc\n', 'usr/lib/os-release': 'ID=usr\n', 'etc/lsb-release': 'DISTRIB_ID=Lsb\n' });
  assert.equal(detectSystem({ root: both, env: {}, platform }).host_os_id, 'etc');
  const usrOnly = makeRoot(t, { ...BARE_PROC, 'usr/lib/os-release': 'ID=usr\n', 'etc/lsb-release': 'DISTRIB_ID=Lsb\n' });
  assert.equal(detectSystem({ root: usrOnly, env: {}, platform }).host_os_detection, '/usr/lib/os-release');
  const lsbOnly = makeRoot(t, { ...BARE_PROC, 'etc/lsb-release': 'DISTRIB_ID=Ubuntu\nDISTRIB_RELEASE=12.04\nDISTRIB_CODENAME=precise\n' });
  const lsb = detectSystem({ root: lsbOnly, env: {}, platform });
  assert.deepEqual(
    [lsb.host_os_name, lsb.host_os_version, lsb.host_os_id, lsb.host_os_detection],
    ['Ubuntu', '12.04', 'unknown', '/etc/lsb-release'],
  );
});

test('a missing os-release key is unknown and never filled from another key', (t) => {
  const root = makeRoot(t, { ...BARE_PROC, 'etc/os-release': 'NAME="Arch Linux"\nPRETTY_NAME="Arch Linux"\nID=arch\n' });
  const detected = detectSystem({ root, env: {}, platform });
  assert.equal(detected.host_os_version, 'unknown');
  assert.equal(detected.host_os_version_id, 'unknown');
  assert.equal(detected.host_os_id_like, 'unknown');
});

test('in a container the host OS comes from the bind-mounted host os-release', (t) => {
  const root = makeRoot(t, {
    ...BARE_PROC,
    '.dockerenv': '',
    'etc/os-release': 'ID=alpine\nVERSION_ID=3.19.1\n',
    'host/etc/os-release': 'ID=ubuntu\nVERSION_ID="22.04"\n',
  });
  const detected = detectSystem({ root, env: {}, platform });
  assert.deepEqual(
    [detected.system_container, detected.container_os_id, detected.host_os_id, detected.host_os_detection],
    ['docker', 'alpine', 'ubuntu', '/host/etc/os-release'],
  );
});

test('Kubernetes: the service variables in the caller environment count only for the real root', (t) => {
  const root = makeRoot(t, BARE_PROC);
  const env = { KUBERNETES_SERVICE_HOST: '10.0.0.1', KUBERNETES_SERVICE_PORT: '443' };
  assert.equal(detectSystem({ root, env, platform }).host_is_k8s_node, false);
  const viaPid1 = makeRoot(t, { ...BARE_PROC, 'proc/1/environ': 'PATH=/bin\0KUBERNETES_SERVICE_HOST=10.0.0.1\0KUBERNETES_SERVICE_PORT=443\0' });
  assert.equal(detectSystem({ root: viaPid1, env: {}, platform }).host_is_k8s_node, true);
});

test('a stale /.dockerenv does not override the container manager pid 1 names', (t) => {
  const root = makeRoot(t, { ...BARE_PROC, '.dockerenv': '', 'proc/1/environ': 'container=lxc\0' });
  const detected = detectSystem({ root, env: {}, platform });
  assert.deepEqual([detected.system_container, detected.system_container_detection], ['lxc', 'environ']);
});

test('container=oci defers to the files, then to a cgroup path', (t) => {
  const withFile = makeRoot(t, { ...BARE_PROC, 'proc/1/environ': 'container=oci\0', 'run/.containerenv': '' });
  assert.equal(detectSystem({ root: withFile, env: {}, platform }).system_container, 'podman');
  const bare = makeRoot(t, { ...BARE_PROC, 'proc/1/environ': 'container=oci\0' });
  assert.deepEqual(
    [detectSystem({ root: bare, env: {}, platform }).system_container, detectSystem({ root: bare, env: {}, platform }).system_container_detection],
    ['container-other', 'environ'],
  );
});

test('a host process in the docker daemon cgroup is not in a container', (t) => {
  const root = makeRoot(t, { ...BARE_PROC, 'proc/1/cgroup': '0::/system.slice/docker.service\n' });
  assert.equal(detectSystem({ root, env: {}, platform }).system_container, 'none');
});

test('DMI: product_name KVM beats a QEMU vendor; EC2 .metal is bare metal', (t) => {
  const kvm = makeRoot(t, { ...BARE_PROC, 'sys/class/dmi/id/product_name': 'KVM\n', 'sys/class/dmi/id/sys_vendor': 'QEMU\n' });
  assert.equal(detectSystem({ root: kvm, env: {}, platform }).system_virtualization, 'kvm');
  const metal = makeRoot(t, { ...BARE_PROC, 'sys/class/dmi/id/product_name': 'm5.metal\n', 'sys/class/dmi/id/sys_vendor': 'Amazon EC2\n' });
  assert.equal(detectSystem({ root: metal, env: {}, platform }).system_virtualization, 'none');
});

test('on macOS (root /) there is no container and the OS comes from SystemVersion.plist', (t) => {
  const root = makeRoot(t, {
    'System/Library/CoreServices/SystemVersion.plist':
      '<plist version="1.0"><dict><key>ProductName</key>\n\t<string>macOS</string>\n\t<key>ProductVersion</key>\n\t<string>14.4.1</string></dict></plist>\n',
  });
  const detected = detectSystem({ root, env: {}, platform: { type: 'Darwin', release: '23.4.0', machine: 'arm64' } });
  assert.deepEqual(
    [detected.host_os_name, detected.host_os_id, detected.host_os_version_id, detected.system_kernel_name],
    ['macOS', 'macos', '14.4.1', 'unknown'],
  );
});
