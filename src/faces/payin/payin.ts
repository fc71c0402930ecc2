import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import type { Services } from "../../services.ts";
import { cardRoutes } from "./cards.ts";
import { purchaseRoutes } from "./purchases.ts";

/** Cards, rates and limits, offers, payment and its status (`/v3/payin`). */
export const payinRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  cardRoutes(app, services);
  purchaseRoutes(app, services);
};
