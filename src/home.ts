/**
 * dsv4's own folder for what it writes when the user names no place: the
 * default model, remembered shard digests. Shared by the engine and the CLI.
 */
import { homedir } from "node:os";
import { join } from "node:path";

/** $DSV4_HOME, else $XDG_CACHE_HOME/dsv4, else ~/.cache/dsv4. */
export function dsv4Home(): string {
  if (process.env.DSV4_HOME) return process.env.DSV4_HOME;
  const cache = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(cache, "dsv4");
}
