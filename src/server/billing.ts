/**
 * Budgets reserved before dispatch, settled after (issue 16): a request on a key reserves its
 * worst-case cost (every prompt token at the cache-miss price, every allowed output token at the
 * output price) in the ledger before the engine sees it, and a request that does not fit is
 * refused with DeepSeek's 402. When it ends the reservation is settled with its real cost, the
 * very number its response reports as usage.cost (the finish event's usage under the prices of
 * its arrival, usage.ts); a request that fails or is abandoned pays what was generated before it
 * stopped (its prompt once prefill happened, its generated tokens) and the rest is released.
 * Every reserved request leaves exactly one ledger row.
 */
import type { FastifyRequest } from "fastify";
import { DEFAULT_MAX_TOKENS } from "../engine/request.js";
import type { GenerateRequest, GenerationEvent } from "../engine/types.js";
import type { Ledger } from "../ledger/types.js";
import type { ServerContext } from "./context.js";
import { authenticationFails, insufficientBalance } from "./errors.js";
import { StartedGeneration } from "./generation.js";
import { pricesAt, type PriceTable } from "./prices.js";
import { costOf } from "./usage.js";

declare module "fastify" {
  interface FastifyRequest {
    /** The request's open reservation (keys on, a generation started). */
    tab: Tab | undefined;
  }
}

/** A generation that knows which upstream served it (the gateway's; gateway/upstream-engine.ts). */
interface RoutedGeneration {
  readonly upstream?: string | null;
}

/** The most a request can cost: all prompt tokens missing the cache, all of max_tokens generated. */
export function worstCaseUsd(promptTokens: number, maxTokens: number, prices: PriceTable): number {
  return costOf({ prompt_cache_hit_tokens: 0, prompt_cache_miss_tokens: promptTokens, completion_tokens: maxTokens }, prices);
}

/**
 * Starts a generation the way every route does (StartedGeneration.start), with the request's
 * budget reserved first when keys are on. Throws 402 when the worst case does not fit.
 */
export async function startGeneration(ctx: ServerContext, request: FastifyRequest, generate: GenerateRequest, model: string): Promise<StartedGeneration> {
  const key = request.apiKey;
  if (!ctx.ledger || !key) return StartedGeneration.start(ctx.engine, generate, ctx.firstEventWaitMs);
  const prices = pricesAt(ctx.prices, request.receivedAt);
  let amount = 0;
  let promptTokens: number | null = null;
  // Unlimited keys hold nothing, so their prompt need not be encoded twice.
  if (key.budgetUsd !== null) {
    promptTokens = ctx.engine.promptTokens(generate).length;
    const room = Math.max(1, ctx.engine.model.contextLength - promptTokens);
    amount = worstCaseUsd(promptTokens, Math.min(generate.max_tokens ?? DEFAULT_MAX_TOKENS, room), prices);
  }
  const held = await ctx.ledger.reserve(key.id, amount);
  if (!held.ok) throw held.reason === "insufficient_balance" ? insufficientBalance() : authenticationFails();
  const tab = new Tab(ctx.ledger, ctx.settling, held.reservationId, { request, keyId: key.id, model, prices, promptTokens });
  request.tab = tab;
  try {
    const started = await StartedGeneration.start(ctx.engine, generate, ctx.firstEventWaitMs, (e) => tab.observe(e));
    tab.generation = started.generation as RoutedGeneration;
    return started;
  } catch (err) {
    tab.end("error");
    throw err;
  }
}

/** One request's reservation, from reserve to its single settlement. */
export class Tab {
  generation: RoutedGeneration | undefined;
  private settled: Promise<void> | undefined;
  private prompt = 0;
  private cached = 0;
  private completion = 0;
  private prefilled = false;

  constructor(
    private readonly ledger: Ledger,
    private readonly settling: Settling,
    private readonly reservationId: string,
    private readonly info: { request: FastifyRequest; keyId: string; model: string; prices: PriceTable; promptTokens: number | null },
  ) {
    settling.opened(this);
  }

  get done(): Promise<void> {
    return this.settled ?? Promise.resolve();
  }

  get open(): boolean {
    return this.settled === undefined;
  }

  /** Counts what the generation has consumed; its finish settles at the response's own cost. */
  observe(e: GenerationEvent): void {
    if (e.type === "prefill") {
      this.prefilled = true;
      this.prompt = e.total;
      this.cached = e.cached;
    } else if (e.type === "token") {
      this.completion++;
    } else if (e.type === "finish") {
      const u = e.usage;
      this.write(u.prompt_tokens, u.prompt_cache_hit_tokens, u.completion_tokens, costOf(u, this.info.prices), e.finish_reason);
    }
  }

  /** Ends a request that had no finish: it pays its prompt (once processed) and the tokens generated. */
  end(reason: "error" | "cancelled"): void {
    if (!this.open) return;
    const prompt = this.prefilled ? this.prompt : this.completion > 0 ? (this.info.promptTokens ?? 0) : 0;
    const hit = Math.min(this.cached, prompt);
    const cost = costOf({ prompt_cache_hit_tokens: hit, prompt_cache_miss_tokens: prompt - hit, completion_tokens: this.completion }, this.info.prices);
    this.write(prompt, hit, this.completion, cost, reason);
  }

  private write(prompt: number, hit: number, completion: number, costUsd: number, finishReason: string): void {
    if (!this.open) return;
    const r = this.info.request;
    this.settled = this.ledger
      .settle(this.reservationId, {
        requestId: r.id,
        keyId: this.info.keyId,
        created: r.receivedAt / 1000,
        model: this.info.model,
        promptTokens: prompt,
        promptCacheHitTokens: hit,
        completionTokens: completion,
        costUsd,
        latencyMs: Math.round((performance.now() - r.startedAt) * 1000) / 1000,
        upstream: this.generation?.upstream ?? null,
        finishReason,
      })
      .catch((err: Error) => {
        r.log.error({ err }, "the ledger could not settle a request");
        process.stderr.write(`dsv4: ledger: settling request ${r.id} failed: ${err.message}\n`);
      });
    this.settling.writes(this, this.settled);
  }
}

/** The tabs still open and the settlements still being written, so reads and shutdown can wait for them. */
export class Settling {
  private readonly openTabs = new Set<Tab>();
  private readonly writing = new Set<Promise<void>>();

  opened(tab: Tab): void {
    this.openTabs.add(tab);
  }

  /** Called by a tab when it settles. */
  writes(tab: Tab, write: Promise<void>): void {
    this.openTabs.delete(tab);
    this.writing.add(write);
    void write.finally(() => this.writing.delete(write));
  }

  /** Waits for every settlement begun so far (requests still running are not waited for). */
  async flush(): Promise<void> {
    await Promise.all([...this.writing]);
  }

  /** Ends every tab still open (the server is closing) and waits for all writes. */
  async closeAll(): Promise<void> {
    for (const t of [...this.openTabs]) t.end("cancelled");
    await this.flush();
  }
}
