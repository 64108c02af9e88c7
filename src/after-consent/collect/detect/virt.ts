import type { RootReader } from './reader.ts';

/** systemd-detect-virt's VM vocabulary. */
export type VmId =
  | 'kvm' | 'qemu' | 'amazon' | 'zvm' | 'vmware' | 'microsoft' | 'oracle' | 'powervm' | 'xen' | 'bochs'
  | 'uml' | 'parallels' | 'bhyve' | 'qnx' | 'acrn' | 'apple' | 'sre' | 'google' | 'vm-other';

export interface Verdict<Id> {
  id: Id | 'none' | 'unknown';
  via: string;
}

/** Read in this order; product_name first so "KVM" wins over a "QEMU" vendor (virt.c). */
const DMI_FILES = ['product_name', 'sys_vendor', 'board_vendor', 'bios_vendor', 'product_version'];

/** systemd's dmi_vendor_table: a DMI value starting with the prefix names the VM. */
const DMI_VENDORS: readonly (readonly [string, VmId])[] = [
  ['KVM', 'kvm'],
  ['OpenStack', 'kvm'],
  ['KubeVirt', 'kvm'],
  ['Amazon EC2', 'amazon'],
  ['QEMU', 'qemu'],
  ['VMware', 'vmware'],
  ['VMW', 'vmware'],
  ['innotek GmbH', 'oracle'],
  ['VirtualBox', 'oracle'],
  ['Oracle Corporation', 'oracle'],
  ['Xen', 'xen'],
  ['Bochs', 'bochs'],
  ['Parallels', 'parallels'],
  ['BHYVE', 'bhyve'],
  ['Hyper-V', 'microsoft'],
  ['Apple Virtualization', 'apple'],
  ['Google Compute Engine', 'google'],
];

/** DMI answers systemd trusts before CPUID, because these clouds run on KVM or cloak as Hyper-V. */
const DMI_BEFORE_CPUID = new Set<VmId>(['oracle', 'xen', 'amazon', 'parallels', 'google']);

/** systemd's CPUID leaf 0x40000000 signatures, for the places a file shows them. */
const CPUID_SIGNATURES: readonly (readonly [string, VmId])[] = [
  ['XenVMMXenVMM', 'xen'],
  ['KVMKVMKVM', 'kvm'],
  ['Linux KVM Hv', 'kvm'],
  ['TCGTCGTCGTCG', 'qemu'],
  ['VMwareVMware', 'vmware'],
  ['Microsoft Hv', 'microsoft'],
  ['bhyve bhyve', 'bhyve'],
  ['QNXQVMBSQG', 'qnx'],
  ['ACRNACRNACRN', 'acrn'],
  ['SRESRESRESRE', 'sre'],
  ['Apple VZ', 'apple'],
];

/** Paravirtual clock sources exist only when the hypervisor announced itself through CPUID. */
const CLOCKSOURCES: readonly (readonly [RegExp, VmId])[] = [
  [/\bkvm-clock\b/, 'kvm'],
  [/\bhyperv_clocksource/, 'microsoft'],
];

/**
 * QEMU/KVM can present Hyper-V's CPUID signature (enlightenments), so like virt.c a Microsoft
 * answer from CPUID is trusted only after DMI and the rest had their say.
 */
function cpuidAnswer(files: RootReader): { id: VmId; via: string } | undefined {
  const base = 'sys/devices/system/clocksource/clocksource0';
  const sources = `${files.text(`${base}/available_clocksource`) ?? ''} ${files.text(`${base}/current_clocksource`) ?? ''}`;
  const clock = CLOCKSOURCES.find(([pattern]) => pattern.test(sources))?.[1];
  if (clock) return { id: clock, via: 'clocksource' };
  const origin = /Hypervisor: Origin = "([^"]*)"/.exec(files.text('var/run/dmesg.boot') ?? '')?.[1];
  if (origin !== undefined) return { id: CPUID_SIGNATURES.find(([sig]) => origin.startsWith(sig))?.[1] ?? 'vm-other', via: 'dmesg.boot' };
  return undefined;
}

function cpuidVia(files: RootReader): string {
  return cpuidAnswer(files)?.via ?? 'cpuid';
}

function cpuidRow(trustMicrosoft: boolean) {
  return (files: RootReader) => {
    const answer = cpuidAnswer(files);
    return answer && (answer.id === 'microsoft') === trustMicrosoft ? answer.id : undefined;
  };
}

function dmiAnswer(files: RootReader): VmId | undefined {
  const values = DMI_FILES.map((name) => files.line(`sys/class/dmi/id/${name}`));
  const [productName, sysVendor] = values;
  for (const value of values) {
    const hit = value && DMI_VENDORS.find(([prefix]) => value.startsWith(prefix));
    if (!hit) continue;
    // EC2 bare-metal instances carry the same vendor as VMs; only the product name tells them apart.
    if (hit[1] === 'amazon' && /\.metal(-|$)/.test(productName ?? '')) return undefined;
    return hit[1];
  }
  // Hyper-V generation 1 guests: not in systemd's table, which relies on CPUID for them.
  if (sysVendor === 'Microsoft Corporation' && productName === 'Virtual Machine') return 'microsoft';
  return undefined;
}

function cpuinfoField(files: RootReader, field: string): string | undefined {
  return new RegExp(`^${field}\\s*:\\s*(.*)$`, 'm').exec(files.text('proc/cpuinfo') ?? '')?.[1];
}

/** XENFEAT_dom0 is bit 11 of the hypervisor's feature word. */
const XENFEAT_DOM0 = 1 << 11;

function isXenDom0(files: RootReader): boolean {
  const features = files.line('sys/hypervisor/properties/features');
  if (features !== undefined && /^[0-9a-f]+$/i.test(features)) return (parseInt(features, 16) & XENFEAT_DOM0) !== 0;
  return files.text('proc/xen/capabilities')?.includes('control_d') === true;
}

function fromDeviceTree(files: RootReader): VmId | undefined {
  // A device-tree property is a NUL-separated list; virt.c looks at its first string.
  const compatible = files.text('proc/device-tree/hypervisor/compatible')?.split('\0')[0];
  if (compatible !== undefined) {
    if (compatible === 'linux,kvm') return 'kvm';
    if (compatible.includes('xen')) return 'xen';
    if (compatible.includes('vmware')) return 'vmware';
    return 'vm-other';
  }
  if (
    files.exists('proc/device-tree/ibm,partition-name') &&
    files.exists('proc/device-tree/hmc-managed?') &&
    !files.exists('proc/device-tree/chosen/qemu,graphic-width')
  ) {
    return 'powervm';
  }
  return files.list('proc/device-tree').some((entry) => entry.includes('fw-cfg')) ? 'qemu' : undefined;
}

interface VmProbe {
  /** The signal named in system_virt_detection (a function where the row reads several files). */
  via: string | ((files: RootReader) => string);
  probe: (files: RootReader) => VmId | 'none' | undefined;
}

/**
 * systemd-detect-virt's order (virt.c detect_vm): cloud DMI first, then UML and Xen, then what
 * CPUID says, then the rest of DMI, sysfs, device tree, s390 sysinfo, and last the bare
 * "hypervisor" CPU flag. The first row with an answer decides. A row answering 'none' stops
 * the search (a Xen dom0 is the host, whatever its sysfs says).
 */
const VM_PROBES: readonly VmProbe[] = [
  { via: 'dmi', probe: (f) => { const id = dmiAnswer(f); return id && DMI_BEFORE_CPUID.has(id) ? id : undefined; } },
  { via: 'cpuinfo', probe: (f) => (cpuinfoField(f, 'vendor_id') === 'User Mode Linux' ? 'uml' : undefined) },
  { via: 'xen', probe: (f) => (f.exists('proc/xen') && !isXenDom0(f) ? 'xen' : undefined) },
  { via: cpuidVia, probe: cpuidRow(false) },
  { via: 'xen', probe: (f) => (isXenDom0(f) ? (hasHypervisorFlag(f) ? 'vm-other' : 'none') : undefined) },
  { via: 'dmi', probe: dmiAnswer },
  { via: 'hypervisor', probe: (f) => { const type = f.line('sys/hypervisor/type'); return type === undefined ? undefined : type === 'xen' ? 'xen' : 'vm-other'; } },
  { via: 'device-tree', probe: fromDeviceTree },
  {
    via: 'sysinfo',
    probe: (f) => {
      const program = /^VM00 Control Program:\s*(\S+)/m.exec(f.text('proc/sysinfo') ?? '')?.[1];
      return program === undefined ? undefined : program === 'z/VM' ? 'zvm' : 'kvm';
    },
  },
  { via: cpuidVia, probe: cpuidRow(true) },
  { via: 'cpuinfo', probe: (f) => (hasHypervisorFlag(f) ? 'vm-other' : undefined) },
];

function hasHypervisorFlag(files: RootReader): boolean {
  return /^flags\s*:.*\bhypervisor\b/m.test(files.text('proc/cpuinfo') ?? '');
}

/** Files whose presence lets "no VM found" mean none rather than cannot tell. */
const VM_EVIDENCE = ['proc/cpuinfo', 'sys/class/dmi/id', 'proc/device-tree', 'proc/sysinfo', 'var/run/dmesg.boot'];

export function detectVirtualization(files: RootReader): Verdict<VmId> {
  for (const { via, probe } of VM_PROBES) {
    const id = probe(files);
    if (id === undefined) continue;
    if (id === 'none') return { id, via: 'none' };
    return { id, via: typeof via === 'string' ? via : via(files) };
  }
  return VM_EVIDENCE.some((rel) => files.exists(rel)) ? { id: 'none', via: 'none' } : { id: 'unknown', via: 'unknown' };
}
