/**
 * POST /tokenize and /detokenize (also under /v1), GET /tokenizer_info: vLLM's and SGLang's token utilities, on the
 * served model's own tokenizer and prompt encoder. A conversation's count is exactly what the
 * same body sent to /chat/completions reports as usage.prompt_tokens: it goes through the
 * chat route's preparation and the engine's prompt resolution, not a copy of them.
 */
import type { FastifyInstance } from "fastify";
import { EngineError } from "../../engine/errors.js";
import { prepareChat } from "../chat-request.js";
import type { ServerContext } from "../context.js";
import { invalidRequest } from "../errors.js";
import { detokenizeSchema, tokenizeChatSchema, tokenizePromptSchema, type TokenizeChatRequest } from "../schemas.js";
import { parseWith } from "../validate.js";

interface TokenizeResponse {
  count: number;
  max_model_len: number;
  tokens: number[];
  token_strs: string[] | null;
}

export function tokenizeRoutes(app: FastifyInstance, ctx: ServerContext): void {
  // vLLM's: the tokenizer's configuration, what lm-eval's remote tokenizer reads before /tokenize.
  app.get("/tokenizer_info", async () => ({ ...ctx.engine.tokenizerInfo(), name_or_path: ctx.models.primary }));
  for (const prefix of ["", "/v1"]) {
    app.post(`${prefix}/tokenize`, async (request) => tokenize(ctx, request.body));
    app.post(`${prefix}/detokenize`, async (request) => {
      const body = parseWith(detokenizeSchema, request.body);
      checkModel(ctx, body.model);
      return { prompt: ctx.engine.detokenize(body.tokens) };
    });
  }
}

function checkModel(ctx: ServerContext, model: string | null | undefined): void {
  if (model !== null && model !== undefined) ctx.models.resolve(model);
}

function tokenize(ctx: ServerContext, raw: unknown): TokenizeResponse {
  const has = (key: string) => typeof raw === "object" && raw !== null && !Array.isArray(raw) && key in raw;
  if (!has("messages") && !has("prompt")) throw invalidRequest("body", 'give "prompt" (a text to tokenize) or "messages" (a conversation, rendered as /chat/completions renders it)');
  if (has("messages") && has("prompt")) throw invalidRequest("body", 'give either "prompt" or "messages", not both');
  const maxModelLen = ctx.engine.model.contextLength;
  let tokens: number[];
  let pieces: boolean;
  if (has("messages")) {
    const body = parseWith(tokenizeChatSchema, raw);
    checkModel(ctx, body.model);
    tokens = conversationTokens(ctx, body);
    pieces = body.return_token_strs === true;
  } else {
    const body = parseWith(tokenizePromptSchema, raw);
    checkModel(ctx, body.model);
    tokens = ctx.engine.tokenize(body.prompt, { addSpecialTokens: body.add_special_tokens ?? true });
    pieces = body.return_token_strs === true;
    if (tokens.length > maxModelLen) {
      throw new EngineError(
        "context_length_exceeded",
        `This model's maximum context length is ${maxModelLen} tokens. However, your prompt has ${tokens.length} tokens. Please reduce the length of the prompt.`,
        { param: "prompt" },
      );
    }
  }
  return { count: tokens.length, max_model_len: maxModelLen, tokens, token_strs: pieces ? ctx.engine.tokenPieces(tokens) : null };
}

/** The prompt ids /chat/completions would prefill for this body (with vLLM's template switches). */
function conversationTokens(ctx: ServerContext, body: TokenizeChatRequest): number[] {
  // As vLLM: only both given as true is a contradiction (the generation prompt defaults to on).
  if (body.continue_final_message === true && body.add_generation_prompt === true) {
    throw invalidRequest("continue_final_message", "cannot set both continue_final_message and add_generation_prompt to true: continuing the last assistant message opens no new answer");
  }
  let messages = body.messages;
  if (body.continue_final_message === true) {
    const last = messages.at(-1);
    if (last?.role !== "assistant") {
      throw invalidRequest("continue_final_message", `continue_final_message continues the last message, which must be an assistant message (it is ${last ? JSON.stringify(last.role) : "absent"})`);
    }
    messages = [...messages.slice(0, -1), { ...last, prefix: true }];
  }
  const prepared = prepareChat(
    {
      ...body,
      model: body.model ?? ctx.models.primary,
      messages,
      // Counting asks for no output: the one token only makes the context check "the prompt fits".
      max_tokens: 1,
      max_completion_tokens: undefined,
      stream: false,
    },
    // A prefix (continue_final_message) is a /beta feature of the chat route; counting one is not.
    { beta: true, samplingInThinking: ctx.samplingInThinking, maxOutputTokens: ctx.maxOutputTokens, strictApi: false },
  );
  const tokens = ctx.engine.promptTokens({ ...prepared.request, add_generation_prompt: body.add_generation_prompt ?? true });
  // What HF's add_special_tokens adds around the rendered text; the encoder wrote BOS already
  // (V4's tokenizer config adds nothing, so this is the same ids there).
  return body.add_special_tokens === true ? ctx.engine.tokenize(ctx.engine.detokenize(tokens), { addSpecialTokens: true }) : tokens;
}
