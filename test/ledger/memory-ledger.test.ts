/** The ledger suite on the in-process ledger (the library default without a database). */
import { MemoryLedger } from "../../src/ledger/memory-ledger.js";
import { ledgerSuite } from "./ledger-suite.js";

ledgerSuite("memory", async () => new MemoryLedger());
