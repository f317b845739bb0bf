/**
 * Who may share a prefix-cache entry. A cache hit is observable (usage reports
 * `prompt_cache_hit_tokens`, and a hit is faster), so a shared entry tells
 * its reader that someone sent the same prefix: an oracle for other tenants'
 * prompts. Entries are therefore salted with the tenant (the server derives it
 * from the API key) and the caller's user_id, except the blocks of a prefix
 * the operator declared shareable (shared-prefix.ts), which carry no salt so
 * every tenant reuses them.
 */

/** How the blocks of one request's prompt are salted: see saltOfBlock. */
export interface BlockSalts {
  /** Blocks that end at or before this many tokens carry salt "" (shared by all tenants). */
  sharedTokens: number;
  /** The salt of every later block ("" when the request has neither tenant nor user_id). */
  salt: string;
}

/**
 * The isolation salt for a tenant and user_id. Unambiguous (a JSON array, so ("a","bc") and
 * ("ab","c") differ), and "" when both are empty, so requests without keys or user ids keep
 * sharing one cache as before.
 */
export function requestSalt(tenant: string, userId: string): string {
  return tenant === "" && userId === "" ? "" : JSON.stringify([tenant, userId]);
}

/** A resolved request's block salts. */
export function blockSalts(req: { cacheSalt: string; sharedPrefixTokens: number }): BlockSalts {
  return { sharedTokens: req.sharedPrefixTokens, salt: req.cacheSalt };
}

/** The salt of the block that covers tokens up to `blockEnd` (exclusive). */
export function saltOfBlock(salts: BlockSalts, blockEnd: number): string {
  return blockEnd <= salts.sharedTokens ? "" : salts.salt;
}
