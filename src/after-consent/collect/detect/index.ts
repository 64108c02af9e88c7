/**
 * What this module collects, and what it never collects.
 *
 * Q: What is read? The OS name and version (os-release), the kernel name and version, the CPU
 *    architecture, whether this is a VM or a container and of which kind, the host's OS when we
 *    run in a container, and whether the host is a Kubernetes node. Nothing else.
 * Q: What is never collected? Host names, user names, IP or MAC addresses, paths, e-mail
 *    addresses, and the raw machine id (only a keyed hash of it; see identity.ts).
 * Q: Is anything executed? No. Files are read under the root, as text; no program is run and no
 *    value is evaluated.
 * Q: How do I opt out? `--disable-telemetry`, DISABLE_TELEMETRY or DO_NOT_TRACK set to anything,
 *    or the file `.opt-out-from-anonymous-statistics` in the config dir. An opted-out run never
 *    gets this far.
 */
import type { Platform } from '../../../before-consent/config/context.ts';
import { detectContainer, isKubernetesNode } from './container.ts';
import { detectOs, HOST_OS_SOURCES, OS_NONE, OWN_OS_SOURCES, type OsFacts } from './os.ts';
import { createReader } from './reader.ts';
import { detectVirtualization } from './virt.ts';

export interface DetectionInput {
  root: string;
  /** The caller's environment; only consulted when the root is the running system's `/`. */
  env: Readonly<Record<string, string | undefined>>;
  platform: Platform;
}

export type DetectionProperties = ReturnType<typeof detectSystem>;

export function detectSystem({ root, env, platform }: DetectionInput) {
  const files = createReader(root);
  const ownRoot = root === '/';
  const kernelName = ownRoot ? platform.type : files.line('proc/sys/kernel/ostype') ?? 'unknown';
  const kernelVersion = ownRoot ? platform.release : files.line('proc/sys/kernel/osrelease') ?? 'unknown';
  const virt = detectVirtualization(files);
  const container = detectContainer(files, kernelName);
  const inContainer = container.id !== 'none' && container.id !== 'unknown';
  const ownOs = detectOs(files, OWN_OS_SOURCES);
  const hostOs: OsFacts = inContainer ? detectOs(files, HOST_OS_SOURCES) : ownOs;
  const containerOs: OsFacts = inContainer ? ownOs : OS_NONE;
  return {
    ...prefixed('host_os', hostOs),
    ...prefixed('container_os', containerOs),
    system_kernel_name: kernelName,
    system_kernel_version: kernelVersion,
    system_architecture: platform.machine,
    system_virtualization: virt.id,
    system_virt_detection: virt.via,
    system_container: container.id,
    system_container_detection: container.via,
    host_is_k8s_node: isKubernetesNode(files, ownRoot ? env : {}),
  };
}

function prefixed<P extends string>(prefix: P, os: OsFacts) {
  return {
    [`${prefix}_name`]: os.name,
    [`${prefix}_id`]: os.id,
    [`${prefix}_id_like`]: os.id_like,
    [`${prefix}_version`]: os.version,
    [`${prefix}_version_id`]: os.version_id,
    [`${prefix}_detection`]: os.detection,
  } as Record<`${P}_${keyof OsFacts}`, string>;
}
