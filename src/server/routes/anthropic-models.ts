/**
 * GET /anthropic/v1/models and /anthropic/v1/models/{id}: the served names in Anthropic's
 * list shape (clients such as Claude Code list models before choosing one). A `claude-*` id
 * resolves as /anthropic/v1/messages resolves it, so a client may look up the name it sends.
 */
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { ApiError } from "../errors.js";

/** Anthropic's ModelInfo. `created_at`: fixed, the date of the V4 release, so lists are stable. */
function modelInfo(id: string): { type: "model"; id: string; display_name: string; created_at: string } {
  return { type: "model", id, display_name: id, created_at: "2026-04-24T00:00:00Z" };
}

export function anthropicModelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  app.get("/anthropic/v1/models", async () => {
    const data = ctx.models.names.map(modelInfo);
    return { data, has_more: false, first_id: data[0]?.id ?? null, last_id: data[data.length - 1]?.id ?? null };
  });
  app.get<{ Params: { id: string } }>("/anthropic/v1/models/:id", async (request) => {
    const id = request.params.id;
    if (!ctx.models.has(id) && !id.startsWith("claude-")) {
      throw new ApiError(404, `model: ${id} is not served here; GET /anthropic/v1/models lists the served models`, "not_found_error", "model", "not_found_error");
    }
    return modelInfo(id);
  });
}
