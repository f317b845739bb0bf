/** The ledger suite on a real PostgreSQL (skipped, saying why, when none is configured). */
import { after, describe } from "node:test";
import { openLedger } from "../../src/ledger/open.js";
import { ledgerSuite } from "./ledger-suite.js";
import { freshSchema, skipWithoutPostgres } from "./postgres.js";

describe("postgres", { skip: skipWithoutPostgres }, () => {
  let drop: () => Promise<void> = async () => undefined;
  after(() => drop());
  ledgerSuite("postgres", async () => {
    const schema = await freshSchema("suite");
    drop = schema.drop;
    return openLedger(schema.url);
  });
});
