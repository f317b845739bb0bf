/**
 * --api-key, --api-keys-file and --database for `dsv4 serve` and `dsv4 gateway`: keys seed the
 * ledger; the ledger is the one named by --database, else (keys given) the embedded default.
 */
import type { Ledger } from "../ledger/index.js";
import { makeKey, readKeysFile, type ApiKey } from "../server/auth.js";
import { CliError } from "./command.js";
import { openCliLedger } from "./open-ledger.js";

export const KEY_OPTIONS_USAGE = `  --api-key KEY           require this key (repeatable); clients send "Authorization: Bearer KEY"
  --api-keys-file FILE    keys, one per line, each optionally followed by a USD budget
  --database URL          the ledger of keys, budgets and per-request usage: postgres://USER:PASS@HOST/DB,
                          pglite:DIR, or memory (default with keys: the embedded store in
                          $DSV4_HOME/ledger). Given alone, the ledger's keys (dsv4 keys create) are required.
                          Each request reserves its worst-case cost before it runs (402 when it does not fit)
                          and settles its real cost after; GET /usage shows a key its own spend.
`;

export function keysFrom(flags: string[] | undefined, file: string | undefined): ApiKey[] {
  const out: ApiKey[] = [];
  try {
    for (const k of flags ?? []) out.push(makeKey(k));
    if (file) out.push(...readKeysFile(file));
  } catch (err) {
    throw new CliError(`API keys: ${(err as Error).message}`, 2);
  }
  return out;
}

/** The ledger to serve with: undefined when there are no keys and no --database. */
export async function ledgerFor(database: string | undefined, keys: readonly ApiKey[]): Promise<Ledger | undefined> {
  if (database === undefined && keys.length === 0) return undefined;
  const ledger = await openCliLedger(database);
  if (keys.length === 0 && (await ledger.listKeys()).every((k) => k.disabled)) {
    await ledger.close();
    throw new CliError(`the ledger at ${ledger.location} has no enabled keys: create one with \`dsv4 keys create --database ${database}\`, or pass --api-key / --api-keys-file`, 2);
  }
  return ledger;
}

/** The banner's line for the ledger. */
export const describeLedger = (ledger: Ledger): string => `${ledger.backend} ${ledger.location === "memory" ? "(in memory, nothing persists)" : ledger.location}`;
