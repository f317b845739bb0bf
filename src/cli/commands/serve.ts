import { closeSync, openSync, readFileSync } from "node:fs";
import { CliError, parseCommandArgs, stringOption, untilSignal, untilUnhealthy, type Command } from "../command.js";
import { closeSweepingIdle, DEFAULT_SHUTDOWN_TIMEOUT_S, drainAndClose } from "../shutdown.js";
import { describeEncoder, DRAFT_VOCAB_HELP, encodingOption, intOption, loadEngine, numberOption, MLOCK_HELP, NO_REPACK_HELP, PREFETCH_HELP, prefetchOption, schedulingPolicyOption, SPECULATIVE_HELP, speculativeOptions } from "../load-engine.js";
import { defaultModelDir } from "../default-model.js";
import { describeLedger, KEY_OPTIONS_USAGE, keysFrom, ledgerFor } from "../ledger-options.js";
import {
  DEFAULT_MODEL_NAME, DEFAULT_PRICES, defaultPrices, describePrices, parsePriceSchedule, PRICES_0731, startServer,
  type PriceSchedule,
} from "../../server/index.js";
import { MAX_OUTPUT_TOKENS } from "../../server/limits.js";
import { jsonLines, jsonLinesFile, type RequestLogSink } from "../../server/request-log.js";
import type { Release } from "../../text/release.js";

export const serveCommand: Command = {
  name: "serve",
  summary: "serve a model over DeepSeek's HTTP API (OpenAI and Anthropic formats)",
  usage: `Usage: dsv4 serve [--model DIR] [--host HOST] [--port PORT] [options]

Serves a DeepSeek-V4 checkpoint with DeepSeek's API: point a DeepSeek/OpenAI client's
base URL at http://HOST:PORT (or /v1; beta features under /beta; Anthropic clients at
/anthropic). Without --model it serves the embedded default: a tiny random-weight
DeepSeek-V4 checkpoint with the real V4 tokenizer, written on first run to
${defaultModelDir()} (set DSV4_HOME to move it). Its output is noise:
it is there to try the API, run tests and benchmarks.

Options:
  --model DIR             checkpoint directory (config.json, *.safetensors, tokenizer.json)
  --host HOST             address to bind (default 127.0.0.1: this machine only)
  --port PORT             port (default 8000; 0 picks a free one)
  --model-name NAME       name the model answers to (default ${DEFAULT_MODEL_NAME})
  --alias NAME            another accepted name (repeatable), e.g. deepseek-v4-pro
${KEY_OPTIONS_USAGE}  --encoding NAME         prompt encoder: april or 0731 (default: the checkpoint's own; 0731
                          checkpoints have dspark_* keys in config.json). The request's
                          reasoning_effort maps to the encoder's effort texts
  --prices FILE           JSON price table, USD per 1M tokens, for usage.cost and /metrics:
                          {"cache_hit_input":${DEFAULT_PRICES.cacheHitInput},"cache_miss_input":${DEFAULT_PRICES.cacheMissInput},"output":${DEFAULT_PRICES.output}}
                          (the default for April weights), optionally with UTC windows:
                          "windows":[{"name":"peak","utc":["01:00-04:00","06:00-10:00"],
                          "cache_hit_input":${PRICES_0731.windows[0]!.prices.cacheHitInput},"cache_miss_input":${PRICES_0731.windows[0]!.prices.cacheMissInput},"output":${PRICES_0731.windows[0]!.prices.output}}]
                          (with base ${PRICES_0731.base.cacheHitInput} / ${PRICES_0731.base.cacheMissInput} / ${PRICES_0731.base.output}: the default for 0731 weights).
                          Missing prices keep the default's; a request pays the prices
                          in force when it arrives
  --cors ORIGINS          allow browsers from these origins (comma-separated, or *); off by default
  --body-limit MB         largest request body (default 32)
  --max-concurrent N      concurrent requests per API key before 429 (default 2500)
  --max-sequences N       sequences decoded together (default 16)
  --max-queue N           requests waiting beyond those before 503 (default 64)
  --max-batch-tokens N    tokens in one model step across all sequences (default 2048)
  --scheduling-policy P   fcfs (default): requests run in arrival order; priority: by each
                          request's "priority" field (lower first, then arrival; vLLM's), a
                          waiting request preempting running ones of a lower priority when
                          that makes room (they resume later with the same output)
  --prefill-latency X     while streams decode, a step that also prefills a prompt may take
                          at most X times a decode-only step (default 1.5; higher: faster
                          prompts, slower streams meanwhile)
  --context N             context length limit in tokens (default: the model's)
  --cache-dir DIR         persist the prefix cache here (survives restarts); the checkpoint's
                          shard digests are remembered here too (else under DSV4_HOME)
  --shared-prefix FILE    a system prompt (the file's text) whose cached blocks every API key
                          may reuse (repeatable); other cache entries stay per key and user_id.
                          Only for text that is no secret: any key can tell it was cached
  --backend NAME          compute backend (default: the fastest available)
  --speculative MODE      ${SPECULATIVE_HELP}
  --draft-vocab N         ${DRAFT_VOCAB_HELP}
  --prefetch MODE         ${PREFETCH_HELP}
  --mlock                 ${MLOCK_HELP}
  --no-repack             ${NO_REPACK_HELP}
  --keep-alive SECONDS    keep-alive interval for streams and slow responses (default 5)
  --reader-timeout SECONDS
                          a stream whose client stops reading pauses its generation; after
                          this long without a read it is cancelled and its slot freed
                          (default 60; 0: never)
  --shutdown-timeout SECONDS
                          on SIGTERM or Ctrl-C, new requests get a 503 and the generations in
                          flight get this long to finish before they are stopped with an
                          error (default 20; 0: stop them at once; a second signal stops them
                          too). Keep it below your supervisor's kill timeout
  --sampling-in-thinking  honour temperature/top_p in thinking mode (DeepSeek ignores them)
  --max-output-tokens N   cap on a request's max_tokens (default and most 393216, the hosted
                          service's); above it a 400 names max_tokens and the cap. Requests
                          without max_tokens get 32768, or N when N is lower
  --log FILE              append the request log to FILE instead of stderr
  --log-requests on|off   one JSON line per request: request id, route, model, key label,
                          prompt/cached/completion tokens, cost, time to first token,
                          duration, finish reason, client disconnect (default on; GET
                          /health and /metrics are not logged)
  --quiet                 no request log (same as --log-requests off)
  --strict-api            answer like the hosted service where it refuses: 400 for a thinking-mode
                          tool-call turn without reasoning_content, strict tools outside /beta,
                          response_format json_schema (default: accept them)
`,
  async run(argv) {
    const args = parseCommandArgs(serveCommand, argv, {
      model: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      "model-name": { type: "string" },
      alias: { type: "string", multiple: true },
      "api-key": { type: "string", multiple: true },
      "api-keys-file": { type: "string" },
      database: { type: "string" },
      prices: { type: "string" },
      encoding: { type: "string" },
      cors: { type: "string" },
      "body-limit": { type: "string" },
      "max-concurrent": { type: "string" },
      "max-sequences": { type: "string" },
      "max-queue": { type: "string" },
      "max-batch-tokens": { type: "string" },
      "prefill-latency": { type: "string" },
      "scheduling-policy": { type: "string" },
      context: { type: "string" },
      "cache-dir": { type: "string" },
      "shared-prefix": { type: "string", multiple: true },
      backend: { type: "string" },
      speculative: { type: "string" },
      "draft-vocab": { type: "string" },
      prefetch: { type: "string" },
      mlock: { type: "boolean" },
      "no-repack": { type: "boolean" },
      "keep-alive": { type: "string" },
      "reader-timeout": { type: "string" },
      "shutdown-timeout": { type: "string" },
      "sampling-in-thinking": { type: "boolean" },
      "max-output-tokens": { type: "string" },
      log: { type: "string" },
      "log-requests": { type: "string" },
      quiet: { type: "boolean" },
      "strict-api": { type: "boolean" },
    });
    const opt = (flag: string) => stringOption(serveCommand, args, flag);
    const port = intOption("port", opt("port")) ?? 8000;
    if (port > 65535) throw new CliError(`--port must be at most 65535, got ${port}`, 2);
    const host = opt("host") ?? "127.0.0.1";
    const apiKeys = keysFrom(args.values["api-key"] as string[] | undefined, opt("api-keys-file"));
    const pricesFile = readPrices(opt("prices"));
    const encoding = encodingOption(opt("encoding"));
    const cors = corsOption(opt("cors"));
    const bodyLimitMb = numberOption("body-limit", opt("body-limit"), 0.001, 4096) ?? 32;
    const keepAlive = numberOption("keep-alive", opt("keep-alive"), 0, 3600) ?? 5;
    const readerTimeout = numberOption("reader-timeout", opt("reader-timeout"), 0, 86400);
    const shutdownTimeout = numberOption("shutdown-timeout", opt("shutdown-timeout"), 0, 86400) ?? DEFAULT_SHUTDOWN_TIMEOUT_S;
    const modelName = opt("model-name") ?? DEFAULT_MODEL_NAME;
    const aliases = (args.values.alias as string[] | undefined) ?? [];
    const cacheDir = opt("cache-dir");
    const sharedPrefixes = sharedPrefixFiles(args.values["shared-prefix"] as string[] | undefined);
    const maxOutputTokens = intOption("max-output-tokens", opt("max-output-tokens"), 1);
    if (maxOutputTokens !== undefined && maxOutputTokens > MAX_OUTPUT_TOKENS) {
      throw new CliError(`--max-output-tokens must be at most ${MAX_OUTPUT_TOKENS} (the hosted service's maximum), got ${maxOutputTokens}`, 2);
    }
    const log = requestLogOption(opt("log-requests"), args.values.quiet === true, opt("log"));
    const ledger = await ledgerFor(opt("database"), apiKeys);

    let loaded;
    try {
      loaded = await loadEngine(opt("model"), {
        backend: opt("backend"),
        speculative: speculativeOptions(opt("speculative"), opt("draft-vocab")),
        prefetch: prefetchOption(opt("prefetch")),
        mlock: args.values.mlock === true,
        repack: args.values["no-repack"] !== true,
        modelName,
        maxConcurrentSequences: intOption("max-sequences", opt("max-sequences"), 1),
        maxQueuedRequests: intOption("max-queue", opt("max-queue"), 0),
        maxBatchTokens: intOption("max-batch-tokens", opt("max-batch-tokens"), 1),
        prefillLatencyFactor: numberOption("prefill-latency", opt("prefill-latency"), 1, 1000),
        schedulingPolicy: schedulingPolicyOption(opt("scheduling-policy")),
        contextLength: intOption("context", opt("context"), 1),
        prefixCache: { dir: cacheDir, sharedPrefixes },
        encoding,
        readerTimeoutMs: readerTimeout === undefined ? undefined : readerTimeout === 0 ? Infinity : readerTimeout * 1000,
      });
    } catch (err) {
      await ledger?.close();
      throw err;
    }
    const { engine, dir, isDefault } = loaded;
    const prices = pricesFor(engine.model.release, pricesFile);
    let server;
    try {
      server = await startServer({
        engine, host, port, modelName, aliases, apiKeys, ledger, prices, cors,
        bodyLimit: Math.round(bodyLimitMb * 1024 * 1024),
        keepAliveMs: keepAlive * 1000,
        maxConcurrentRequests: intOption("max-concurrent", opt("max-concurrent"), 1),
        samplingInThinking: args.values["sampling-in-thinking"] === true,
        maxOutputTokens,
        requestLog: log.sink,
        strictApi: args.values["strict-api"] === true,
      });
    } catch (err) {
      await log.close();
      await ledger?.close();
      await engine.dispose();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new CliError(`port ${port} on ${host} is already in use; pick another with --port`);
      if (code === "EACCES") throw new CliError(`not allowed to listen on ${host}:${port}`);
      if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new CliError(`--host ${host}: not an address of this machine`);
      throw err;
    }
    const details = [
      `backend   ${engine.model.backend}, context ${engine.model.contextLength} tokens`,
      `encoder   ${describeEncoder(engine.model)}`,
      ...(engine.model.drafter ? [`drafter   ${engine.model.drafter === "dspark" ? "DSpark" : "MTP"}${engine.model.draftVocab ? `, drafting over ${engine.model.draftVocab} of ${engine.model.vocabSize} token ids (--draft-vocab)` : ""}`] : []),
      `prices    ${describePrices(prices)}${pricesFile ? ` (${pricesFile.file})` : ` (${engine.model.release} default; --prices FILE to change)`}`,
    ];
    if (ledger) details.push(`ledger    ${describeLedger(ledger)}`);
    process.stdout.write(banner(server.url, modelName, aliases, dir, isDefault, details, ledger !== undefined));
    const down = await Promise.race([untilSignal().then(() => null), untilUnhealthy(engine)]);
    const closing = { close: () => server.close(), closeIdle: () => server.app.server.closeIdleConnections() };
    if (down === null) {
      await drainAndClose(closing, engine, shutdownTimeout, (line) => process.stderr.write(`${line}\n`));
    } else {
      process.stderr.write("dsv4: the engine can serve nothing more; shutting down\n");
      await closeSweepingIdle(closing);
    }
    await ledger?.close();
    await log.close();
    await engine.dispose();
    if (down !== null) throw new CliError(`${down}; exiting so a supervisor can restart the server`);
  },
};

/** --log-requests / --quiet / --log FILE → where request lines go (stderr by default). */
function requestLogOption(mode: string | undefined, quiet: boolean, file: string | undefined): { sink: RequestLogSink | null; close: () => Promise<void> } {
  if (mode !== undefined && mode !== "on" && mode !== "off") throw new CliError(`--log-requests must be on or off, got "${mode}"`, 2);
  if (quiet || mode === "off") {
    if (file !== undefined) throw new CliError(`--log ${file} asks for a request log that ${quiet ? "--quiet" : "--log-requests off"} turns off; drop one`, 2);
    return { sink: null, close: async () => undefined };
  }
  if (file === undefined) return { sink: jsonLines(process.stderr), close: async () => undefined };
  try {
    closeSync(openSync(file, "a"));
  } catch (err) {
    throw new CliError(`--log ${file}: cannot write it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 2);
  }
  return jsonLinesFile(file);
}

/**
 * The shared system prompts. Trailing line breaks are dropped (editors add one; system prompts
 * rarely end in one): a request shares a prefix when its system prompt starts with the text.
 */
function sharedPrefixFiles(files: string[] | undefined): string[] {
  return (files ?? []).map((file) => {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (err) {
      throw new CliError(`--shared-prefix ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 2);
    }
    text = text.replace(/[\r\n]+$/, "");
    if (text === "") throw new CliError(`--shared-prefix ${file}: the file is empty; it should hold the system prompt to share`, 2);
    return text;
  });
}

interface PricesFile {
  file: string;
  json: unknown;
}

/** Read and checked before the model loads (minutes for a real one), so a bad file fails at once. */
function readPrices(file: string | undefined): PricesFile | undefined {
  if (!file) return undefined;
  try {
    const json: unknown = JSON.parse(readFileSync(file, "utf8"));
    parsePriceSchedule(json);
    return { file, json };
  } catch (err) {
    throw new CliError(`--prices ${file}: ${(err as Error).message}`, 2);
  }
}

/** The file's schedule, its missing prices taken from the release's default; else that default. */
function pricesFor(release: Release, file: PricesFile | undefined): PriceSchedule {
  const fallback = defaultPrices(release);
  return file ? parsePriceSchedule(file.json, fallback.base) : fallback;
}

function corsOption(value: string | undefined): true | string[] | undefined {
  if (value === undefined) return undefined;
  if (value === "*") return true;
  const origins = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = origins.find((o) => !/^https?:\/\/[^/\s]+$/.test(o));
  if (bad !== undefined) throw new CliError(`--cors: "${bad}" is not an origin like https://example.com`, 2);
  return origins;
}

function banner(url: string, name: string, aliases: string[], dir: string, isDefault: boolean, details: string[], keys: boolean): string {
  const names = [name, ...aliases].join(", ");
  const lines = [
    "",
    `  dsv4 is serving ${names}`,
    isDefault ? `  model     ${dir} (tiny random weights: output is noise; --model DIR serves a real checkpoint)` : `  model     ${dir}`,
    ...details.map((d) => `  ${d}`),
    "",
    `  OpenAI / DeepSeek base URL   ${url}   (also ${url}/v1; beta: ${url}/beta)`,
    `  Anthropic base URL           ${url}/anthropic`,
    `  health ${url}/health   metrics ${url}/metrics`,
    keys ? "  API keys required (Authorization: Bearer KEY)" : "  no API key required",
    "",
    `  curl ${url}/chat/completions -H 'Content-Type: application/json' \\`,
    `    -d '{"model":"${name}","messages":[{"role":"user","content":"Hello!"}],"max_tokens":32}'`,
    "",
    "  Ctrl-C to stop.",
    "",
  ];
  return lines.join("\n") + "\n";
}
