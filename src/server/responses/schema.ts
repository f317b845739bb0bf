/**
 * The body of `POST /responses` (spec §A.12; the `openai` SDK's ResponseCreateParams) as zod
 * schemas: only the JSON types. Input items stay loose here; request.ts checks each item's
 * shape by its `type` and names the item at fault. Unknown top-level fields are stripped.
 */
import { z } from "zod";

const nullish = <T extends z.ZodType>(schema: T) => schema.nullish();
const num = () => nullish(z.number({ error: "expected a number" }));
const int = () => nullish(z.int({ error: "expected an integer" }));
const bool = () => nullish(z.boolean({ error: "expected a boolean" }));
const str = () => nullish(z.string({ error: "expected a string" }));

const item = z.looseObject({ type: str(), role: str() }, { error: "expected an input item object" });

const tool = z.looseObject({
  type: z.string({ error: "expected a string" }),
  name: str(),
  description: str(),
  parameters: nullish(z.record(z.string(), z.unknown(), { error: "expected a JSON Schema object" })),
  strict: bool(),
});
export type ResponsesTool = z.output<typeof tool>;

const toolChoice = z.union([z.string(), z.looseObject({ type: z.string(), name: str() })], {
  error: "expected \"none\", \"auto\", \"required\" or {\"type\":\"function\",\"name\":…}",
});

const format = z.looseObject({ type: z.string({ error: "expected a string" }), name: str(), schema: z.unknown().optional(), strict: bool(), description: str() });

export const responsesRequestSchema = z.object({
  model: z.string({ error: "expected a string" }),
  input: nullish(z.union([z.string(), z.array(item)], { error: "expected a string or a sequence of input items" })),
  instructions: str(),
  stream: bool(),
  store: bool(),
  previous_response_id: str(),
  conversation: z.unknown().optional(),
  background: bool(),
  temperature: num(),
  top_p: num(),
  max_output_tokens: int(),
  tools: nullish(z.array(tool, { error: "expected a sequence of tools" })),
  tool_choice: nullish(toolChoice),
  reasoning: nullish(z.looseObject({ effort: str(), summary: str() }, { error: "expected struct Reasoning" })),
  text: nullish(z.looseObject({ format: nullish(format), verbosity: str() }, { error: "expected struct TextConfig" })),
  /** DeepSeek's own switch, accepted here as on the chat route. */
  thinking: nullish(z.looseObject({ type: z.string({ error: "expected a string" }) }, { error: "expected struct ThinkingOptions" })),
  metadata: nullish(z.record(z.string(), z.string(), { error: "expected a map of strings" })),
  user: str(),
  parallel_tool_calls: bool(),
  seed: int(),
  /** vLLM's field: scheduling priority under --scheduling-policy priority (lower first). */
  priority: int(),
});
export type ResponsesRequest = z.output<typeof responsesRequestSchema>;
export type ResponsesInputItem = z.output<typeof item>;
