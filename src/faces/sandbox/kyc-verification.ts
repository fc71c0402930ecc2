import type { FastifyReply } from "fastify";
import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { FORM_TOKEN, PageForms, securePage } from "../../http/page-security.ts";
import {
  alreadyDecidedPage,
  VERIFICATION_PAGE_STYLE,
  verificationPage,
} from "../../providers/kyc/sandbox-verification.ts";
import type { Services } from "../../services.ts";

/**
 * The HTTP routes of the sandbox KYC provider's hosted verification page (the Pay-in API's `KYC_1`
 * check; `POST /v2/customer/kyc/start` hands out its address). The page and its table are the
 * provider's (providers/kyc/sandbox-verification.ts); what a decision does is the Pay-in module's
 * (modules/payin/customers.ts). A live client's verification is answered as unknown (404).
 * Nobody may frame the page; its forms carry the page's token and are refused from another site
 * (http/page-security.ts).
 */

const params = z.object({ id: z.uuid().describe("The verification's id (from verificationUrl)") }).strict();

// The address is the capability: kept out of caches and other sites' Referer headers (securePage).
const html = (reply: FastifyReply, body: string, status = 200) =>
  securePage(reply.code(status), { styles: [VERIFICATION_PAGE_STYLE] }).send(body);

/** The sandbox KYC provider's hosted page; register under `/sandbox` (with the other sandbox routes). */
export const sandboxKycRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  const forms = new PageForms(services.sealer, services.settings.publicUrl);
  const field = (id: string) => forms.field("kyc-verification", id);
  // The page's forms post application/x-www-form-urlencoded.
  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 4096 },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );

  app.get(
    "/kyc/verification/:id",
    {
      schema: {
        tags: ["sandbox"],
        summary: "The sandbox KYC provider's ID + liveness page (Pay-in KYC_1 check)",
        description:
          "Opened by the customer's browser from `verificationUrl`; the id is the capability. Buttons: Submit documents, Cancel. Sandbox clients only.",
        params,
        produces: ["text/html"],
        response: { ...errorResponses(400, 404) },
      },
    },
    async (request, reply) =>
      html(
        reply,
        verificationPage(
          await services.payinCustomers.verification(request.params.id),
          field(request.params.id),
        ),
      ),
  );

  app.post(
    "/kyc/verification/:id",
    {
      schema: {
        tags: ["sandbox"],
        summary: "Submit the sandbox ID + liveness capture (starts the KYC_1 assessment), or cancel",
        description: `\`decision=submit\` records a sandbox passport in the user's information and starts the KYC assessment (the sandbox decides by last name after its delay); \`decision=cancel\` abandons the page. The same decision again shows the same result; the other one, once decided, is a 409. With the page's \`${FORM_TOKEN}\` token; from another site (Origin, Sec-Fetch-Site) or without the token → 403, nothing changes.`,
        params,
        consumes: ["application/x-www-form-urlencoded", "application/json"],
        body: z
          .object({ decision: z.enum(["submit", "cancel"]), [FORM_TOKEN]: z.string().max(200).optional() })
          .strict(),
        produces: ["text/html"],
        response: { ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request, reply) => {
      forms.check(request, "kyc-verification", request.params.id, request.body[FORM_TOKEN]);
      const { verification, decided } = await services.payinCustomers.decideVerification(
        request.params.id,
        request.body.decision,
      );
      return decided
        ? html(reply, verificationPage(verification, field(verification.id)))
        : html(reply, alreadyDecidedPage(verification.status), 409);
    },
  );
};
