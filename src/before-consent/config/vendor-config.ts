import vendor from '../../../vendor.json' with { type: 'json' };
import type { VendorConfig } from './vendor.ts';

/** The build swaps vendor.json for the vendor's own file (scripts/build.ts validates it first). */
export const VENDOR: VendorConfig = vendor;
