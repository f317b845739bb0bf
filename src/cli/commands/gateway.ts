import { CliError, parseCommandArgs, stringOption, untilSignal, type Command } from "../command.js";
import { defaultModelDir, ensureDefaultModel } from "../default-model.js";
import { encodingOption, intOption, numberOption } from "../load-engine.js";
import { startGateway, UPSTREAM_KINDS, type UpstreamKind } from "../../gateway/index.js";
import { DEFAULT_MODEL_NAME } from "../../server/index.js";
import { describeLedger, KEY_OPTIONS_USAGE, keysFrom, ledgerFor } from "../ledger-options.js";
import { DEFAULT_SHUTDOWN_TIMEOUT_S, drainAndClose } from "../shutdown.js";

export const gatewayCommand: Command = {
  name: "gateway",
  summary: "serve DeepSeek's API in front of dsv4, vLLM or SGLang replicas (token ids upstream)",
  usage: `Usage: dsv4 gateway --upstream URL[,URL...] [--upstream-kind dsv4|vllm|sglang] [options]

Serves every route of \`dsv4 serve\` (chat completions, /beta FIM, the Anthropic Messages API)
and forwards the work to replicas as token ids: prompts are encoded here and output is parsed
here (reasoning, DSML tool calls, stop strings, usage) with dsv4's own text layer. Requests are
routed by prefix affinity on the prompt's block hashes, with a bound on imbalance and power of
two choices; a replica that fails before the first generated token is retried elsewhere.

Upstreams:
  dsv4    \`dsv4 serve\` replicas (POST /generate); also enforces tool_choice, response_format
          and reasoning_budget while decoding
  vllm    vLLM >= 0.10.2 (POST /v1/completions, token-id prompt, return_token_ids)
  sglang  SGLang (POST /generate with input_ids)

Options:
  --upstream URL[,URL...] replica base URLs (repeatable)
  --upstream-kind KIND    dsv4 (default), vllm or sglang
  --upstream-model NAME   the model name vLLM expects (default: the first of its /v1/models)
  --model DIR             checkpoint directory whose tokenizer.json and config.json the replicas
                          serve (weights are not read; default: the embedded default model,
                          ${defaultModelDir()})
  --host HOST             address to bind (default 127.0.0.1)
  --port PORT             port (default 8000; 0 picks a free one)
  --model-name NAME       name the model answers to (default ${DEFAULT_MODEL_NAME})
  --encoding NAME         prompt encoder: april or 0731 (default: the checkpoint's own)
  --block-tokens N        the upstreams' prefix-cache unit in tokens, for affinity (default:
                          dsv4's block for the checkpoint, 128 for V4-Flash)
  --imbalance X           send elsewhere when the preferred replica's load exceeds
                          X × mean + 1 (default 1.25)
  --health-interval SECONDS
                          health and metrics poll cadence (default 1)
${KEY_OPTIONS_USAGE}  --keep-alive SECONDS    keep-alive interval for streams (default 5)
  --shutdown-timeout SECONDS
                          on SIGTERM or Ctrl-C, new requests get a 503 and the requests in
                          flight get this long to finish before they are stopped with an
                          error and their upstream requests cancelled (default ${DEFAULT_SHUTDOWN_TIMEOUT_S}; 0: stop
                          them at once; a second signal stops them too). Keep it below your
                          supervisor's kill timeout
`,
  async run(argv) {
    const args = parseCommandArgs(gatewayCommand, argv, {
      upstream: { type: "string", multiple: true },
      "upstream-kind": { type: "string" },
      "upstream-model": { type: "string" },
      model: { type: "string" },
      host: { type: "string" },
      port: { type: "string" },
      "model-name": { type: "string" },
      encoding: { type: "string" },
      "block-tokens": { type: "string" },
      imbalance: { type: "string" },
      "health-interval": { type: "string" },
      "api-key": { type: "string", multiple: true },
      "api-keys-file": { type: "string" },
      database: { type: "string" },
      "keep-alive": { type: "string" },
      "shutdown-timeout": { type: "string" },
    });
    const opt = (flag: string) => stringOption(gatewayCommand, args, flag);
    const upstreams = ((args.values.upstream as string[] | undefined) ?? []).flatMap((u) => u.split(",")).map((u) => u.trim()).filter((u) => u !== "");
    if (upstreams.length === 0) throw new CliError("--upstream URL is required (one or more replica base URLs, e.g. http://10.0.0.5:8000)", 2);
    for (const u of upstreams) if (!/^https?:\/\/[^/\s]+/.test(u)) throw new CliError(`--upstream: "${u}" is not a URL like http://host:port`, 2);
    const kind = (opt("upstream-kind") ?? "dsv4") as UpstreamKind;
    if (!UPSTREAM_KINDS.includes(kind)) throw new CliError(`--upstream-kind must be one of ${UPSTREAM_KINDS.join(", ")}, got "${kind}"`, 2);
    const port = intOption("port", opt("port")) ?? 8000;
    if (port > 65535) throw new CliError(`--port must be at most 65535, got ${port}`, 2);
    const host = opt("host") ?? "127.0.0.1";
    const modelDir = opt("model") ?? (await ensureDefaultModel()).dir;
    const healthInterval = numberOption("health-interval", opt("health-interval"), 0.05, 3600) ?? 1;
    const shutdownTimeout = numberOption("shutdown-timeout", opt("shutdown-timeout"), 0, 86400) ?? DEFAULT_SHUTDOWN_TIMEOUT_S;
    const apiKeys = keysFrom(args.values["api-key"] as string[] | undefined, opt("api-keys-file"));
    const ledger = await ledgerFor(opt("database"), apiKeys);
    let gateway;
    try {
      gateway = await startGateway({
        upstreams, kind, modelDir, host, port,
        upstreamModel: opt("upstream-model"),
        modelName: opt("model-name") ?? DEFAULT_MODEL_NAME,
        encoding: encodingOption(opt("encoding")),
        blockTokens: intOption("block-tokens", opt("block-tokens"), 1),
        imbalanceFactor: numberOption("imbalance", opt("imbalance"), 1, 1000),
        healthIntervalMs: healthInterval * 1000,
        apiKeys,
        ledger,
        keepAliveMs: (numberOption("keep-alive", opt("keep-alive"), 0, 3600) ?? 5) * 1000,
      });
    } catch (err) {
      await ledger?.close();
      const code = (err as NodeJS.ErrnoException).code;
      if (code === "EADDRINUSE") throw new CliError(`port ${port} on ${host} is already in use; pick another with --port`);
      throw new CliError(`cannot start the gateway: ${(err as Error).message}`);
    }
    const up = gateway.engine.replicas.map((r) => `${r.url}${r.healthy ? "" : ` (down: ${r.lastError})`}`).join(", ");
    process.stdout.write(`\n  dsv4 gateway on ${gateway.url} (also /v1, /beta, /anthropic)\n  upstreams (${kind})  ${up}\n  model files          ${modelDir}\n${ledger ? `  ledger               ${describeLedger(ledger)}\n` : ""}\n  Ctrl-C to stop.\n\n`);
    await untilSignal();
    const { app, engine } = gateway;
    await drainAndClose({ close: () => app.close(), closeIdle: () => app.server.closeIdleConnections() }, engine, shutdownTimeout, (line) => process.stderr.write(`${line}\n`));
    await engine.dispose();
    await ledger?.close();
  },
};
