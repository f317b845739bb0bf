/** The text layer's public surface: tokenizer, prompt encoder, output parser. */
export {
  Tokenizer,
  loadTokenizer,
  loadDefaultTokenizer,
  writeDefaultTokenizerFiles,
  type SpecialTokenIds,
  type TokenStreamDecoder,
  type DecodeOptions,
} from "./tokenizer.js";
export {
  encodeMessages,
  encodeFim,
  EncodingError,
  type EncodeOptions,
  type EffortPrompts,
  type FimRequest,
  type ThinkingMode,
  type ChatMessage,
  type ContentPart,
  type ToolCallInput,
  type ToolDefinition,
  type Role,
} from "./encoding.js";
export { encoderEffort, isApiEffort, API_EFFORTS, EFFORT_TABLE, DEFAULT_EFFORT, type ApiEffort } from "./effort.js";
export { checkpointRelease, checkpointReleaseAt, chooseEncoder, parseRelease, RELEASES, type Release, type EncoderChoice } from "./release.js";
export {
  OutputParser,
  parseCompletion,
  type OutputDelta,
  type ParsedOutput,
  type ParsedToolCall,
  type ParserOptions,
  type ParserPhase,
  type FinishReason,
  type FinishCause,
} from "./parser.js";
export { createToolCallIdGenerator, TOOL_CALL_ID_PATTERN, type ToolCallIdGenerator } from "./tool-call-id.js";
export { parsePyJson, pyJsonDumps } from "./pyjson.js";
export * as specialTokens from "./special-tokens.js";
