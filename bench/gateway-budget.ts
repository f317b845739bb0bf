/**
 * The budget part of `dsv4 bench gateway` (issue 16): 64 concurrent chat requests through a
 * gateway (one real `dsv4 serve` replica of the default model upstream) on one key whose budget
 * covers the worst case of 3.5 requests. Reservations are taken before dispatch, so the key's
 * spend can never pass its budget: overspend_usd must be 0, and the ledger's sum of costs must
 * equal the sum of the responses' usage.cost (to the 1e-12 USD they are rounded to).
 */
import { startGateway } from "../src/gateway/index.js";
import { openLedger } from "../src/ledger/open.js";
import { worstCaseUsd } from "../src/server/billing.js";
import { defaultPrices, pricesAt } from "../src/server/prices.js";

export interface BudgetRun {
  backend: string;
  requests: number;
  served: number;
  refused_402: number;
  other_errors: number;
  budget_usd: number;
  spent_usd: number;
  overspend_usd: number;
  ledger_sum_usd: number;
  responses_sum_usd: number;
  ledger_sum_equals_usage: boolean;
}

const MAX_TOKENS = 16;
const pico = (usd: number) => BigInt(Math.round(usd * 1e12));

/** One run on the ledger named by `database` (pglite:…, postgres://…, memory). */
export async function budgetRun(database: string, replicaUrl: string, modelDir: string, concurrency = 64): Promise<BudgetRun> {
  const ledger = await openLedger(database);
  try {
    const gateway = await startGateway({ upstreams: [replicaUrl], modelDir, port: 0, ledger });
    let budget: number;
    let plain: string;
    let keyId: string;
    const costs: number[] = [];
    const statuses: number[] = [];
    try {
      const messages = [{ role: "user" as const, content: "Ping" }];
      const prompt = gateway.engine.promptTokens({ messages, thinking: { type: "disabled" } }).length;
      const prices = pricesAt(defaultPrices(gateway.engine.model.release), Date.now());
      budget = 3.5 * worstCaseUsd(prompt, MAX_TOKENS, prices);
      const created = await ledger.createKey({ name: `bench-${Date.now()}`, budgetUsd: budget });
      ({ plain } = created);
      keyId = created.key.id;
      // The gateway re-reads keys every 5 s; this one must be known now.
      const known = async () => (await fetch(`${gateway.url}/models`, { headers: { authorization: `Bearer ${plain}` } })).status === 200;
      for (let i = 0; i < 200 && !(await known()); i++) await new Promise((r) => setTimeout(r, 50));
      const body = JSON.stringify({ model: "deepseek-v4-flash", messages, thinking: { type: "disabled" }, max_tokens: MAX_TOKENS, seed: 1 });
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          const res = await fetch(`${gateway.url}/chat/completions`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${plain}` }, body });
          const json = (await res.json()) as { usage?: { cost: number } };
          statuses.push(res.status);
          if (res.status === 200) costs.push(json.usage!.cost);
        }),
      );
    } finally {
      // Closing waits for every settlement.
      await gateway.close();
    }
    const account = (await ledger.findKey(keyId))!;
    const ledgerSum = await ledger.totalCostUsd(keyId);
    const responsesSum = costs.reduce((a, c) => a + pico(c), 0n);
    return {
      backend: ledger.backend,
      requests: concurrency,
      served: statuses.filter((s) => s === 200).length,
      refused_402: statuses.filter((s) => s === 402).length,
      other_errors: statuses.filter((s) => s !== 200 && s !== 402).length,
      budget_usd: budget,
      spent_usd: account.spentUsd,
      overspend_usd: Math.max(0, Number(pico(account.spentUsd) - pico(budget)) / 1e12),
      ledger_sum_usd: ledgerSum,
      responses_sum_usd: Number(responsesSum) / 1e12,
      ledger_sum_equals_usage: pico(ledgerSum) === responsesSum && pico(account.spentUsd) === responsesSum,
    };
  } finally {
    await ledger.close();
  }
}
