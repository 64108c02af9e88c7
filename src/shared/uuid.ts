/** 16 bytes shaped as a UUID version 4 (RFC 9562): version and variant bits set, the rest kept. */
export function uuidV4FromBytes(source: Uint8Array): string {
  const bytes = Array.from(source.subarray(0, 16));
  bytes[6] = (bytes[6] & 0x0f) | 0x40;
  bytes[8] = (bytes[8] & 0x3f) | 0x80;
  const hex = bytes.map((byte) => byte.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Any UUID as this tool writes it (lower-case hex): the one pattern ids are checked against. */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
/** The version nibble's place in the text form: the first digit of the third group. */
const VERSION_AT = 14;

/** A UUID as a person may pass one back (either case). */
export function isUuid(text: string): boolean {
  return UUID_PATTERN.test(text.toLowerCase());
}

/**
 * A random UUID v4 re-marked as version 8 (RFC 9562's custom version): its 122 random bits
 * and its variant stay, so it is as unique as the v4 it came from and still a plain UUID.
 */
export function asVersion8(uuidV4: string): string {
  return `${uuidV4.slice(0, VERSION_AT)}8${uuidV4.slice(VERSION_AT + 1)}`;
}

export function isVersion8(text: string): boolean {
  return isUuid(text) && text[VERSION_AT] === '8';
}
