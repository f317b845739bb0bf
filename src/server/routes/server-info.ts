/**
 * The server-information routes of SGLang and vLLM, so that a router, dashboard or probe written
 * for those servers can front dsv4 replicas as they are:
 * - GET /get_model_info (SGLang; /model_info, its newer name): the model and tokenizer names;
 * - GET /get_server_info (/server_info): how the server runs (context length, backend, prompt
 *   encoder, drafter) and its scheduler's state now;
 * - GET /health_generate (SGLang's deep probe): one token generated through the engine, so a
 *   server that answers /health but whose model no longer runs is caught; 200 when the token
 *   comes back within HEALTH_GENERATE_TIMEOUT_MS, else 503 in the error envelope. Open without
 *   a key, like /health, and not billed.
 * - GET /version (vLLM): the package version.
 */
import type { FastifyInstance } from "fastify";
import type { EngineApi, ModelInfo } from "../../engine/types.js";
import { packageVersion } from "../../version.js";
import type { ServerContext } from "../context.js";
import { engineUnavailable } from "../errors.js";

/** SGLang's health check gives a generation 20 s. */
export const HEALTH_GENERATE_TIMEOUT_MS = 20_000;

/** SGLang's name for the drafter (its --speculative-algorithm values; DeepSeek's MTP is NEXTN there). */
function speculativeAlgorithm(model: ModelInfo): string | null {
  if (model.drafter === "mtp") return "NEXTN";
  if (model.drafter === "dspark") return "DSPARK";
  return null;
}

export function serverInfoRoutes(app: FastifyInstance, ctx: ServerContext): void {
  const version = packageVersion();
  const modelInfo = () => ({
    model_path: ctx.models.primary,
    tokenizer_path: ctx.models.primary,
    is_generation: true,
    preferred_sampling_params: null,
    weight_version: ctx.engine.model.release,
    served_model_names: ctx.models.names,
  });
  for (const path of ["/get_model_info", "/model_info"]) app.get(path, async () => modelInfo());

  const serverInfo = () => {
    const model = ctx.engine.model;
    const m = ctx.engine.metrics();
    return {
      version,
      engine: "dsv4",
      model_path: ctx.models.primary,
      served_model_name: ctx.models.primary,
      tokenizer_path: ctx.models.primary,
      context_length: model.contextLength,
      vocab_size: model.vocabSize,
      num_hidden_layers: model.layers,
      hidden_size: model.hiddenSize,
      backend: model.backend,
      release: model.release,
      encoding: model.encoding,
      speculative_algorithm: speculativeAlgorithm(model),
      // The ids drafts range over under --draft-vocab (SGLang's --speculative-token-map); null: all.
      draft_vocab: model.draftVocab ?? null,
      // SGLang lists one entry per data-parallel rank; dsv4 is one.
      internal_states: [{ active_sequences: m.active_sequences, queued_requests: m.queued_requests, steps_total: m.steps_total }],
    };
  };
  for (const path of ["/get_server_info", "/server_info"]) app.get(path, async () => serverInfo());

  // Open without a key, so probes arriving together share one generation rather than each
  // queueing its own on the engine.
  let probing: Promise<void> | null = null;
  app.get("/health_generate", async () => {
    const health = ctx.engine.health();
    if (!health.ok) throw engineUnavailable(`unhealthy: ${health.reason}`);
    probing ??= generateOneToken(ctx.engine).finally(() => (probing = null));
    await probing;
    return { status: "ok" };
  });

  app.get("/version", async () => ({ version }));
}

/**
 * One greedy token of a short prompt through the engine, or an engine_unavailable error. On a
 * busy server the probe's request may wait behind others: steps completing meanwhile count as
 * proof too (SGLang's check also accepts recent progress), so a long queue is not "unhealthy".
 */
async function generateOneToken(engine: EngineApi): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), HEALTH_GENERATE_TIMEOUT_MS);
  const stepsBefore = engine.metrics().steps_total;
  let poll: NodeJS.Timeout | undefined;
  const progress = new Promise<void>((resolve) => {
    poll = setInterval(() => {
      if (engine.metrics().steps_total > stepsBefore + 1) resolve();
    }, 100);
  });
  try {
    const generation = engine.generate({ prompt_tokens: engine.tokenize("Hi"), max_tokens: 1, temperature: 0, signal: abort.signal });
    const done = generation.result().then(() => undefined);
    await Promise.race([done, progress]);
    if (!abort.signal.aborted) generation.cancel();
    done.catch(() => undefined);
  } catch (err) {
    const why = abort.signal.aborted ? `no token within ${HEALTH_GENERATE_TIMEOUT_MS / 1000} s` : err instanceof Error ? err.message : String(err);
    throw engineUnavailable(`unhealthy: a one-token generation failed: ${why}`);
  } finally {
    clearTimeout(timer);
    clearInterval(poll);
  }
}
