import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { FORM_TOKEN, PageForms } from "../../http/page-security.ts";
import { DomainError } from "../../lib/errors.ts";
import { findClient } from "../../modules/clients/service.ts";
import { oneClickOrigins } from "../../modules/oauth/clients.ts";
import type { OneClickRow } from "../../modules/oneclick/service.ts";
import { STATUS } from "../../modules/oneclick/statuses.ts";
import { SANDBOX_TEST_PERSONID } from "../../providers/identity/sandbox.ts";
import type { Services } from "../../services.ts";
import { continueFlow } from "./index.ts";
import { escapeHtml, page, sendPage } from "./pages.ts";

/**
 * The sandbox identity providers' hosted page (`sandbox-bankid`, `sandbox-trustly`; sandbox.md):
 * what a bank-ID app or an open-banking login is in production. It shows the test identity
 * (`199001011234` → Test Testsson) and the deposit, and its forms POST `decision=approve|deny`
 * with `personid` to the page's own URL, which answers with a 302 to the redirect_uri once the
 * operator callbacks and the payment are done, or to the waiting page. The session id (256 random
 * bits, handed only to the browser) is the capability; a live client's session is not found.
 * Only the client's registered origins may frame the page; its decision forms carry the page's
 * token and are refused from another site (http/page-security.ts). Its GET takes no decision (it
 * shows the page, or moves a flow already decided on, as the waiting page does).
 */

const params = z.object({
  sessionId: z.string().max(100).describe("The session id from redirectOutput.url"),
});

export const sandboxIdentityRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (
  app,
  { services },
) => {
  const db = services.database.db;
  const flow = services.oneClick;
  const forms = new PageForms(services.sealer, services.settings.publicUrl);

  app.addContentTypeParser(
    "application/x-www-form-urlencoded",
    { parseAs: "string", bodyLimit: 4096 },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    },
  );

  async function load(sessionId: string) {
    const row = await flow.bySession(sessionId);
    const client = row ? await findClient(db, row.client_id) : undefined;
    const provider = row ? flow.provider(row.identity_provider) : undefined;
    if (!row || !provider || client?.mode !== "sandbox") return undefined;
    const frameAncestors = await oneClickOrigins(db, row.client_id);
    // The decision's answer sends the browser to the redirect_uri or to Ferry's waiting page.
    const formTargets = [...frameAncestors, services.settings.publicUrl];
    return { row, provider, client, frameAncestors, formTargets };
  }

  async function providerPage(
    loaded: NonNullable<Awaited<ReturnType<typeof load>>>,
    options: { error?: string; personid?: string } = {},
  ) {
    const { row, provider, client } = loaded;
    const personid = options.personid ?? SANDBOX_TEST_PERSONID;
    const person = provider.identify(personid);
    const action = `/sandbox/identity/${encodeURIComponent(row.session_id)}`;
    const what = await describe(row);
    const form = (decision: "approve" | "deny", label: string) =>
      `<form method="post" action="${action}"><input type="hidden" name="decision" value="${decision}"><input type="hidden" name="personid" value="${escapeHtml(personid)}">${forms.field("identity", row.session_id)}<button id="${decision}" type="submit">${label}</button></form>`;
    return page(
      provider.displayName,
      `<h1>${escapeHtml(provider.displayName)}</h1>
<p><strong>${escapeHtml(client.name)}</strong> asks you to sign in${what ? ` and ${escapeHtml(what)}` : ""}.</p>
${options.error ? `<p class="error" id="error">${escapeHtml(options.error)}</p>` : ""}
<div class="box"><p>Personal id: <code id="personid">${escapeHtml(personid)}</code><br>Name: <span id="name">${person ? escapeHtml(`${person.firstName} ${person.lastName}`) : "unknown to the sandbox"}</span></p>
<form method="get" action="${action}"><label>Another test person: <input name="personid" value="${escapeHtml(personid)}" inputmode="numeric" maxlength="12" pattern="\\d{12}"></label> <button type="submit" id="change">Show</button></form></div>
<p>This page plays the identity provider: Approve hands your identity (name, birth date, address) to ${escapeHtml(client.name)}${what ? " and pays from your bank" : ""}; a payment of 504.00 fails (no funds).</p>
${form("approve", "Approve")}${form("deny", "Deny")}`,
    );
  }

  async function describe(row: OneClickRow) {
    const amounts = await flow.amountsOf(row);
    return amounts && `deposit ${amounts.txAmount} ${amounts.currency}`;
  }

  const notFound = (reply: Parameters<typeof sendPage>[0]) =>
    sendPage(reply, page("Not found", `<h1>Not found</h1><p>No such sign-in.</p>`), { status: 404 });

  app.get(
    "/identity/:sessionId",
    {
      schema: {
        tags: ["sandbox"],
        summary: "The sandbox identity provider's page (1-Click): Approve or Deny",
        description:
          "Opened by the browser from the authorize answer's redirectOutput.url. Sandbox clients only.",
        params,
        querystring: z.object({ personid: z.string().max(40).optional() }),
        produces: ["text/html"],
      },
    },
    async (request, reply) => {
      const loaded = await load(request.params.sessionId);
      if (!loaded) return notFound(reply);
      if (loaded.row.status_code !== STATUS.WAITING_IDENTITY_PROVIDER)
        return continueFlow(services, reply, loaded.row, loaded.frameAncestors, 0);
      return sendPage(reply, await providerPage(loaded, { personid: request.query.personid }), {
        frameAncestors: loaded.frameAncestors,
        formTargets: loaded.formTargets,
      });
    },
  );

  app.post(
    "/identity/:sessionId",
    {
      schema: {
        tags: ["sandbox"],
        summary: "The user's decision on the sandbox identity provider's page",
        description: `\`decision=approve|deny\` with \`personid\` and the page's \`${FORM_TOKEN}\` token, form-encoded. Answers 302 to the redirect_uri once the operator callbacks and the payment are done, or to the waiting page. From another site (Origin, Sec-Fetch-Site) or without the token → 403, nothing changes.`,
        params,
        consumes: ["application/x-www-form-urlencoded"],
        body: z.object({
          decision: z.enum(["approve", "deny"]),
          personid: z.string().max(40).optional(),
          [FORM_TOKEN]: z.string().max(200).optional(),
        }),
        produces: ["text/html"],
      },
    },
    async (request, reply) => {
      const loaded = await load(request.params.sessionId);
      if (!loaded) return notFound(reply);
      forms.check(request, "identity", loaded.row.session_id, request.body[FORM_TOKEN]);
      let row: OneClickRow;
      try {
        row = await flow.decide(loaded.row, request.body.decision, request.body.personid);
      } catch (error) {
        if (error instanceof DomainError && error.code === "UNKNOWN_PERSON")
          return sendPage(
            reply,
            await providerPage(loaded, { error: error.message, personid: request.body.personid ?? "" }),
            { status: 400, frameAncestors: loaded.frameAncestors, formTargets: loaded.formTargets },
          );
        throw error;
      }
      return continueFlow(services, reply, row, loaded.frameAncestors, 8000, "redirect");
    },
  );
};
