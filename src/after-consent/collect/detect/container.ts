import type { RootReader } from './reader.ts';
import type { Verdict } from './virt.ts';

/** systemd-detect-virt's container vocabulary. */
export type ContainerId =
  | 'openvz' | 'lxc' | 'lxc-libvirt' | 'systemd-nspawn' | 'docker' | 'podman' | 'rkt' | 'wsl'
  | 'proot' | 'pouch' | 'container-other';

/** Names a container manager writes into `container=` (systemd's value_table). */
const MANAGER_NAMES = new Set<string>(['lxc', 'lxc-libvirt', 'systemd-nspawn', 'docker', 'podman', 'rkt', 'wsl', 'proot', 'pouch']);

/** The root pid namespace has this fixed inode since Linux 3.8. */
const ROOT_PID_NAMESPACE = 'pid:[4026531836]';

/** cgroup paths runtimes create; more telling than systemd's own checks when those say nothing. */
const CGROUP_PATTERNS: readonly (readonly [RegExp, ContainerId])[] = [
  [/\/docker[-/]/, 'docker'],
  [/libpod[-_]/, 'podman'],
  [/\/lxc\/|\/lxc\.payload/, 'lxc'],
  [/\/kubepods|cri-containerd-|\/containerd\/|crio-/, 'container-other'],
];

function translateManager(name: string | undefined): ContainerId | undefined {
  if (name === undefined || name === '') return undefined;
  // "oci" names no manager: the file checks further down may still tell which one.
  if (name === 'oci') return 'container-other';
  return MANAGER_NAMES.has(name) ? (name as ContainerId) : 'container-other';
}

function cgroupText(files: RootReader): string {
  return `${files.text('proc/1/cgroup') ?? ''}\n${files.text('proc/self/cgroup') ?? ''}`;
}

function tracedByProot(files: RootReader): boolean {
  const tracer = /^TracerPid:\s*(\d+)/m.exec(files.text('proc/self/status') ?? '')?.[1];
  return tracer !== undefined && tracer !== '0' && files.line(`proc/${tracer}/comm`)?.startsWith('proot') === true;
}

interface ContainerProbe {
  via: string;
  probe: (files: RootReader) => ContainerId | undefined;
}

/**
 * systemd-detect-virt's order (virt.c detect_container), then cgroup paths and the pid namespace.
 * The first specific answer wins; 'container-other' is kept only if no later row is more precise.
 */
const CONTAINER_PROBES: readonly ContainerProbe[] = [
  { via: 'vz', probe: (f) => (f.exists('proc/vz') && !f.exists('proc/bc') ? 'openvz' : undefined) },
  { via: 'osrelease', probe: (f) => (/Microsoft|WSL/.test(f.line('proc/sys/kernel/osrelease') ?? '') ? 'wsl' : undefined) },
  { via: 'proot', probe: (f) => (tracedByProot(f) ? 'proot' : undefined) },
  { via: 'container-manager', probe: (f) => translateManager(f.line('run/host/container-manager')) },
  { via: 'systemd', probe: (f) => translateManager(f.line('run/systemd/container')) },
  { via: 'environ', probe: (f) => translateManager(f.pid1Env().container) },
  { via: 'containerenv', probe: (f) => (f.exists('run/.containerenv') ? 'podman' : undefined) },
  { via: 'dockerenv', probe: (f) => (f.exists('.dockerenv') ? 'docker' : undefined) },
  { via: 'cgroup', probe: (f) => { const text = cgroupText(f); return CGROUP_PATTERNS.find(([pattern]) => pattern.test(text))?.[1]; } },
  { via: 'pidns', probe: (f) => { const ns = f.link('proc/self/ns/pid'); return ns !== undefined && ns !== ROOT_PID_NAMESPACE ? 'container-other' : undefined; } },
];

/** Files whose presence lets "no container found" mean none rather than cannot tell. */
const CONTAINER_EVIDENCE = ['proc/1/cgroup', 'proc/self/cgroup', 'proc/1/environ', 'proc/sys/kernel/osrelease', 'run/systemd/system'];

export function detectContainer(files: RootReader, kernelName: string): Verdict<ContainerId> {
  let fallback: Verdict<ContainerId> | undefined;
  for (const { via, probe } of CONTAINER_PROBES) {
    const id = probe(files);
    if (id === undefined) continue;
    if (id !== 'container-other') return { id, via };
    fallback ??= { id, via };
  }
  if (fallback) return fallback;
  // A Darwin kernel cannot run inside a Linux container.
  if (kernelName === 'Darwin' || CONTAINER_EVIDENCE.some((rel) => files.exists(rel))) return { id: 'none', via: 'none' };
  return { id: 'unknown', via: 'unknown' };
}

export function isKubernetesNode(files: RootReader, callerEnv: Readonly<Record<string, string | undefined>>): boolean {
  const hasServiceEnv = (env: Readonly<Record<string, string | undefined>>) =>
    Boolean(env.KUBERNETES_SERVICE_HOST) && Boolean(env.KUBERNETES_SERVICE_PORT);
  return (
    hasServiceEnv(callerEnv) ||
    hasServiceEnv(files.pid1Env()) ||
    /kubepods/.test(cgroupText(files)) ||
    files.exists('etc/kubernetes/kubelet.conf') ||
    files.exists('var/lib/kubelet/config.yaml')
  );
}
