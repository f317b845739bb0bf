/** GET /models and GET /models/{id} in DeepSeek's format (spec §A.1), with and without /v1 and /beta. */
import type { FastifyInstance } from "fastify";
import type { ServerContext } from "../context.js";
import { modelNotExist } from "../errors.js";

export function modelRoutes(app: FastifyInstance, ctx: ServerContext): void {
  for (const prefix of ["", "/v1", "/beta"]) {
    app.get(`${prefix}/models`, async () => ctx.models.list());
    app.get<{ Params: { id: string } }>(`${prefix}/models/:id`, async (request) => {
      if (!ctx.models.has(request.params.id)) throw modelNotExist();
      return ctx.models.object(request.params.id);
    });
  }
}
