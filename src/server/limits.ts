/** The hosted service's documented and enforced limits (spec §A.10). */
export const MAX_OUTPUT_TOKENS = 393_216;
export const MAX_FIM_OUTPUT_TOKENS = 4096;
export const MAX_TOOLS = 128;
export const MAX_STOP_STRINGS = 16;
export const MAX_TOP_LOGPROBS = 20;
export const MAX_USER_ID_LENGTH = 512;
export const TOOL_NAME = /^[a-zA-Z0-9_-]{1,64}$/;
export const USER_ID = /^[a-zA-Z0-9_-]+$/;
