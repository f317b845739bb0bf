/**
 * `model.safetensors.index.json` read as untrusted input. The index names the shard
 * files the loader opens, so its names are checked before any is opened: plain file
 * names inside the model directory (no separators, no "..", not absolute), each a
 * regular file there (a symlink to one is fine: the Hugging Face cache links its
 * snapshot files to blobs elsewhere).
 */
import { statSync } from "node:fs";
import { CheckpointFormatError } from "./safetensors.js";

/** Tensor name → shard file name, every value a checked plain file name. */
export type WeightMap = Map<string, string>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Why `name` cannot be a shard's file name in the model directory, or null. */
export function shardNameError(name: string): string | null {
  if (name.length === 0) return "is empty";
  if (name.length > 255) return `is ${name.length} characters, longer than a file name can be`;
  if (/[/\\]/.test(name)) return "contains a path separator: shards must be plain file names inside the model directory";
  if (name === "." || name === "..") return "is not a file name";
  if (name.includes("\0")) return "contains a NUL character";
  return null;
}

/** The index's weight_map, checked: an object of tensor name → plain shard file name. */
export function parseIndex(indexPath: string, text: string): WeightMap {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new CheckpointFormatError(`not valid JSON (${(err as Error).message})`, indexPath);
  }
  if (!isObject(raw)) throw new CheckpointFormatError("not a JSON object", indexPath);
  const map = raw.weight_map;
  if (!isObject(map)) {
    throw new CheckpointFormatError(`"weight_map" must be an object of tensor name → shard file name, got ${map === undefined ? "nothing" : Array.isArray(map) ? "an array" : JSON.stringify(map).slice(0, 40)}`, indexPath);
  }
  const out: WeightMap = new Map();
  for (const [tensor, shard] of Object.entries(map)) {
    if (typeof shard !== "string") {
      throw new CheckpointFormatError(`"weight_map" entry must be a shard file name (a string), got ${JSON.stringify(shard)?.slice(0, 40)}`, indexPath, tensor);
    }
    const why = shardNameError(shard);
    if (why) throw new CheckpointFormatError(`"weight_map" names shard ${JSON.stringify(shard.slice(0, 80))}, which ${why}`, indexPath, tensor);
    out.set(tensor, shard);
  }
  if (out.size === 0) throw new CheckpointFormatError('"weight_map" is empty: the index lists no tensors', indexPath);
  return out;
}

/** Throws unless `path` is (or links to) a regular file; `what` says where it was named. */
export function requireRegularFile(path: string, what: string, tensor?: string): void {
  let st;
  try {
    st = statSync(path); // follows symlinks: a Hugging Face snapshot links to its blob
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new CheckpointFormatError(code === "ENOENT" ? `${what} is missing (or a symlink to nothing)` : `${what} cannot be read (${code ?? (err as Error).message})`, path, tensor);
  }
  if (!st.isFile()) throw new CheckpointFormatError(`${what} is ${st.isDirectory() ? "a directory" : "not a regular file"}, not a safetensors file`, path, tensor);
}

