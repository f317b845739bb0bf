/**
 * The V4 special-token strings and ids (spec §C.1, §E.1). The strings use
 * FULLWIDTH VERTICAL LINE (U+FF5C) and LOWER ONE EIGHTH BLOCK (U+2581).
 */

export const BOS = "<｜begin▁of▁sentence｜>";
export const EOS = "<｜end▁of▁sentence｜>";
export const PAD = "<｜▁pad▁｜>";
export const USER = "<｜User｜>";
export const ASSISTANT = "<｜Assistant｜>";
export const THINK_START = "<think>";
export const THINK_END = "</think>";
export const DSML = "｜DSML｜";
export const LATEST_REMINDER = "<｜latest_reminder｜>";
export const IMAGE = "<｜image｜>";
export const FIM_HOLE = "<｜fim▁hole｜>";
export const FIM_BEGIN = "<｜fim▁begin｜>";
export const FIM_END = "<｜fim▁end｜>";

/** Internal "quick instruction" tasks and the token each one writes (§C.4). */
export const TASK_TOKENS = {
  action: "<｜action｜>",
  query: "<｜query｜>",
  authority: "<｜authority｜>",
  domain: "<｜domain｜>",
  title: "<｜title｜>",
  read_url: "<｜read_url｜>",
} as const;
export type Task = keyof typeof TASK_TOKENS;

export const SPECIAL_IDS = {
  bos: 0,
  eos: 1,
  pad: 2,
  fimHole: 128800,
  fimBegin: 128801,
  fimEnd: 128802,
  user: 128803,
  assistant: 128804,
  thinkStart: 128821,
  thinkEnd: 128822,
  dsml: 128825,
  latestReminder: 128828,
  action: 128829,
  query: 128830,
  authority: 128831,
  domain: 128832,
  title: 128836,
  readUrl: 128845,
  image: 129279,
} as const;

/** Ids V4 assigns that V3's vocabulary does not have (or names differently). */
export const V4_ADDED_TOKENS: ReadonlyArray<readonly [number, string]> = [
  [SPECIAL_IDS.thinkStart, THINK_START],
  [SPECIAL_IDS.thinkEnd, THINK_END],
  [SPECIAL_IDS.dsml, DSML],
  [SPECIAL_IDS.latestReminder, LATEST_REMINDER],
  [SPECIAL_IDS.action, TASK_TOKENS.action],
  [SPECIAL_IDS.query, TASK_TOKENS.query],
  [SPECIAL_IDS.authority, TASK_TOKENS.authority],
  [SPECIAL_IDS.domain, TASK_TOKENS.domain],
  [SPECIAL_IDS.title, TASK_TOKENS.title],
  [SPECIAL_IDS.readUrl, TASK_TOKENS.read_url],
  [SPECIAL_IDS.image, IMAGE],
];

export const V4_VOCAB_SIZE = 129280;
export const FIRST_ADDED_ID = 128000;

export function placeholderToken(id: number): string {
  return `<｜place▁holder▁no▁${id - FIRST_ADDED_ID}｜>`;
}
