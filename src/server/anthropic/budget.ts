/**
 * Anthropic's `thinking: {type: "enabled", budget_tokens}` → the engine's reasoning budget: when
 * the reasoning reaches budget_tokens the engine writes `</think>` itself, so the answer (a text
 * or tool_use block) follows within max_tokens. The hosted service ignores budget_tokens
 * (spec §A.11); clients that set it expect the cut (Claude Code sizes max_tokens around it).
 */
import { invalidRequest } from "../errors.js";
import type { AnthropicRequest } from "./schema.js";

export function reasoningBudget(body: Pick<AnthropicRequest, "thinking">): number | undefined {
  const thinking = body.thinking;
  if (!thinking || thinking.type !== "enabled") return undefined;
  const budget = thinking.budget_tokens;
  if (budget === undefined || budget === null) return undefined;
  if (!Number.isInteger(budget) || budget < 0) {
    throw invalidRequest("thinking.budget_tokens", `thinking.budget_tokens must be a non-negative integer, got ${budget}`);
  }
  return budget;
}
