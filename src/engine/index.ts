/** The engine's public surface. */
export { Engine } from "./engine.js";
export { EngineError, isEngineError, type EngineErrorCode } from "./errors.js";
export { stateBytes, stateBreakdown, type StateBreakdown } from "../model/state-size.js";
export { cacheIdentity, modelIdentity, precisionOf, shardDigestsFile, type IdentityOptions } from "./identity.js";
export { Rng } from "./rng.js";
export { argmax, samplingProbs, sampleToken, tokenLogprobs, DEFAULT_SAMPLING, type SamplingParams } from "./sampler.js";
export type * from "./types.js";
