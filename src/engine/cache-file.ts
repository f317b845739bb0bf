/**
 * One disk cache entry as a self-checking file, whatever the entry holds:
 * a JSON header (the caller's object) and a list of binary parts, with a
 * SHA-256 over everything after the checksum. The reader trusts nothing in
 * the file: every length is compared with the real file size before anything
 * is allocated from it, and every failure is a value, never an exception, so
 * a damaged cache costs a miss and never a request.
 *
 * Layout (little-endian):
 *
 *   0   magic "DSV4ENT1"                        8 bytes
 *   8   u32 envelope JSON length  (E)
 *   12  u32 reserved, 0                          keeps what follows 8-aligned
 *   16  SHA-256 of bytes [48, end of file)      32 bytes
 *   48  envelope JSON {"header":…,"parts":[byte lengths]}   E bytes
 *       zero padding to a multiple of 8, then each part, each padded to a multiple of 8
 *
 * Parts start 8-aligned in the file, so a later reader may map them as
 * Float64Arrays without copying. Writes go to a temporary name in the same
 * folder and are renamed into place: readers see a whole file or none.
 */
import { createHash, randomBytes } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { rename, unlink, writeFile } from "node:fs/promises";

const MAGIC = Buffer.from("DSV4ENT1", "latin1");
const PREAMBLE = 48;
const CHECKSUM_AT = 16;
/** No real header comes near this; a larger length field is damage, refused before any allocation. */
export const MAX_ENVELOPE_BYTES = 16 << 20;

export interface CacheEntry {
  header: Record<string, unknown>;
  /** Views into one buffer holding the file, in the order they were written. */
  payload: Uint8Array[];
}

/** Why a file is not a usable entry: the file and the first check that failed. */
export interface CacheEntryError {
  error: string;
}

const pad8 = (n: number) => (8 - (n % 8)) % 8;

/** Total file size of an entry with an envelope of `envelopeBytes` and these part lengths. */
function fileSize(envelopeBytes: number, parts: readonly number[]): number {
  let n = PREAMBLE + envelopeBytes;
  n += pad8(n);
  for (const p of parts) n += p + pad8(p);
  return n;
}

/**
 * Writes an entry atomically (temporary file + rename). Rejects on I/O errors
 * (disk full, folder gone); the temporary file is removed then.
 */
export async function writeEntry(path: string, header: object, payload: readonly Uint8Array[]): Promise<void> {
  const envelope = Buffer.from(JSON.stringify({ header, parts: payload.map((p) => p.byteLength) }), "utf8");
  if (envelope.length > MAX_ENVELOPE_BYTES) throw new Error(`${path}: entry header is ${envelope.length} bytes, more than the ${MAX_ENVELOPE_BYTES} a reader accepts`);
  const zeros = Buffer.alloc(8);
  const body: Uint8Array[] = [envelope, zeros.subarray(0, pad8(PREAMBLE + envelope.length))];
  for (const p of payload) body.push(p, zeros.subarray(0, pad8(p.byteLength)));
  const hash = createHash("sha256");
  for (const b of body) hash.update(b);
  const preamble = Buffer.alloc(PREAMBLE);
  MAGIC.copy(preamble, 0);
  preamble.writeUInt32LE(envelope.length, 8);
  hash.digest().copy(preamble, CHECKSUM_AT);

  const tmp = `${path}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    // One buffer: writeFile loops until all of it is written (a writev of many parts may stop short).
    await writeFile(tmp, Buffer.concat([preamble, ...body]), { flag: "wx" });
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/**
 * Exactly `length` bytes at `position`, or null when the file ends first. The buffer is its own
 * allocation (never a slice of Node's pool), so offsets in it keep the file's 8-byte alignment.
 */
function readExact(fd: number, length: number, position: number): Buffer | null {
  const buf = Buffer.allocUnsafeSlow(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buf, done, Math.min(length - done, 1 << 30), position + done);
    if (n === 0) return null;
    done += n;
  }
  return buf;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

interface Envelope {
  header: Record<string, unknown>;
  parts: number[];
  /** The preamble (magic, envelope length, checksum) and the file's size. */
  pre: Buffer;
  envLen: number;
  size: number;
}

/**
 * Opens `path` (never through a symlink) and checks everything up to the envelope: a regular
 * file, the magic, a bounded envelope length, JSON of the {header, parts} shape, and the size
 * those parts declare against the file's. `then` continues with the open file.
 */
function withEnvelope<T>(path: string, then: (fd: number, env: Envelope, fail: (why: string) => CacheEntryError) => T | CacheEntryError): T | CacheEntryError {
  const fail = (why: string): CacheEntryError => ({ error: `cache entry ${path}: ${why}` });
  let fd: number;
  try {
    // O_NOFOLLOW: a cache file is never a symlink; one in its place is refused, not followed.
    // O_NONBLOCK: a FIFO in its place opens at once (and is refused below) instead of blocking start-up.
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return fail(code === "ELOOP" ? "is a symbolic link, not a cache file" : `cannot open (${code ?? (err as Error).message})`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) return fail(st.isDirectory() ? "is a directory, not a cache file" : "is not a regular file");
    const size = st.size;
    if (size < PREAMBLE) return fail(`${size} bytes, shorter than the ${PREAMBLE}-byte preamble (truncated or empty)`);
    const pre = readExact(fd, PREAMBLE, 0);
    if (!pre) return fail("shorter than its preamble (truncated while reading)");
    if (!pre.subarray(0, 8).equals(MAGIC)) return fail("wrong magic: not a dsv4 cache entry (or from an incompatible version)");
    const envLen = pre.readUInt32LE(8);
    if (envLen === 0 || envLen > MAX_ENVELOPE_BYTES || envLen > size - PREAMBLE) {
      return fail(`header length ${envLen} does not fit a ${size}-byte file (at most ${Math.min(MAX_ENVELOPE_BYTES, size - PREAMBLE)})`);
    }
    const envBytes = readExact(fd, envLen, PREAMBLE);
    if (!envBytes) return fail("truncated inside its header");
    let envelope: unknown;
    try {
      envelope = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(envBytes));
    } catch (err) {
      return fail(`header is not valid JSON (${(err as Error).message})`);
    }
    if (!isObject(envelope) || !isObject(envelope.header) || !Array.isArray(envelope.parts)) return fail("header does not have the {header, parts} shape");
    const parts = envelope.parts as unknown[];
    if (!parts.every((p): p is number => Number.isSafeInteger(p) && (p as number) >= 0)) return fail("part lengths are not non-negative integers");
    const expected = fileSize(envLen, parts);
    if (expected !== size) {
      return fail(`${size} bytes, but its header declares ${expected} (${size < expected ? "truncated" : "extra bytes appended"})`);
    }
    return then(fd, { header: envelope.header, parts, pre, envLen, size }, fail);
  } catch (err) {
    return fail(`read failed (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads and checks an entry. Never throws: a missing, truncated, padded, altered or foreign
 * file, a directory or symlink in its place, all come back as `{ error }` naming the file and
 * the failed check. `expect` sees the header last (after the checksum) and returns why it is
 * not an entry the caller can use, or null (e.g. part lengths the model's shapes need).
 */
export function readEntry(path: string, expect: (header: Record<string, unknown>) => string | null = () => null): CacheEntry | CacheEntryError {
  return withEnvelope(path, (fd, env, fail) => {
    // Size now agrees with what the header declares: reading the rest allocates no more than the file holds.
    const rest = readExact(fd, env.size - PREAMBLE, PREAMBLE);
    if (!rest) return fail("truncated while reading (the file shrank)");
    const sum = createHash("sha256").update(rest).digest();
    if (!sum.equals(env.pre.subarray(CHECKSUM_AT, CHECKSUM_AT + 32))) return fail("checksum mismatch: the file is damaged");
    const why = expect(env.header);
    if (why !== null) return fail(why);
    const payload: Uint8Array[] = [];
    let off = env.envLen + pad8(PREAMBLE + env.envLen);
    for (const p of env.parts) {
      payload.push(new Uint8Array(rest.buffer, rest.byteOffset + off, p));
      off += p + pad8(p);
    }
    return { header: env.header, payload };
  });
}

/**
 * Just an entry's header, for indexing a cache folder at start-up without reading (or
 * checksumming) every payload: the same checks as readEntry up to the header, and the
 * declared size against the file's. The payload is checked when the entry is read.
 */
export function readEntryHeader(path: string): { header: Record<string, unknown>; bytes: number } | CacheEntryError {
  return withEnvelope(path, (_fd, env) => ({ header: env.header, bytes: env.size }));
}

/** Narrows readEntry's result. */
export function isEntryError(r: CacheEntry | CacheEntryError): r is CacheEntryError {
  return "error" in r;
}
