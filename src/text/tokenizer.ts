/**
 * The V4 tokenizer: byte-level BPE read from a model directory's
 * tokenizer.json, with added (special) tokens matched in the raw text before
 * pre-tokenisation. `encode` never adds BOS: the prompt encoder writes it.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { byteLevelToBytes, Utf8StreamDecoder } from "./byte-level.js";
import { buildDefaultTokenizerJson, V4_TOKENIZER_CONFIG, type TokenizerJson } from "./default-vocab.js";
import { BpeEncoder } from "./bpe.js";
import {
  ASSISTANT,
  BOS,
  DSML,
  EOS,
  LATEST_REMINDER,
  PAD,
  THINK_END,
  THINK_START,
  USER,
} from "./special-tokens.js";

/** Ids of the tokens the engine and parser care about; undefined when a vocabulary lacks one. */
export interface SpecialTokenIds {
  bos: number;
  eos: number;
  pad: number | undefined;
  user: number | undefined;
  assistant: number | undefined;
  thinkStart: number | undefined;
  thinkEnd: number | undefined;
  dsml: number | undefined;
  latestReminder: number | undefined;
}

/** Incremental detokeniser: `push` returns only complete UTF-8 text. */
export interface TokenStreamDecoder {
  push(id: number): string;
  flush(): string;
}

export interface DecodeOptions {
  /** Leave special tokens (BOS, EOS, `<think>`, placeholders…) out of the text. */
  skipSpecialTokens?: boolean;
}

export class Tokenizer {
  readonly vocabSize: number;
  readonly specialIds: SpecialTokenIds;
  /** The tokenizer_config.json object, as loaded (V4's when absent). */
  readonly config: Record<string, unknown>;

  private readonly idToTokenTable: (string | undefined)[];
  private readonly tokenToIdMap: Map<string, number>;
  private readonly bytesTable: Uint8Array[];
  private readonly specialSet: Set<number>;
  private readonly addedSet: Set<number>;
  private readonly encoder: BpeEncoder;

  constructor(json: TokenizerJson, config: Record<string, unknown> = { ...V4_TOKENIZER_CONFIG }) {
    if (json.model?.type !== "BPE") throw new Error(`unsupported tokenizer model type ${String(json.model?.type)}`);
    this.config = config;
    const modelVocab = new Map<string, number>();
    this.idToTokenTable = [];
    for (const [token, id] of Object.entries(json.model.vocab)) {
      modelVocab.set(token, id);
      this.idToTokenTable[id] = token;
    }
    this.tokenToIdMap = new Map(modelVocab);
    this.specialSet = new Set();
    const added = json.added_tokens ?? [];
    for (const t of added) {
      this.tokenToIdMap.set(t.content, t.id);
      this.idToTokenTable[t.id] = t.content;
      if (t.special) this.specialSet.add(t.id);
    }
    this.vocabSize = this.idToTokenTable.length;

    const encoder = new TextEncoder();
    const addedIds = new Set(added.map((t) => t.id));
    this.addedSet = addedIds;
    this.bytesTable = new Array(this.vocabSize);
    for (let id = 0; id < this.vocabSize; id++) {
      const token = this.idToTokenTable[id];
      if (token === undefined) this.bytesTable[id] = new Uint8Array(0);
      else this.bytesTable[id] = (!addedIds.has(id) && byteLevelToBytes(token)) || encoder.encode(token);
    }

    const id = (s: string) => this.tokenToIdMap.get(s);
    const bos = id(BOS);
    const eos = id(EOS);
    if (bos === undefined || eos === undefined) throw new Error("tokenizer.json lacks the BOS/EOS tokens of DeepSeek-V4");
    this.specialIds = {
      bos,
      eos,
      pad: id(PAD),
      user: id(USER),
      assistant: id(ASSISTANT),
      thinkStart: id(THINK_START),
      thinkEnd: id(THINK_END),
      dsml: id(DSML),
      latestReminder: id(LATEST_REMINDER),
    };
    this.encoder = new BpeEncoder(json, modelVocab, added.map((t) => [t.content, t.id] as const));
  }

  /** Token ids of `text`; special-token strings in the text become their ids; no BOS is added. */
  encode(text: string): number[] {
    return this.encoder.encode(text);
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (options.skipSpecialTokens && this.specialSet.has(id)) continue;
      const b = this.tokenBytes(id);
      parts.push(b);
      total += b.length;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return new TextDecoder().decode(all);
  }

  /** The raw bytes a token stands for (UTF-8 of the content for added tokens). */
  tokenBytes(id: number): Uint8Array {
    const b = this.bytesTable[id];
    if (b === undefined) throw new RangeError(`token id ${id} is outside the vocabulary (size ${this.vocabSize})`);
    return b;
  }

  idToToken(id: number): string | undefined {
    return this.idToTokenTable[id];
  }

  tokenToId(token: string): number | undefined {
    return this.tokenToIdMap.get(token);
  }

  /** An added token (tokenizer.json's added_tokens, special or not), outside the BPE vocabulary. */
  isAdded(id: number): boolean {
    return this.addedSet.has(id);
  }

  isSpecial(id: number): boolean {
    return this.specialSet.has(id);
  }

  createStreamDecoder(options: DecodeOptions = {}): TokenStreamDecoder {
    const utf8 = new Utf8StreamDecoder();
    return {
      push: (id: number) => (options.skipSpecialTokens && this.specialSet.has(id) ? "" : utf8.push(this.tokenBytes(id))),
      flush: () => utf8.flush(),
    };
  }
}

/** Loads `tokenizer.json` (+ `tokenizer_config.json` when present) from a model directory. */
export async function loadTokenizer(modelDir: string): Promise<Tokenizer> {
  const jsonPath = join(modelDir, "tokenizer.json");
  const configPath = join(modelDir, "tokenizer_config.json");
  const jsonText = await readFile(jsonPath, "utf8").catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${jsonPath}: ${err.code ?? err.message}`);
  });
  let config: Record<string, unknown> | undefined;
  try {
    config = parseJsonObject(configPath, await readFile(configPath, "utf8"));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
  }
  const json = parseJsonObject(jsonPath, jsonText) as unknown as TokenizerJson;
  try {
    return new Tokenizer(json, config);
  } catch (err) {
    // Say which file: a vocabulary that does not build is the file's fault, not the caller's.
    throw new Error(`${jsonPath}: not a usable tokenizer (${(err as Error).message})`);
  }
}

/** A JSON object from a file's text; errors name the file. */
function parseJsonObject(path: string, text: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new Error(`${path}: not a JSON object`);
  return v as Record<string, unknown>;
}

let defaultTokenizer: Tokenizer | undefined;

/** The embedded V4 vocabulary (spec §E.3 fallback), built once per process. */
export function loadDefaultTokenizer(): Tokenizer {
  defaultTokenizer ??= new Tokenizer(buildDefaultTokenizerJson());
  return defaultTokenizer;
}

export { writeDefaultTokenizerFiles } from "./default-vocab.js";
