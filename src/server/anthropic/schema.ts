/** Anthropic Messages request bodies (spec §A.11) as zod schemas; unknown fields are ignored. */
import { z } from "zod";

const str = () => z.string({ error: "expected a string" });
const num = () => z.number({ error: "expected a number" }).nullish();

const textBlock = z.looseObject({ type: z.literal("text"), text: str() });
const block = z.looseObject({ type: str() });

export const anthropicContent = z.union([str(), z.array(block)], { error: "expected a string or an array of content blocks" });

export const anthropicMessage = z.looseObject({
  role: str(),
  content: anthropicContent,
});

export const anthropicTool = z.looseObject({
  name: str(),
  type: str().nullish(),
  description: str().nullish(),
  input_schema: z.record(z.string(), z.unknown(), { error: "expected a JSON Schema object" }).nullish(),
  strict: z.boolean({ error: "expected a boolean" }).nullish(),
});

export const anthropicRequestSchema = z.object(
  {
    model: str(),
    max_tokens: z.int({ error: "expected an integer" }),
    messages: z.array(anthropicMessage, { error: "expected a sequence of messages" }),
    system: z.union([str(), z.array(textBlock)], { error: "expected a string or an array of text blocks" }).nullish(),
    stop_sequences: z.array(str(), { error: "expected a sequence of strings" }).nullish(),
    stream: z.boolean({ error: "expected a boolean" }).nullish(),
    temperature: num(),
    top_p: num(),
    top_k: num(),
    metadata: z.looseObject({ user_id: str().nullish() }).nullish(),
    thinking: z.looseObject({ type: str(), budget_tokens: num() }, { error: "expected a thinking object" }).nullish(),
    output_config: z.looseObject({ effort: str().nullish() }).nullish(),
    tools: z.array(anthropicTool, { error: "expected a sequence of tools" }).nullish(),
    tool_choice: z.looseObject({ type: str(), name: str().nullish() }, { error: "expected a tool_choice object" }).nullish(),
  },
  { error: "expected a request object" },
);
export type AnthropicRequest = z.output<typeof anthropicRequestSchema>;
export type AnthropicBlock = z.output<typeof block>;

export const countTokensSchema = anthropicRequestSchema.omit({ max_tokens: true });
