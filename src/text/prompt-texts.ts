/**
 * Fixed English texts the model was trained on (spec §B.2, §C.3, §C.5). Every
 * byte matters: they are checked against the official fixtures.
 */
import { DSML, THINK_END, THINK_START } from "./special-tokens.js";

/** April open-weights `max` text; the 0731 encoder uses it for `high`. */
export const EFFORT_ABSOLUTE_MAXIMUM =
  "Reasoning Effort: Absolute maximum with no shortcuts permitted.\n" +
  "You MUST be very thorough in your thinking and comprehensively decompose the problem to resolve the root cause, rigorously stress-testing your logic against all potential paths, edge cases, and adversarial scenarios.\n" +
  "Explicitly write out your entire deliberation process, documenting every intermediate step, considered alternative, and rejected hypothesis to ensure absolutely no assumption is left unchecked.\n\n";

/** 0731 encoder `max` text (the dash is U+2014). */
export const EFFORT_BEYOND_MAXIMUM =
  "Reasoning Effort: Beyond maximum \u2014 exhaustive, relentless, and uncompromising.\n" +
  "You MUST reason with the utmost depth and rigor, leaving absolutely nothing to chance: exhaustively decompose the problem into its most fundamental components, trace every causal chain to its root, and resolve the underlying cause rather than any surface symptom.\n" +
  "Do not stop reasoning until you have independently verified the solution from multiple angles and are certain that no assumption remains unchecked and no error remains undiscovered.\n\n";

export const RESPONSE_FORMAT_HEADER =
  "## Response Format:\n\nYou MUST strictly adhere to the following schema to reply:\n";

/** The TOOLS BLOCK of §C.5 around the one-JSON-line-per-tool schema list. */
export function toolsBlock(schemaLines: string[]): string {
  return (
    "## Tools\n\n" +
    `You have access to a set of tools to help answer the user's question. You can invoke tools by writing a "<${DSML}tool_calls>" block like the following:\n\n` +
    `<${DSML}tool_calls>\n` +
    `<${DSML}invoke name="$TOOL_NAME">\n` +
    `<${DSML}parameter name="$PARAMETER_NAME" string="true|false">$PARAMETER_VALUE</${DSML}parameter>\n` +
    "...\n" +
    `</${DSML}invoke>\n` +
    `<${DSML}invoke name="$TOOL_NAME2">\n` +
    "...\n" +
    `</${DSML}invoke>\n` +
    `</${DSML}tool_calls>\n\n` +
    'String parameters should be specified as is and set `string="true"`. For all other types (numbers, booleans, arrays, objects), pass the value in JSON format and set `string="false"`.\n\n' +
    `If thinking_mode is enabled (triggered by ${THINK_START}), you MUST output your complete reasoning inside ${THINK_START}...${THINK_END} BEFORE any tool calls or final response.\n\n` +
    `Otherwise, output directly after ${THINK_END} with tool calls or final response.\n\n` +
    "### Available Tool Schemas\n\n" +
    schemaLines.join("\n") +
    "\n\nYou MUST strictly follow the above defined tool name and parameter schemas to invoke tool calls.\n"
  );
}
