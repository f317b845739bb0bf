/** `dsv4 usage`: spend per key and the latest ledger rows, from the ledger (--database). */
import type { UsageRecord } from "../../ledger/index.js";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { intOption } from "../load-engine.js";
import { openCliLedger } from "../open-ledger.js";

export const usageCommand: Command = {
  name: "usage",
  summary: "spend per API key and the latest requests from the usage ledger",
  usage: `Usage: dsv4 usage [--key KEY_ID] [--limit N] [--json] [--database URL]

Prints each key's budget, spend, reserved amount and request count, then the latest requests
(newest first): key, model, prompt / cached / completion tokens, cost, latency, upstream and
finish reason. With --key, one key's account and rows only.

Options:
  --key KEY_ID     one key (its id or name)
  --limit N        rows to show (default 20)
  --json           {"keys":[…],"recent":[…]} with the fields of GET /usage
  --database URL   postgres://USER:PASS@HOST/DB, pglite:DIR or memory (default: the embedded
                   store in $DSV4_HOME/ledger)
`,
  async run(argv) {
    const args = parseCommandArgs(usageCommand, argv, { key: { type: "string" }, limit: { type: "string" }, json: { type: "boolean" }, database: { type: "string" } });
    const opt = (flag: string) => stringOption(usageCommand, args, flag);
    const limit = intOption("limit", opt("limit"), 1) ?? 20;
    const ledger = await openCliLedger(opt("database"));
    try {
      let keys = await ledger.listKeys();
      const wanted = opt("key");
      if (wanted !== undefined) {
        const key = await ledger.findKey(wanted);
        if (!key) throw new CliError(`no key "${wanted}" in ${ledger.location} (see \`dsv4 keys list\`)`);
        keys = [key];
      }
      const recent = await ledger.recent({ keyId: wanted === undefined ? undefined : keys[0]!.id, limit });
      if (args.values.json === true) {
        process.stdout.write(
          JSON.stringify({
            keys: keys.map((k) => ({ id: k.id, name: k.name, budget_usd: k.budgetUsd, spent_usd: k.spentUsd, reserved_usd: k.reservedUsd, requests: k.requests, disabled: k.disabled })),
            recent: recent.map(wireRow),
          }) + "\n",
        );
        return;
      }
      const money = (x: number | null) => (x === null ? "unlimited" : `$${x.toFixed(6)}`);
      table(["KEY", "NAME", "BUDGET", "SPENT", "RESERVED", "REQUESTS"], keys.map((k) => [k.id, k.name ?? "-", money(k.budgetUsd), money(k.spentUsd), money(k.reservedUsd), String(k.requests)]));
      process.stdout.write("\n");
      table(
        ["TIME (UTC)", "KEY", "MODEL", "PROMPT", "CACHED", "OUTPUT", "COST", "MS", "UPSTREAM", "FINISH", "REQUEST"],
        recent.map((r) => [new Date(r.created * 1000).toISOString().slice(0, 19).replace("T", " "), r.keyId, r.model, String(r.promptTokens), String(r.promptCacheHitTokens), String(r.completionTokens), `$${r.costUsd.toFixed(6)}`, r.latencyMs.toFixed(0), r.upstream ?? "-", r.finishReason ?? "-", r.requestId]),
      );
    } finally {
      await ledger.close();
    }
  },
};

/** A row with GET /usage's field names. */
export function wireRow(r: UsageRecord) {
  return {
    request_id: r.requestId, key_id: r.keyId, created: Math.floor(r.created), model: r.model, prompt_tokens: r.promptTokens,
    prompt_cache_hit_tokens: r.promptCacheHitTokens, completion_tokens: r.completionTokens, cost_usd: r.costUsd, latency_ms: r.latencyMs,
    upstream: r.upstream, finish_reason: r.finishReason,
  };
}

function table(header: string[], rows: string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n");
}
