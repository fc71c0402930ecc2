import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { sql } from "kysely";
import { cachedRead } from "../db/cache.ts";
import type { Db } from "../db/database.ts";
import { findClient } from "../modules/clients/service.ts";

/**
 * CORS for the faces browsers call with a bearer token (Wallet API, Pay-in API): a client's
 * `allowedOrigins` may read the answers. The preflight carries no token, so an origin that some
 * client allows is answered; each answer then names the origin only when the request's own client
 * allows it (the token's client, or the one named before there is a token). Tokens travel in a
 * header, never a cookie: a page of another origin cannot use one it does not hold.
 */
export function registerTokenCors(
  app: FastifyInstance,
  db: Db,
  options: {
    allowHeaders: string;
    clientOf: (request: FastifyRequest) => string | undefined;
    /** Where preflights are answered (default: everything under the face's prefix). */
    preflightPaths?: string[];
  },
): void {
  const anyClientAllows = (origin: string) =>
    cachedRead(db, "cors-origin", origin, async () => {
      const { rows } = await sql<{
        ok: number;
      }>`SELECT 1 AS ok FROM clients WHERE ${origin} = ANY(allowed_origins) LIMIT 1`.execute(db);
      return rows.length > 0 ? true : undefined;
    });

  const preflight = async (request: FastifyRequest, reply: FastifyReply) => {
    const origin = request.headers.origin;
    if (origin && (await anyClientAllows(origin))) {
      reply.header("Access-Control-Allow-Origin", origin);
      reply.header("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE");
      reply.header("Access-Control-Allow-Headers", options.allowHeaders);
      reply.header("Access-Control-Max-Age", "600");
      reply.header("Vary", "Origin");
    }
    reply.code(204).send();
  };
  for (const path of options.preflightPaths ?? ["/*"])
    app.options(path, { schema: { hide: true } }, preflight);

  app.addHook("onSend", async (request, reply, payload) => {
    const origin = request.headers.origin;
    if (!origin || reply.getHeader("Access-Control-Allow-Origin")) return payload;
    const clientId = options.clientOf(request);
    const client = clientId ? await findClient(db, clientId).catch(() => undefined) : undefined;
    const allowed = client ? client.allowedOrigins.includes(origin) : await anyClientAllows(origin);
    if (allowed) {
      reply.header("Access-Control-Allow-Origin", origin);
      reply.header("Vary", "Origin");
    }
    return payload;
  });
}
