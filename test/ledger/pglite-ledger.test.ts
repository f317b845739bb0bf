/** The ledger suite on the embedded PGlite (the CLI's default store), in memory. */
import { openLedger } from "../../src/ledger/open.js";
import { ledgerSuite } from "./ledger-suite.js";

ledgerSuite("pglite", () => openLedger("pglite:memory"));
