import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Services } from "../../services.ts";

/** The customer's profile and KYC levels (`/v2/customer`). */
export const customerRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (_app, _options) => {};
