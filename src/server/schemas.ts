/**
 * Request bodies of the OpenAI-format routes (spec §A.2, §A.3, §A.7), as zod
 * schemas: the JSON types a field may hold. Unknown top-level fields are
 * stripped, as the hosted service ignores them. Value rules that DeepSeek
 * answers with a 400 (ranges, names, combinations) live in chat-rules.ts.
 */
import { z } from "zod";

const nullish = <T extends z.ZodType>(schema: T) => schema.nullish();
const num = () => nullish(z.number({ error: "expected a number" }));
const int = () => nullish(z.int({ error: "expected an integer" }));
const bool = () => nullish(z.boolean({ error: "expected a boolean" }));
const str = () => nullish(z.string({ error: "expected a string" }));

const contentPart = z.looseObject({ type: z.string({ error: "expected a string" }), text: z.string().optional() });
const content = z.union([z.string(), z.array(contentPart)], { error: "expected a string or an array of content parts" });

const toolCall = z.looseObject({
  id: str(),
  type: str(),
  function: z.looseObject({
    name: z.string({ error: "expected a string" }),
    arguments: nullish(z.union([z.string(), z.record(z.string(), z.unknown())], { error: "expected a JSON string" })),
  }),
});

export const messageSchema = z.looseObject({
  role: z.string({ error: "expected a string" }),
  content: nullish(content),
  name: str(),
  reasoning_content: str(),
  tool_calls: nullish(z.array(toolCall, { error: "expected a sequence of tool calls" })),
  tool_call_id: str(),
  prefix: bool(),
});
export type RequestMessage = z.output<typeof messageSchema>;

const functionTool = z.looseObject({
  type: z.string({ error: "expected a string" }),
  function: z.looseObject({
    name: z.string({ error: "expected a string" }),
    description: str(),
    parameters: nullish(z.record(z.string(), z.unknown(), { error: "expected a JSON Schema object" })),
    strict: bool(),
  }),
});
export type RequestTool = z.output<typeof functionTool>;

const toolChoice = z.union(
  [z.string(), z.looseObject({ type: z.string(), function: z.looseObject({ name: z.string() }) })],
  { error: "expected \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"function\":{\"name\":…}}" },
);

const stopTokenIds = nullish(z.array(z.int({ error: "expected a token id" }), { error: "expected a sequence of token ids" }));

const stop = z.union([z.string(), z.array(z.string())], { error: "expected a string or a sequence of strings" });

// continuous_usage_stats: vLLM's, the usage so far on every chunk (running-usage.ts).
const streamOptions = z.looseObject({ include_usage: bool(), continuous_usage_stats: bool() }, { error: "expected struct StreamOptions" });

export const chatRequestSchema = z.object({
  model: z.string({ error: "expected a string" }),
  messages: z.array(messageSchema, { error: "expected a sequence of messages" }),
  thinking: nullish(z.looseObject({ type: z.string({ error: "expected a string" }) }, { error: "expected struct ThinkingOptions" })),
  reasoning_effort: str(),
  max_tokens: int(),
  max_completion_tokens: int(),
  response_format: nullish(z.looseObject({ type: z.string({ error: "expected a string" }) }, { error: "expected struct ResponseFormat" })),
  stop: nullish(stop),
  stream: bool(),
  stream_options: nullish(streamOptions),
  temperature: num(),
  top_p: num(),
  tools: nullish(z.array(functionTool, { error: "expected a sequence of tools" })),
  tool_choice: nullish(toolChoice),
  logprobs: bool(),
  top_logprobs: int(),
  user_id: str(),
  frequency_penalty: num(),
  presence_penalty: num(),
  n: int(),
  // Not DeepSeek fields, but clients send them (seed by LangChain) and they make runs reproducible.
  seed: int(),
  top_k: int(),
  min_p: num(),
  /** dsv4 extension: cap on reasoning tokens (the engine closes the reasoning when reached). */
  reasoning_budget: int(),
  /** vLLM's field: scheduling priority under --scheduling-policy priority (lower first). */
  priority: int(),
  /** vLLM's (benchmark clients send them): no end of sentence before min_tokens, or at all. */
  min_tokens: int(),
  ignore_eos: bool(),
  /** vLLM's: token ids that end the answer; the stop string kept in the answer. */
  stop_token_ids: stopTokenIds,
  include_stop_str_in_output: bool(),
  /**
   * vLLM's template switches, as clients of a vLLM-served DeepSeek send them:
   * {"thinking": bool} (or Qwen's "enable_thinking") and "reasoning_effort", used when the
   * DeepSeek fields are absent.
   */
  chat_template_kwargs: nullish(z.looseObject({ thinking: bool(), enable_thinking: bool(), reasoning_effort: str() }, { error: "expected an object" })),
});
export type ChatRequest = z.output<typeof chatRequestSchema>;

export const fimRequestSchema = z.object({
  model: z.string({ error: "expected a string" }),
  prompt: z.string({ error: "expected a string" }),
  suffix: str(),
  max_tokens: int(),
  echo: bool(),
  logprobs: int(),
  stop: nullish(stop),
  stream: bool(),
  stream_options: nullish(streamOptions),
  temperature: num(),
  top_p: num(),
  frequency_penalty: num(),
  presence_penalty: num(),
  n: int(),
  seed: int(),
  user_id: str(),
  priority: int(),
  min_tokens: int(),
  ignore_eos: bool(),
  stop_token_ids: stopTokenIds,
  include_stop_str_in_output: bool(),
});
export type FimRequest = z.output<typeof fimRequestSchema>;

const tokenIds = z.array(z.number({ error: "expected a token id" }), { error: "expected a sequence of token ids" });

/**
 * vLLM's /v1/completions (OpenAI's legacy text completion): the FIM fields with a prompt that
 * may be token ids, or a list of one text or one id list; vLLM's top_k, min_p,
 * add_special_tokens, return_token_ids and cache_salt (what dsv4 gateway sends a vLLM
 * upstream).
 */
export const textCompletionSchema = fimRequestSchema.extend({
  prompt: z.union([z.string(), tokenIds, z.array(z.string()), z.array(tokenIds)], { error: "expected a string, token ids, or a list of one of them" }),
  top_k: int(),
  min_p: num(),
  add_special_tokens: bool(),
  /** vLLM's (≥ 0.10.2): the generated ids on each choice (`token_ids`), and the prompt's (`prompt_token_ids`). */
  return_token_ids: bool(),
  /** vLLM's prefix-cache salt: requests with different salts share no cached prefix. */
  cache_salt: str(),
});
export type TextCompletionRequest = z.output<typeof textCompletionSchema>;

/**
 * POST /tokenize with a conversation (vLLM's TokenizeChatRequest): the chat fields that shape
 * the prompt (chat_template_kwargs included), plus vLLM's tokenize switches.
 */
export const tokenizeChatSchema = chatRequestSchema.extend({
  model: str(),
  add_generation_prompt: bool(),
  continue_final_message: bool(),
  add_special_tokens: bool(),
  return_token_strs: bool(),
});
export type TokenizeChatRequest = z.output<typeof tokenizeChatSchema>;

/** POST /tokenize with a text (vLLM's TokenizeCompletionRequest). */
export const tokenizePromptSchema = z.object({
  model: str(),
  prompt: z.string({ error: "expected a string" }),
  add_special_tokens: bool(),
  return_token_strs: bool(),
});

/** POST /detokenize (vLLM's DetokenizeRequest). */
export const detokenizeSchema = z.object({
  model: str(),
  tokens: z.array(z.int({ error: "expected an integer" }), { error: "expected a sequence of token ids" }),
});
