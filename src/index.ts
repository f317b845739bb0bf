/**
 * dsv4 as a library: load a DeepSeek-V4 checkpoint and generate, in-process.
 *
 *   import { Engine } from "dsv4";
 *   const engine = await Engine.load("/models/DeepSeek-V4-Flash", { onProgress: console.log });
 *   for await (const ev of engine.generate({ messages: [{ role: "user", content: "Hi" }] })) {
 *     if (ev.type === "content") process.stdout.write(ev.text);
 *   }
 *   const reply = await engine.chat.completions.create({ messages: [{ role: "user", content: "Hi" }] });
 *   await engine.dispose();
 */
export * from "./engine/index.js";
export * from "./text/index.js";
export { Dsv4Model, type ForwardRequest, type ForwardOptions, type ForwardOutput, type MtpRequest, type DsparkDraftRequest, type DsparkDraft } from "./model/transformer.js";
export { SequenceState, type SequenceSnapshot } from "./model/state.js";
export { loadConfig, parseConfig, ConfigError, type ModelConfig, type LayerSchedule, type DrafterKind, type DsparkConfig } from "./model/config.js";
export { writeTinyCheckpoint, TINY_PRESETS, DEFAULT_PRESET, type TinyOptions, type TinyResult } from "./tiny/tiny.js";
export { createBackend, BACKEND_NAMES, type Backend } from "./kernels/index.js";
export {
  startServer, buildServer, DEFAULT_PRICES, PRICES_0731, defaultPrices, parsePriceTable, parsePriceSchedule, pricesAt,
  type ListenOptions, type RunningServer, type ServerOptions, type PriceTable, type PriceSchedule, type PriceWindow,
} from "./server/index.js";
export { openLedger, MemoryLedger, SqlLedger, parseDatabase, type Ledger, type LedgerKey, type KeyAccount, type UsageRecord } from "./ledger/index.js";
