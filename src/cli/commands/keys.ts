/**
 * `dsv4 keys create|list|disable|set-budget`: API keys in the ledger (--database; default the
 * embedded store). A created key is printed once; the ledger keeps only its sha256.
 */
import { parseBudget, type KeyAccount, type Ledger } from "../../ledger/index.js";
import { CliError, parseCommandArgs, stringOption, type Command } from "../command.js";
import { openCliLedger } from "../open-ledger.js";

const usd = (x: number | null) => (x === null ? "unlimited" : `$${x.toFixed(6)}`);

export const keysCommand: Command = {
  name: "keys",
  summary: "create, list, disable API keys and set their USD budgets in the ledger",
  usage: `Usage: dsv4 keys create [--name NAME] [--budget USD] [--database URL]
       dsv4 keys list [--json] [--database URL]
       dsv4 keys disable KEY_ID [--database URL]
       dsv4 keys set-budget KEY_ID USD|none [--database URL]

Keys live in the usage ledger that \`dsv4 serve\` and \`dsv4 gateway\` read (they re-read keys
every 5 s). \`create\` prints the new key once: the ledger stores only its sha256. A budget is
the USD a key may spend in all; every request reserves its worst-case cost before it runs.
KEY_ID may also be a key's name.

Options:
  --database URL   postgres://USER:PASS@HOST/DB, pglite:DIR or memory (default: the embedded
                   store in $DSV4_HOME/ledger; one process at a time, so stop a server that uses
                   it first, or share a Postgres)
  --name NAME      a label for the key (create)
  --budget USD     the key's budget (create; default unlimited)
  --json           machine-readable output (list)
`,
  async run(argv) {
    const args = parseCommandArgs(keysCommand, argv, { database: { type: "string" }, name: { type: "string" }, budget: { type: "string" }, json: { type: "boolean" } }, true);
    const [action, ...rest] = args.positionals;
    const opt = (flag: string) => stringOption(keysCommand, args, flag);
    const actions = ["create", "list", "disable", "set-budget"];
    if (action === undefined || !actions.includes(action)) throw new CliError(`dsv4 keys needs one of ${actions.join(", ")}${action ? `, got "${action}"` : ""} (see \`dsv4 keys --help\`)`, 2);
    const expected = action === "set-budget" ? 2 : action === "disable" ? 1 : 0;
    if (rest.length !== expected) throw new CliError(`dsv4 keys ${action} takes ${expected === 0 ? "no arguments" : expected === 1 ? "KEY_ID" : "KEY_ID USD"}, got ${rest.length === 0 ? "none" : rest.join(" ")}`, 2);
    const budget = (text: string, what: string) => {
      try {
        return parseBudget(text, what);
      } catch (err) {
        throw new CliError((err as Error).message, 2);
      }
    };
    const createBudget = opt("budget") === undefined ? null : budget(opt("budget")!, "--budget");
    const newBudget = action === "set-budget" ? budget(rest[1]!, "the budget") : null;
    const ledger = await openCliLedger(opt("database"));
    try {
      switch (action) {
        case "create": {
          const { key, plain } = await ledger.createKey({ name: opt("name") ?? null, budgetUsd: createBudget });
          process.stdout.write(`${plain}\n`);
          process.stderr.write(`dsv4: created ${key.id}${key.name ? ` (${key.name})` : ""}, budget ${usd(key.budgetUsd)}, in ${ledger.location}. The key is shown only now.\n`);
          return;
        }
        case "list":
          return list(await ledger.listKeys(), args.values.json === true);
        case "disable":
          await disable(ledger, rest[0]!);
          return;
        case "set-budget": {
          const key = await found(ledger, rest[0]!);
          await ledger.setBudget(key.id, newBudget);
          process.stderr.write(`dsv4: ${key.id} budget ${usd(newBudget)} (spent ${usd(key.spentUsd)})\n`);
          return;
        }
      }
    } finally {
      await ledger.close();
    }
  },
};

async function found(ledger: Ledger, idOrName: string): Promise<KeyAccount> {
  const key = await ledger.findKey(idOrName);
  if (!key) throw new CliError(`no key "${idOrName}" in ${ledger.location} (see \`dsv4 keys list\`)`);
  return key;
}

async function disable(ledger: Ledger, idOrName: string): Promise<void> {
  const key = await found(ledger, idOrName);
  await ledger.disableKey(key.id);
  process.stderr.write(`dsv4: ${key.id} disabled; servers refuse it within 5 s\n`);
}

function list(keys: KeyAccount[], json: boolean): void {
  if (json) {
    const rows = keys.map((k) => ({ id: k.id, name: k.name, budget_usd: k.budgetUsd, spent_usd: k.spentUsd, reserved_usd: k.reservedUsd, requests: k.requests, created: Math.floor(k.created), disabled: k.disabled }));
    process.stdout.write(JSON.stringify(rows) + "\n");
    return;
  }
  const header = ["ID", "NAME", "BUDGET", "SPENT", "RESERVED", "REQUESTS", "STATUS"];
  const rows = keys.map((k) => [k.id, k.name ?? "-", usd(k.budgetUsd), usd(k.spentUsd), usd(k.reservedUsd), String(k.requests), k.disabled ? "disabled" : "enabled"]);
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  for (const r of [header, ...rows]) process.stdout.write(r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd() + "\n");
}
