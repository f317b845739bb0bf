/**
 * Text ↔ token ids outside a generation (the server's /tokenize and /detokenize, library
 * callers counting or building exact prompts): the engine's tokenizer with the engine's
 * refusals, so a bad id is an invalid_request naming it rather than a RangeError.
 */
import type { Tokenizer } from "../text/tokenizer.js";
import { EngineError } from "./errors.js";
import type { TokenizeOptions } from "./types.js";

const bad = (param: string, message: string) => new EngineError("invalid_request", `${param}: ${message}`, { param });

function need(tok: Tokenizer | null, param: string): Tokenizer {
  if (!tok) throw bad(param, "this model directory has no tokenizer.json, so text cannot be tokenized; pass token ids instead");
  return tok;
}

/**
 * Token ids of `text`, special-token strings included. `addSpecialTokens` adds what the
 * tokenizer config puts around a text (HF's add_special_tokens: BOS when add_bos_token, EOS
 * when add_eos_token); V4's config sets neither, as its prompt encoder writes BOS itself.
 */
export function tokenizeText(tok: Tokenizer | null, text: string, options: TokenizeOptions = {}): number[] {
  const t = need(tok, "prompt");
  if (typeof text !== "string") throw bad("prompt", "must be a string");
  const ids = t.encode(text);
  if (options.addSpecialTokens === true) {
    if (t.config.add_bos_token === true) ids.unshift(t.specialIds.bos);
    if (t.config.add_eos_token === true) ids.push(t.specialIds.eos);
  }
  return ids;
}

/** Refuses anything but integer ids the vocabulary has, naming the first bad one (`tokens[i]`). */
function checkIds(t: Tokenizer, ids: readonly number[]): void {
  if (!Array.isArray(ids)) throw bad("tokens", "must be an array of token ids");
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id >= t.vocabSize || t.idToToken(id) === undefined) {
      throw bad(`tokens[${i}]`, `${JSON.stringify(id)} is not a token id of this vocabulary (integers 0 to ${t.vocabSize - 1})`);
    }
  });
}

/** The text of `ids`, special tokens written out (HF decode's default), so text → ids → text round-trips. */
export function detokenizeIds(tok: Tokenizer | null, ids: readonly number[]): string {
  const t = need(tok, "tokens");
  checkIds(t, ids);
  return t.decode(ids);
}

/** Each id's vocabulary entry as stored (the byte-level form, HF's convert_ids_to_tokens). */
export function tokenPieces(tok: Tokenizer | null, ids: readonly number[]): string[] {
  const t = need(tok, "tokens");
  checkIds(t, ids);
  return ids.map((id) => t.idToToken(id)!);
}

/** tokenizer_config.json fields that hold a special token, as a string or HF's AddedToken object. */
const TOKEN_FIELDS = ["bos_token", "eos_token", "pad_token", "unk_token"];

/**
 * The tokenizer's configuration as vLLM's GET /tokenizer_info gives it (HF's init kwargs less
 * the added-token table, its class, special tokens as strings; the server adds the served name
 * as name_or_path): what a client that tokenizes through the server (lm-eval's remote
 * tokenizer) reads first, for eos_token above all.
 */
export function tokenizerInfo(tok: Tokenizer | null): Record<string, unknown> {
  const t = need(tok, "tokenizer");
  const { added_tokens_decoder: _table, ...config } = t.config;
  const info: Record<string, unknown> = { ...config, tokenizer_class: config.tokenizer_class ?? "PreTrainedTokenizerFast" };
  for (const field of TOKEN_FIELDS) {
    const v = config[field];
    if (typeof v === "object" && v !== null && typeof (v as { content?: unknown }).content === "string") info[field] = (v as { content: string }).content;
  }
  if (typeof info.eos_token !== "string") info.eos_token = t.idToToken(t.specialIds.eos) ?? null;
  if (typeof info.bos_token !== "string") info.bos_token = t.idToToken(t.specialIds.bos) ?? null;
  return info;
}
