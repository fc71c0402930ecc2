import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { requirePlatformAdmin } from "../../http/basic-auth.ts";
import { errorResponses } from "../../http/errors.ts";
import { FORM_TOKEN, PageForms, securePage } from "../../http/page-security.ts";
import type { Services } from "../../services.ts";
import { guardSandboxBank, guardSandboxChallenge } from "./access.ts";

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE =
  "body{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;padding:0 1rem}button{font-size:1rem;padding:.6rem 1.2rem;margin-right:.5rem}";

function page(title: string, body: string) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>${STYLE}</style>
</head><body>${body}</body></html>`;
}

const reference = z.object({
  reference: z.string().regex(/^sbxch_[0-9a-f-]{36}$/, "a sandbox charge reference"),
});

type Returns = { successUrl?: string; failUrl?: string } | null;

/**
 * The sandbox acquirer's hosted 3-D Secure challenge page: "Complete" approves the charge,
 * "Fail" declines it; either way Ferry records the outcome at once. Nobody may frame the page;
 * its forms carry the page's token and are refused from another site (http/page-security.ts); they
 * may lead only to Ferry and to the charge's return URLs (a Pay-in successUrl / failUrl).
 */
export const sandboxAcquirerRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (
  app,
  { services },
) => {
  guardSandboxChallenge(app, services); // sandbox clients' charges only
  const forms = new PageForms(services.sealer, services.settings.publicUrl);
  // The page's forms post application/x-www-form-urlencoded.
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 4096 },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );

  app.get(
    "/acquirer/challenge/:reference",
    {
      schema: {
        tags: ["sandbox"],
        summary: "The sandbox 3-D Secure challenge page",
        params: reference,
        produces: ["text/html"],
      },
    },
    async (request, reply) => {
      const ref = escapeHtml(request.params.reference);
      const returns = (await services.transactions.byReference(request.params.reference))?.process as Returns;
      const form = (decision: "complete" | "fail", label: string) =>
        `<form method="post" action="/sandbox/acquirer/challenge/${ref}"><input type="hidden" name="decision" value="${decision}">${forms.field("3ds-challenge", request.params.reference)}<button id="${decision}">${label}</button></form>`;
      return securePage(reply, {
        styles: [STYLE],
        formTargets: [returns?.successUrl, returns?.failUrl].filter((u): u is string => !!u),
      }).send(
        page(
          "Sandbox 3-D Secure",
          `<h1>Sandbox 3-D Secure</h1><p>This page plays your bank's card check.</p>
${form("complete", "Complete")}
${form("fail", "Fail")}`,
        ),
      );
    },
  );

  app.post(
    "/acquirer/challenge/:reference",
    {
      schema: {
        tags: ["sandbox"],
        summary: "Finish the sandbox 3-D Secure challenge",
        description: `Form-encoded \`decision=complete|fail\` with the page's \`${FORM_TOKEN}\` token; from another site (Origin, Sec-Fetch-Site) or without the token → 403, nothing changes.`,
        params: reference,
        body: z.object({
          decision: z.enum(["complete", "fail"]),
          [FORM_TOKEN]: z.string().max(200).optional(),
        }),
        produces: ["text/html"],
      },
    },
    async (request, reply) => {
      forms.check(request, "3ds-challenge", request.params.reference, request.body[FORM_TOKEN]);
      const transaction = await services.transactions.completeChallenge(
        request.params.reference,
        request.body.decision === "complete",
      );
      // A face that gave return URLs (the Pay-in API's successUrl / failUrl) gets the browser back.
      const returns = transaction.process as Returns;
      const back = transaction.status === "CAPTURED" ? returns?.successUrl : returns?.failUrl;
      if (back) return reply.header("Referrer-Policy", "no-referrer").redirect(back, 303);
      return securePage(reply, { styles: [STYLE] }).send(
        page(
          "Sandbox 3-D Secure",
          `<h1 id="outcome">${transaction.status === "CAPTURED" ? "Payment approved" : "Payment declined"}</h1><p>Transaction ${escapeHtml(transaction.requestId)}: ${escapeHtml(transaction.status)}. You may close this page.</p>`,
        ),
      );
    },
  );
};

/** The sandbox bank: simulate an incoming transfer (a bank deposit's money arriving). */
export const sandboxBankRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  guardSandboxBank(app, services); // admin or the owning client's signature; sandbox clients only
  app.post(
    "/bank/incoming",
    {
      schema: {
        tags: ["sandbox"],
        summary: "Simulate money arriving at the transit account",
        description:
          "Matched to the bank deposit awaiting this reference; the amount and currency must be the ones asked for. `transferId` is the bank's id of the transfer (default: the reference): the same one twice is one transfer. Money for a deposit that no longer takes it (cancelled, already paid) is held apart and sent back (`outcome: RETURNING`).",
        body: z
          .object({
            reference: z.string().regex(/^FRY[A-Z0-9]{10}$/, "a payment reference such as FRYAB23CD45EF"),
            amount: z.union([z.string().max(60), z.number()]),
            currency: z.string().regex(/^[A-Z0-9]{2,12}$/),
            transferId: z
              .string()
              .regex(/^[A-Za-z0-9_-]{3,64}$/)
              .optional(),
          })
          .strict(),
        response: {
          200: z.object({
            requestId: z.string(),
            status: z.string(),
            outcome: z.enum(["CREDITED", "RETURNING", "DUPLICATE"]),
          }),
        },
      },
    },
    async (request) => {
      const { transaction, outcome } = await services.transactions.incomingBankTransfer(
        request.body.reference,
        request.body.amount,
        request.body.currency,
        request.body.transferId,
      );
      return { requestId: transaction.requestId, status: transaction.status, outcome };
    },
  );
};

/**
 * The sandbox notifier's outbox: the messages (one-time codes, credentials) Ferry would have
 * e-mailed or texted, for the platform admin. Sandbox clients' messages only.
 */
export const sandboxOutboxRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (
  app,
  { services },
) => {
  app.addHook("onRequest", requirePlatformAdmin(services.adminAuthenticator));
  app.get(
    "/outbox",
    {
      schema: {
        tags: ["sandbox"],
        summary: "What the sandbox notifier sent (OTPs, credentials), newest first",
        security: [{ adminBasic: [] }],
        querystring: z
          .object({
            to: z
              .string()
              .min(1)
              .max(254)
              .optional()
              .describe("The login it went to (an e-mail, or a phone number's digits)"),
            clientId: z
              .string()
              .regex(/^[A-Za-z0-9_-]{3,255}$/)
              .optional(),
            limit: z.coerce.number().int().min(1).max(200).default(50),
          })
          .strict(),
        response: {
          200: z.object({
            records: z.array(
              z.object({
                clientId: z.string(),
                to: z.string(),
                kind: z.enum(["REGISTRATION", "LOGIN", "CREDENTIALS", "PASSWORD_RESET"]),
                otp: z.string().optional(),
                text: z.string(),
                createdAt: z.string(),
              }),
            ),
          }),
          ...errorResponses(400, 401),
        },
      },
    },
    async (request) => {
      const { to, clientId, limit } = request.query;
      return { records: await services.sandbox.notifier.sandboxOutbox({ to, clientId, limit }) };
    },
  );
};
