/**
 * The web playground: GET / serves the chat page built by `npm run build:web` (web/ →
 * dist/playground/), GET /playground/{file} its assets. The page talks only to the public API,
 * so these routes hold no state; they need no API key (the page asks for one). A server whose
 * package has no built page still starts: the routes then answer 404 saying how to build it.
 */
import { readFile } from "node:fs/promises";
import { dirname, extname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { ApiError } from "../errors.js";

/** Where `npm run build:web` writes the page, from dist/src/server/routes/ of the package. */
export const DEFAULT_PLAYGROUND_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "playground");

/** Paths served without an API key: the page and its assets. */
export function isPlaygroundPath(path: string): boolean {
  return path === "/" || path === "/index.html" || path.startsWith("/playground/");
}

const CONTENT_TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".map": "application/json; charset=utf-8",
  ".json": "application/json; charset=utf-8",
};

/** Asset names as the build writes them: one path segment, no dot-files, no traversal. */
const ASSET_NAME = /^[A-Za-z0-9_-][A-Za-z0-9_.-]*$/;

/**
 * The page may load only its own bundle and talk only to this server: markdown in answers can
 * neither run scripts nor fetch remote images.
 */
const PAGE_CSP = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join("; ");

function notBuilt(dir: string, path: string): ApiError {
  return new ApiError(
    404,
    `Not Found: GET ${path}: the web playground is not built (no ${join(dir, "index.html")}); run \`npm run build:web\` in the dsv4 repository, then reload`,
    "invalid_request_error",
    "url",
    "not_found",
  );
}

/** The build's gzipped twin of a bundle, when the browser takes gzip. */
async function gzipped(dir: string, name: string, acceptEncoding: string | undefined): Promise<Buffer | null> {
  if (name === "index.html" || !/\bgzip\b/.test(acceptEncoding ?? "")) return null;
  return readFile(join(dir, `${name}.gz`)).catch(() => null);
}

async function sendFile(request: FastifyRequest, reply: FastifyReply, dir: string, name: string, urlPath: string): Promise<FastifyReply> {
  let body: Buffer;
  try {
    body = await readFile(join(dir, name));
  } catch {
    const built = await readFile(join(dir, "index.html")).then(
      () => true,
      () => false,
    );
    if (!built) throw notBuilt(dir, urlPath);
    throw new ApiError(404, `Not Found: GET ${urlPath}: the playground has no asset named ${JSON.stringify(name)}`, "invalid_request_error", "url", "not_found");
  }
  reply.header("content-type", CONTENT_TYPES[extname(name)] ?? "application/octet-stream");
  reply.header("vary", "accept-encoding");
  const gz = await gzipped(dir, name, request.headers["accept-encoding"]);
  if (gz) {
    reply.header("content-encoding", "gzip");
    body = gz;
  }
  reply.header("x-content-type-options", "nosniff");
  // The bundle changes with every build; revalidating costs one small request.
  reply.header("cache-control", "no-cache");
  if (name === "index.html") {
    reply.header("content-security-policy", PAGE_CSP);
    reply.header("referrer-policy", "no-referrer");
  }
  return reply.send(body);
}

/** `dir`: the built page (default DEFAULT_PLAYGROUND_DIR). */
export function playgroundRoutes(app: FastifyInstance, dir: string = DEFAULT_PLAYGROUND_DIR): void {
  for (const path of ["/", "/index.html"]) {
    app.get(path, async (request, reply) => sendFile(request, reply, dir, "index.html", path));
  }
  app.get<{ Params: { file: string } }>("/playground/:file", async (request, reply) => {
    const name = request.params.file;
    const urlPath = `/playground/${name}`;
    if (!ASSET_NAME.test(name)) throw new ApiError(404, `Not Found: GET ${urlPath}`, "invalid_request_error", "url", "not_found");
    return sendFile(request, reply, dir, name, urlPath);
  });
}
