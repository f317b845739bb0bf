/** The ledger a `dsv4 keys` / `dsv4 usage` command works on, with its errors as one CLI line. */
import { openLedger, parseDatabase, type Ledger } from "../ledger/index.js";
import { CliError } from "./command.js";

export async function openCliLedger(database: string | undefined): Promise<Ledger> {
  let spec;
  try {
    spec = parseDatabase(database);
  } catch (err) {
    throw new CliError((err as Error).message, 2);
  }
  try {
    return await openLedger(spec);
  } catch (err) {
    throw new CliError((err as Error).message);
  }
}
