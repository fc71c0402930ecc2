import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { registerTokenCors } from "../../http/cors.ts";
import type { Services } from "../../services.ts";
import { customerRoutes, kycV4Routes } from "./customer.ts";
import { replyWithVaultError } from "./errors.ts";
import { payinRoutes } from "./payin.ts";
import { registerVaultSignIn } from "./signin.ts";

/**
 * The Pay-in API (`/v3/payin`, `/v2/customer`): an end user with a Wallet API login buys crypto
 * with a card. The same access tokens and roles as the Wallet API (customers only); the same error
 * envelope; the core's users, KYC tiers (KYC_0 = tier 1, KYC_1 = tier 2), cards and transactions.
 */
export const payinFace: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  registerVaultSignIn(services);
  await app.register(async (face) => {
    face.setErrorHandler(replyWithVaultError);
    registerTokenCors(face, services.database.db, {
      allowHeaders: "authorization, content-type",
      clientOf: (request) => request.walletSession?.clientId,
      preflightPaths: ["/v2/*", "/v3/*", "/v4/*"],
    });
    await face.register(customerRoutes, { prefix: "/v2/customer", services });
    await face.register(payinRoutes, { prefix: "/v3/payin", services });
    await face.register(kycV4Routes, { prefix: "/v4/kyc", services });
  });
};
