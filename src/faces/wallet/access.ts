import type { FastifyPluginAsyncZod } from "fastify-type-provider-zod";
import { z } from "zod";
import { errorResponses } from "../../http/errors.ts";
import { actorOf, clientBeforeToken, guard, sessionOf, walletSecurity } from "../../http/wallet-session.ts";
import type { IssuedToken } from "../../modules/logins/service.ts";
import type { Services } from "../../services.ts";
import { loginInput, memberOf, okAnswer, otpInput, passwordInput, tokenAnswer } from "./schemas.ts";
import type { WalletApp } from "./views.ts";

const clientHeader = z.object({
  "x-client-id": z
    .string()
    .max(255)
    .optional()
    .describe("The client (default: the installation's default client)"),
});

export function tokenCreated(issued: IssuedToken) {
  return {
    action: "TOKEN_CREATED" as const,
    authorizationToken: { token: issued.token, expiresAt: issued.expiresAt.toISOString() },
    members: [memberOf(issued.login)],
  };
}

/** Log in and out, register with a one-time code, recover a password. */
const tags = ["wallet: access"];

export const accessRoutes: FastifyPluginAsyncZod<{ services: Services }> = async (app, { services }) => {
  logIn(app, services);
  logOutAndChangePassword(app, services);
  registration(app, services);
  resendAndRecovery(app, services);
};

function logIn(app: WalletApp, services: Services) {
  const { logins } = services;
  app.post(
    "/authorization",
    {
      schema: {
        tags,
        summary: "Log in: an access token, or a code to the login when it has two-factor on",
        headers: clientHeader,
        body: z
          .object({ login: loginInput, password: passwordInput })
          .strict()
          .meta({ example: { login: "anna@example.com", password: "Str0ng#Pass" } }),
        response: {
          200: z.union([tokenAnswer, z.object({ action: z.literal("OTP_SENT") })]),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      const outcome = await logins.authorize(clientId, request.body.login, request.body.password);
      return outcome.action === "OTP_SENT" ? { action: "OTP_SENT" as const } : tokenCreated(outcome.issued);
    },
  );

  app.post(
    "/authorization/confirm",
    {
      schema: {
        tags,
        summary: "The second factor: the code sent at login → an access token",
        headers: clientHeader,
        body: z.object({ login: loginInput, otp: otpInput }).strict(),
        response: { 200: tokenAnswer, ...errorResponses(400, 401, 403, 404, 409) },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      return tokenCreated(await logins.confirmLogin(clientId, request.body.login, request.body.otp));
    },
  );

  app.post(
    "/authorization/resend-otp",
    {
      schema: {
        tags,
        summary: "Another login code (the count of wrong codes carries over)",
        headers: clientHeader,
        body: z.object({ login: loginInput }).strict(),
        response: { 200: okAnswer, ...errorResponses(400, 403, 404, 429) },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      await logins.resendLoginCode(clientId, request.body.login);
      return { status: "ok" as const };
    },
  );
}

function logOutAndChangePassword(app: WalletApp, services: Services) {
  const { logins } = services;
  app.delete(
    "/authorization",
    {
      preValidation: guard(services, "session"),
      schema: {
        tags,
        summary: "Log out: this token ends",
        security: walletSecurity,
        response: { 200: okAnswer, ...errorResponses(401) },
      },
    },
    async (request) => {
      await logins.revoke(sessionOf(request).tokenHash);
      return { status: "ok" as const };
    },
  );

  app.post(
    "/password/change",
    {
      preValidation: guard(services, "session"),
      schema: {
        tags,
        summary: "Change one's password (the old one first); every other token of the login ends",
        security: walletSecurity,
        body: z.object({ oldPassword: passwordInput, newPassword: passwordInput }).strict(),
        response: { 200: okAnswer, ...errorResponses(400, 401) },
      },
    },
    async (request) => {
      const session = sessionOf(request);
      await logins.changePassword(
        { clientId: session.clientId, actor: actorOf(session) },
        session.userId,
        session.tokenHash,
        request.body,
      );
      return { status: "ok" as const };
    },
  );
}

function registration(app: WalletApp, services: Services) {
  const { logins } = services;
  app.post(
    "/registration",
    {
      schema: {
        tags,
        summary: "Self-registration: a 6-digit code (valid 24 h) goes to the login",
        headers: clientHeader,
        body: z
          .object({
            login: loginInput.describe("An e-mail address or a phone number without +"),
            role: z.enum(["individual", "merchant"]),
            legalType: z.enum(["individual", "corporation"]).optional(),
          })
          .strict()
          .meta({ example: { login: "anna@example.com", role: "individual", legalType: "individual" } }),
        response: {
          200: z.object({ status: z.literal("ok"), action: z.literal("OTP_SENT") }),
          ...errorResponses(400, 403, 404, 409),
        },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      await logins.register(clientId, request.body);
      return { status: "ok" as const, action: "OTP_SENT" as const };
    },
  );

  app.post(
    "/registration/confirm",
    {
      schema: {
        tags,
        summary: "The code and a password: the account is made and logged in",
        description:
          "Password rules: at least 8 characters with an upper-case letter, a lower-case letter, a digit and one of # $ ! @ * & %. Five wrong codes lock the registration until its code expires.",
        headers: clientHeader,
        body: z
          .object({ login: loginInput, otp: otpInput, password: passwordInput })
          .strict()
          .meta({ example: { login: "anna@example.com", otp: "482913", password: "Str0ng#Pass" } }),
        response: { 200: tokenAnswer, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      return tokenCreated(
        await logins.confirmRegistration({ clientId, actor: { kind: "user", id: null } }, request.body),
      );
    },
  );
}

function resendAndRecovery(app: WalletApp, services: Services) {
  const { logins } = services;
  app.post(
    "/registration/resend-otp",
    {
      schema: {
        tags,
        summary: "Another registration code",
        headers: clientHeader,
        body: z.object({ login: loginInput }).strict(),
        response: { 200: okAnswer, ...errorResponses(400, 403, 404, 429) },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      await logins.resendRegistration(clientId, request.body.login);
      return { status: "ok" as const };
    },
  );

  app.post(
    "/password/recovery",
    {
      schema: {
        tags,
        summary: "A password reset code to the login (the answer is the same whether or not it exists)",
        headers: clientHeader,
        body: z.object({ login: loginInput }).strict(),
        response: { 200: okAnswer, ...errorResponses(400, 404) },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      await logins.startRecovery(clientId, request.body.login);
      return { status: "ok" as const };
    },
  );

  app.post(
    "/password/recovery/confirm",
    {
      schema: {
        tags,
        summary: "The reset code and a new password: every token of the login ends",
        headers: clientHeader,
        body: z.object({ login: loginInput, otp: otpInput, password: passwordInput }).strict(),
        response: { 200: okAnswer, ...errorResponses(400, 403, 404, 409) },
      },
    },
    async (request) => {
      const clientId = await clientBeforeToken(services, request);
      await logins.confirmRecovery({ clientId, actor: { kind: "user", id: null } }, request.body);
      return { status: "ok" as const };
    },
  );
}
