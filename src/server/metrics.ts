/**
 * Server counters and the Prometheus text exposition for GET /metrics: the
 * engine's counters plus HTTP requests, cost, and rates (tokens/s, cache hit
 * rate) that a dashboard wants without writing PromQL.
 */
import type { HistogramSnapshot } from "../engine/histogram.js";
import type { EngineMetrics } from "../engine/types.js";

const RATE_WINDOW_MS = 10_000;

export class ServerStats {
  private readonly requests = new Map<string, number>();
  costUsd = 0;
  inFlight = 0;
  disconnects = 0;
  private samples: Array<{ t: number; generated: number; prompt: number }> = [];

  request(route: string, status: number): void {
    const key = `${route}\u0000${status}`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** Records the engine's token counters; called on a timer so rates cover a fixed window. */
  sample(m: EngineMetrics, now = Date.now()): void {
    this.samples.push({ t: now, generated: m.generated_tokens_total, prompt: m.prompt_tokens_total });
    while (this.samples.length > 2 && now - this.samples[1]!.t >= RATE_WINDOW_MS) this.samples.shift();
  }

  rates(m: EngineMetrics, now = Date.now()): { generated: number; prompt: number } {
    const first = this.samples[0];
    if (!first || now - first.t < 1) return { generated: 0, prompt: 0 };
    const seconds = (now - first.t) / 1000;
    return { generated: (m.generated_tokens_total - first.generated) / seconds, prompt: (m.prompt_tokens_total - first.prompt) / seconds };
  }

  requestCounts(): Array<{ route: string; status: number; count: number }> {
    return [...this.requests].map(([key, count]) => {
      const [route, status] = key.split("\u0000");
      return { route: route!, status: Number(status), count };
    });
  }
}

type Kind = "counter" | "gauge" | "histogram";

class Exposition {
  private readonly lines: string[] = [];

  metric(name: string, kind: Kind, help: string, value: number, labels?: Record<string, string | number>): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
    this.lines.push(`${name}${labelText(labels)} ${formatValue(value)}`);
    return this;
  }

  /** A metric the engine may not have (absent: nothing written). */
  optional(name: string, kind: Kind, help: string, value: number | undefined): this {
    return value === undefined ? this : this.metric(name, kind, help, value);
  }

  family(name: string, kind: Kind, help: string, rows: Array<{ labels: Record<string, string | number>; value: number }>): this {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${kind}`);
    for (const row of rows) this.lines.push(`${name}${labelText(row.labels)} ${formatValue(row.value)}`);
    return this;
  }

  /** A Prometheus histogram from bucket bounds and per-bucket counts (the last one above every bound); absent: nothing written. */
  buckets(name: string, help: string, h: HistogramSnapshot | undefined, labels: Record<string, string | number> = {}): this {
    if (!h) return this;
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
    let cumulative = 0;
    h.bounds.forEach((le, i) => {
      cumulative += h.counts[i]!;
      this.lines.push(`${name}_bucket${labelText({ ...labels, le })} ${cumulative}`);
    });
    this.lines.push(`${name}_bucket${labelText({ ...labels, le: "+Inf" })} ${h.count}`, `${name}_sum${labelText(labels)} ${formatValue(h.sum)}`, `${name}_count${labelText(labels)} ${h.count}`);
    return this;
  }

  /** Another exposition's lines, appended. */
  section(other: Exposition): this {
    this.lines.push(...other.lines);
    return this;
  }

  toString(): string {
    return this.lines.join("\n") + "\n";
  }
}

/** A histogram of integer observations from their counts (`counts[v]` observations of v): one bucket per value. */
function perValue(counts: readonly number[]): HistogramSnapshot {
  return { bounds: counts.map((_, v) => v), counts: [...counts, 0], sum: counts.reduce((s, n, v) => s + n * v, 0), count: counts.reduce((s, n) => s + n, 0) };
}

function labelText(labels?: Record<string, string | number>): string {
  if (!labels || Object.keys(labels).length === 0) return "";
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${String(v).replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return `{${parts.join(",")}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (!Number.isFinite(v)) return v > 0 ? "+Inf" : "-Inf";
  return String(v);
}

/** What dsv4_info labels: the served name, the checkpoint's release and the encoder in use. */
export interface ServedModel {
  model: string;
  release: string;
  encoding: string;
}

export function prometheusText(m: EngineMetrics, stats: ServerStats, served: ServedModel): string {
  const rates = stats.rates(m);
  const cached = m.prompt_cache_hit_tokens_total + m.prompt_cache_miss_tokens_total;
  const p = "dsv4_";
  return new Exposition()
    .metric(`${p}info`, "gauge", "Served model, its checkpoint's release and the prompt encoder in use.", 1, { ...served })
    .family(`${p}http_requests_total`, "counter", "HTTP requests by route and status.",
      stats.requestCounts().map((r) => ({ labels: { route: r.route, status: r.status }, value: r.count })))
    .metric(`${p}http_requests_in_flight`, "gauge", "HTTP requests being served.", stats.inFlight)
    .metric(`${p}client_disconnects_total`, "counter", "Requests whose client left before the response ended (generation cancelled).", stats.disconnects)
    .metric(`${p}requests_total`, "counter", "Generations started by the engine.", m.requests_total)
    .metric(`${p}requests_rejected_total`, "counter", "Generations refused (overloaded, too long).", m.requests_rejected_total)
    .metric(`${p}requests_cancelled_total`, "counter", "Generations cancelled.", m.requests_cancelled_total)
    .metric(`${p}queue_depth`, "gauge", "Requests waiting for a sequence slot.", m.queued_requests)
    .metric(`${p}active_sequences`, "gauge", "Sequences being prefilled or decoded.", m.active_sequences)
    .metric(`${p}reader_blocked_sequences`, "gauge", "Running sequences paused because their client is not reading the stream.", m.reader_blocked_sequences)
    .metric(`${p}prompt_tokens_total`, "counter", "Prompt tokens of all requests.", m.prompt_tokens_total)
    .metric(`${p}prompt_cache_hit_tokens_total`, "counter", "Prompt tokens served from the prefix cache.", m.prompt_cache_hit_tokens_total)
    .metric(`${p}prompt_cache_miss_tokens_total`, "counter", "Prompt tokens prefilled.", m.prompt_cache_miss_tokens_total)
    .metric(`${p}prompt_cache_hit_ratio`, "gauge", "Share of prompt tokens served from the prefix cache, since start.", cached > 0 ? m.prompt_cache_hit_tokens_total / cached : 0)
    .metric(`${p}generated_tokens_total`, "counter", "Tokens generated (reasoning included).", m.generated_tokens_total)
    .metric(`${p}reasoning_tokens_total`, "counter", "Reasoning tokens generated.", m.reasoning_tokens_total)
    .metric(`${p}generated_tokens_per_second`, "gauge", "Generated tokens per second over the last 10 s.", rates.generated)
    .metric(`${p}prompt_tokens_per_second`, "gauge", "Prompt tokens per second over the last 10 s.", rates.prompt)
    .metric(`${p}spec_draft_tokens_total`, "counter", "Draft tokens verified by speculative decoding (MTP or DSpark).", m.speculative_drafted_total)
    .metric(`${p}spec_accepted_tokens_total`, "counter", "Draft tokens accepted by verification.", m.speculative_accepted_total)
    .buckets(`${p}spec_accepted_length`, "Drafts accepted per verify step of one sequence.", perValue(m.speculative_accepted_per_step))
    .buckets(`${p}time_to_first_token_seconds`, "Time from a request's arrival at the engine to its first token.", m.latency?.ttft)
    .buckets(`${p}inter_token_latency_seconds`, "Time between a request's successive token steps (a verify step's accepted tokens arrive together).", m.latency?.itl)
    .buckets(`${p}e2e_request_latency_seconds`, "Time from arrival to the last token, of requests that completed.", m.latency?.e2e)
    .buckets(`${p}request_queue_time_seconds`, "Time a request waited for a sequence slot.", m.latency?.queue)
    .family(`${p}request_success_total`, "counter", "Completed requests by finish reason.",
      Object.entries(m.requests?.finished ?? {}).map(([reason, value]) => ({ labels: { finished_reason: reason }, value })))
    .buckets(`${p}request_prompt_tokens`, "Prompt tokens of each completed request.", m.requests?.prompt_tokens)
    .buckets(`${p}request_generation_tokens`, "Generated tokens of each completed request.", m.requests?.generation_tokens)
    .metric(`${p}steps_total`, "counter", "Batched model steps.", m.steps_total)
    .buckets(`${p}step_tokens`, "Tokens per batched model step: decode rows, verified drafts and prefill tokens.", m.steps?.tokens)
    .buckets(`${p}step_duration_seconds`, "Time of one batched model forward.", m.steps?.seconds)
    .metric(`${p}preemptions_total`, "counter", "Sequences preempted for state memory and resumed later.", m.preemptions_total)
    .metric(`${p}state_bytes`, "gauge", "Sequence state bytes in use.", m.state_bytes_in_use)
    .optional(`${p}state_reserved_bytes`, "gauge", "State bytes reserved for running sequences at the lengths they may reach (admission counts these).", m.state_reserved_bytes)
    .optional(`${p}state_budget_bytes`, "gauge", "The state budget reservations come out of: reserved / budget is how full the engine is.", m.state_budget_bytes)
    .metric(`${p}prefix_cache_entries`, "gauge", "Prefix-cache snapshots in memory.", m.prefix_cache_entries)
    .metric(`${p}prefix_cache_bytes`, "gauge", "Prefix-cache bytes in memory.", m.prefix_cache_bytes)
    .metric(`${p}prefix_cache_disk_entries`, "gauge", "Prefix-cache snapshots on disk.", m.prefix_cache_disk_entries)
    .metric(`${p}cost_usd_total`, "counter", "Price of all completed requests, each at the prices in force when it arrived, in USD.", stats.costUsd)
    .section(vllmSeries(m, served.model))
    .section(sglangGauges(m, served.model))
    .toString();
}

/** The "KV cache" of dsv4 is the sequence state budget: its usage is the reserved share of it (1 = full). */
function stateUsage(m: EngineMetrics): number {
  const budget = m.state_budget_bytes;
  return budget ? (m.state_reserved_bytes ?? m.state_bytes_in_use) / budget : 0;
}

/**
 * The core series again under vLLM's names (and its `model_name` label), so that what reads a
 * vLLM server reads dsv4 unchanged: vLLM's Grafana dashboards, and the Kubernetes Gateway API
 * Inference Extension's endpoint picker, whose model server protocol scrapes
 * vllm:num_requests_waiting, vllm:num_requests_running and vllm:kv_cache_usage_perc.
 */
function vllmSeries(m: EngineMetrics, model: string): Exposition {
  const label = { model_name: model };
  const e = new Exposition();
  const gauge = (name: string, help: string, value: number) => e.metric(`vllm:${name}`, "gauge", help, value, label);
  const counter = (name: string, help: string, value: number) => e.metric(`vllm:${name}`, "counter", help, value, label);
  gauge("num_requests_running", "Requests being prefilled or decoded.", m.active_sequences);
  gauge("num_requests_waiting", "Requests waiting for a sequence slot.", m.queued_requests);
  gauge("kv_cache_usage_perc", "Share of the sequence state budget reserved by running requests (1 = full).", stateUsage(m));
  counter("prompt_tokens_total", "Prompt tokens of all requests.", m.prompt_tokens_total);
  counter("generation_tokens_total", "Tokens generated.", m.generated_tokens_total);
  counter("num_preemptions_total", "Sequences preempted for state memory.", m.preemptions_total);
  counter("prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", m.prompt_cache_hit_tokens_total + m.prompt_cache_miss_tokens_total);
  counter("prefix_cache_hits_total", "Prompt tokens served from the prefix cache.", m.prompt_cache_hit_tokens_total);
  counter("spec_decode_num_draft_tokens_total", "Draft tokens verified.", m.speculative_drafted_total);
  counter("spec_decode_num_accepted_tokens_total", "Draft tokens accepted.", m.speculative_accepted_total);
  e.family("vllm:request_success_total", "counter", "Completed requests by finish reason.",
    Object.entries(m.requests?.finished ?? {}).map(([reason, value]) => ({ labels: { ...label, finished_reason: reason }, value })));
  const histogram = (name: string, help: string, h: HistogramSnapshot | undefined) => e.buckets(`vllm:${name}`, help, h, label);
  histogram("time_to_first_token_seconds", "Time to the first token.", m.latency?.ttft);
  histogram("inter_token_latency_seconds", "Time between successive token steps of a request.", m.latency?.itl);
  histogram("e2e_request_latency_seconds", "Time from arrival to the last token.", m.latency?.e2e);
  histogram("request_queue_time_seconds", "Time waiting for a sequence slot.", m.latency?.queue);
  histogram("request_prompt_tokens", "Prompt tokens of each completed request.", m.requests?.prompt_tokens);
  histogram("request_generation_tokens", "Generated tokens of each completed request.", m.requests?.generation_tokens);
  histogram("iteration_tokens_total", "Tokens per engine step.", m.steps?.tokens);
  return e;
}

/**
 * SGLang's names for the scheduling gauges (with its model_name label): what a router that
 * speaks SGLang's protocol reads for load, dsv4 gateway's --upstream-kind sglang among them
 * (dsv4's /generate is SGLang-shaped), and the inference gateway's SGLang profile.
 */
function sglangGauges(m: EngineMetrics, model: string): Exposition {
  const label = { model_name: model };
  return new Exposition()
    .metric("sglang:num_running_reqs", "gauge", "Requests being prefilled or decoded.", m.active_sequences, label)
    .metric("sglang:num_queue_reqs", "gauge", "Requests waiting for a sequence slot.", m.queued_requests, label)
    .metric("sglang:token_usage", "gauge", "Share of the sequence state budget reserved by running requests (1 = full).", stateUsage(m), label);
}
