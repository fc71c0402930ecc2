import { z } from "zod";
import { CLIENT_CHOSEN_ID } from "../../lib/ids.ts";
import type { OneClickSettings } from "../oauth/clients.ts";
import {
  DestinationRefusedError,
  postForAnswer,
  ReceiverAnswerTooLargeError,
  ReceiverTimeoutError,
} from "../webhooks/destinations.ts";

/**
 * Ferry → operator callbacks (oneclick-api.md): JSON POSTs to the operator's callback URL with
 * `{action}` replaced, authenticated with the operator's Basic credentials or Bearer token. An
 * answer is an HTTP 2xx with a JSON object whose `success` is a boolean; a refusal is
 * `success: false` with `errCode`, `errMsg`. Anything else — a timeout, a non-2xx status, a body
 * that is not JSON, `success` missing or the string "true" — is a failed call (`CallbackError`),
 * retried by the step that made it on the same `txId`.
 */

export const CALLBACK_ACTIONS = ["verifyuser", "signin", "authorize", "transfer", "cancel"] as const;
export type CallbackAction = (typeof CALLBACK_ACTIONS)[number];

export type CallbackFailure = "TIMEOUT" | "UNREACHABLE" | "HTTP_STATUS" | "NOT_JSON" | "INVALID_ANSWER";

/** A callback that got no usable answer; its message starts with the failure's name (kept on the step). */
export class CallbackError extends Error {
  constructor(
    readonly failure: CallbackFailure,
    message: string,
  ) {
    super(`${failure}: ${message}`);
    this.name = "CallbackError";
  }
}

/** The failure named at the start of a step's last error (`CallbackError: TIMEOUT: …`). */
export function failureOf(lastError: string): CallbackFailure | undefined {
  const m = /^CallbackError: (TIMEOUT|UNREACHABLE|HTTP_STATUS|NOT_JSON|INVALID_ANSWER):/.exec(lastError);
  return m?.[1] as CallbackFailure | undefined;
}

// The core user is kept under the operator's userId: the core's id rule (users.id), so that an id
// Ferry cannot keep is an invalid answer rather than a database error when the user is created.
const operatorUserId = z.string().regex(CLIENT_CHOSEN_ID, "3 to 255 letters, digits, _ or -");
const text = z.string().max(500);
const optionalText = z
  .union([z.string().max(500), z.number()])
  .transform((v) => String(v))
  .optional();

const refusal = z.object({
  success: z.literal(false),
  userId: z.string().max(200).optional(),
  errCode: optionalText,
  errMsg: optionalText,
});

const answers = {
  verifyuser: z.object({
    success: z.literal(true),
    userId: operatorUserId,
    balance: optionalText,
    balanceCy: text.optional(),
  }),
  signin: z.object({
    success: z.literal(true),
    userId: operatorUserId,
    sessionId: text.optional(),
    balance: optionalText,
    balanceCy: text.optional(),
  }),
  authorize: z.object({
    success: z.literal(true),
    userId: operatorUserId,
    merchantTxId: optionalText,
    authCode: optionalText,
  }),
  transfer: z.object({
    success: z.literal(true),
    userId: operatorUserId,
    txId: optionalText,
    merchantTxId: optionalText,
  }),
  cancel: z.object({ success: z.literal(true), userId: operatorUserId.optional() }),
} as const;

export type CallbackAnswer<A extends CallbackAction> =
  | z.infer<(typeof answers)[A]>
  | { success: false; errCode?: string | undefined; errMsg?: string | undefined };

export interface CallbackTarget {
  clientId: string;
  settings: OneClickSettings;
  /** Keep to public addresses (a live client, unless the installation allows private ones). */
  publicOnly: boolean;
  timeoutMs: number;
}

const MAX_ANSWER_BYTES = 64 * 1024;

export function callbackUrl(settings: OneClickSettings, action: CallbackAction): string {
  return settings.callbackUrl.replaceAll("{action}", action);
}

function authorization(settings: OneClickSettings): string {
  const auth = settings.callbackAuth;
  return auth.type === "basic"
    ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString("base64")}`
    : `Bearer ${auth.token}`;
}

/**
 * Calls the operator and answers its decision, or throws a `CallbackError`. The call settles
 * within `target.timeoutMs` whatever the operator does (postForAnswer), or when `signal` aborts
 * (the step runner gave up on the attempt: its deadline, shutdown).
 */
export async function callOperator<A extends CallbackAction>(
  target: CallbackTarget,
  action: A,
  body: Record<string, unknown>,
  signal?: AbortSignal,
): Promise<CallbackAnswer<A>> {
  let answer: Awaited<ReturnType<typeof postForAnswer>>;
  try {
    answer = await postForAnswer({
      url: callbackUrl(target.settings, action),
      headers: {
        "content-type": "application/json",
        accept: "application/json",
        authorization: authorization(target.settings),
        "user-agent": "Ferry-1Click/1",
      },
      body: JSON.stringify(body),
      timeoutMs: target.timeoutMs,
      publicOnly: target.publicOnly,
      // Kept-alive connections per client and public-only rule, never shared with another client.
      connections: `oneclick:${target.clientId}:${target.publicOnly}`,
      maxBodyBytes: MAX_ANSWER_BYTES,
      signal,
    });
  } catch (error) {
    if (error instanceof ReceiverTimeoutError)
      throw new CallbackError(
        "TIMEOUT",
        `the operator did not answer ${action} within ${target.timeoutMs} ms`,
      );
    if (error instanceof DestinationRefusedError)
      throw new CallbackError("UNREACHABLE", `the callback URL ${error.message}`);
    if (error instanceof ReceiverAnswerTooLargeError)
      throw new CallbackError(
        "INVALID_ANSWER",
        `the operator's ${action} answer is too large (over ${MAX_ANSWER_BYTES} bytes)`,
      );
    throw new CallbackError(
      "UNREACHABLE",
      `${action}: ${(error as { code?: string }).code ?? (error as Error).message}`,
    );
  }
  if (answer.status < 200 || answer.status > 299)
    throw new CallbackError("HTTP_STATUS", `the operator answered ${action} with HTTP ${answer.status}`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(answer.body);
  } catch {
    throw new CallbackError("NOT_JSON", `the operator's ${action} answer is not JSON`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new CallbackError("INVALID_ANSWER", `the operator's ${action} answer is not a JSON object`);
  const success = (parsed as { success?: unknown }).success;
  if (typeof success !== "boolean")
    throw new CallbackError(
      "INVALID_ANSWER",
      `the operator's ${action} answer has ${success === undefined ? "no" : `a ${typeof success}`} "success" (a boolean is required)`,
    );
  const schema = success ? answers[action] : refusal;
  const result = schema.safeParse(parsed);
  if (!result.success) {
    const issue = result.error.issues[0];
    throw new CallbackError(
      "INVALID_ANSWER",
      `the operator's ${action} answer: ${issue?.path.join(".") || "body"} ${issue?.message ?? "is not valid"}`,
    );
  }
  return result.data as CallbackAnswer<A>;
}
