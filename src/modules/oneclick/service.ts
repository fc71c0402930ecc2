// Over 400 lines on purpose: the 1-Click flow's whole life (start, the provider's decision, the
// operator callbacks as durable steps, the payment, the code, the token, staff resolution) in one
// place, so that its states and money movements read together.
import { createHash, randomBytes } from "node:crypto";
import { SignJWT } from "jose";
import type { Db } from "../../db/database.ts";
import { inTransaction } from "../../db/transaction.ts";
import { type Actor, providerActor } from "../../lib/context.ts";
import { toAlpha3 } from "../../lib/countries.ts";
import { DomainError } from "../../lib/errors.ts";
import { formatAmount } from "../../lib/money.ts";
import type { Sealer } from "../../lib/sealer.ts";
import type { IdentityProvider, ProvenIdentity } from "../../providers/identity/interface.ts";
import { writeAudit } from "../audit/service.ts";
import { getClient } from "../clients/service.ts";
import { FERRY_SIGNING_ALG, type SigningKeys } from "../keys/service.ts";
import type { Kyc } from "../kyc/service.ts";
import * as ledger from "../ledger/service.ts";
import { type MonitoringConfig, type SanctionsList, screenPerson } from "../monitoring/rules.ts";
import { type OneClickSettings, oneClickOf } from "../oauth/clients.ts";
import type { StepRunner } from "../steps/runner.ts";
import type { ExternalProcesses } from "../transactions/service.ts";
import type { UserInfo } from "../users/schemas.ts";
import type { Users } from "../users/service.ts";
import { mustBePublic } from "../webhooks/destinations.ts";
import {
  AuthorizeRefusal,
  admitCurrency,
  authorizationTarget,
  depositOf,
  mustHaveSecret,
} from "./authorization.ts";
import { OneClickEngine, snapshotOf } from "./process.ts";
import * as repo from "./repo.ts";
import { type OneClickRow, PROCESS_TYPE, requestIdOf, txRefIdOf } from "./repo.ts";
import { isFinal, STATUS, stateOf, statusNameOf, type TxState } from "./statuses.ts";
import { registerOneClickSteps } from "./steps.ts";

export { AuthorizeRefusal } from "./authorization.ts";
export { type OneClickRow, PROCESS_TYPE, requestIdOf, txRefIdOf } from "./repo.ts";

export interface OneClickConfig {
  publicUrl: string;
  /** How long Ferry waits for an operator's answer (10 s). */
  callbackTimeoutMs: number;
  /** Attempts of signin, verifyuser and authorize (the user waits for them). */
  callbackAttempts: number;
  /** Attempts of transfer and cancel before the flow is INCONSISTENT (transfer) or the step FAILED (cancel). */
  transferAttempts: number;
  /** Base of the callbacks' exponential backoff. */
  retryBaseMs: number;
  tokenTtlSeconds: number;
  /** How long the user has to decide on the provider's page. */
  sessionTtlSeconds: number;
}

export interface OneClickDependencies {
  db: Db;
  sealer: Sealer;
  users: Users;
  kyc: Kyc;
  /** The money core: the quote stage, the posting recipe, the usage buckets, the event sink. */
  core: ExternalProcesses;
  steps: StepRunner;
  signingKeys: SigningKeys;
  sanctions: SanctionsList;
  providers: IdentityProvider[];
  config: OneClickConfig;
}

/** A parsed authorization request, before the client's own rules (authorization.ts) have looked at it. */
export interface BeginInput extends Omit<StartInput, "amount" | "currency"> {
  /** A deposit's amount and currency as sent (decimal text in major units, an ISO code). */
  amountText?: string | undefined;
  currencyCode?: string | undefined;
}

export interface StartInput {
  clientId: string;
  provider: string;
  redirectUri: string;
  /** Whether the authorization request named it (else the client's only registered one is used). */
  redirectUriGiven: boolean;
  state?: string | undefined;
  scope: string;
  locale?: string | undefined;
  iframe: boolean;
  codeChallenge?: string | undefined;
  /** The end user's address as the authorize request came (the token's `ip`). */
  endUserIp?: string | undefined;
  /** PaymentIQ's `attributes[key]` of the authorize request, echoed in the signin callback. */
  attributes?: Record<string, string> | undefined;
  /** A deposit: minor units of `currency`. */
  amount?: bigint | undefined;
  currency?: string | undefined;
}

/**
 * The redirect_uri with an answer's parameters (RFC 6749 §4.1.2: a code, or an error), the
 * request's state (an over-long one is not echoed), and who answered (RFC 9207 `iss`, so that a
 * client talking to several servers cannot be mixed up).
 */
export function answerUrl(
  redirectUri: string,
  params: Record<string, string | null | undefined>,
  state: string | null | undefined,
  issuer: string,
): string {
  const url = new URL(redirectUri);
  for (const [name, value] of Object.entries(params)) if (value) url.searchParams.set(name, value);
  if (state && state.length <= 500) url.searchParams.set("state", state);
  url.searchParams.set("iss", issuer);
  return url.toString();
}

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const CODE_TTL_MS = 60_000;

/** The OAuth token endpoint's errors (RFC 6749 §5.2): the face answers them as they are. */
export class OAuthError extends Error {
  constructor(
    readonly error:
      | "invalid_request"
      | "invalid_client"
      | "invalid_grant"
      | "unsupported_grant_type"
      | "invalid_token",
    readonly description: string,
    readonly status = error === "invalid_client" ? 401 : 400,
  ) {
    super(description);
    this.name = "OAuthError";
  }
}

/** The 1-Click flow (oneclick-api.md) on the core: users, the quote stage, ledger recipes, steps, audit, events. */
export class OneClick {
  readonly #providers: Map<string, IdentityProvider>;
  /** The only writer of a flow's status (process-table.ts). */
  readonly engine: OneClickEngine;

  constructor(readonly deps: OneClickDependencies) {
    this.#providers = new Map(deps.providers.map((p) => [p.name, p]));
    this.engine = new OneClickEngine({
      steps: deps.steps,
      core: deps.core,
      ensureUser: (tx, row) => this.ensureUser(tx, row),
    });
    registerOneClickSteps(this);
  }

  get db(): Db {
    return this.deps.db;
  }

  providerNames(): string[] {
    return [...this.#providers.keys()];
  }

  provider(name: string): IdentityProvider | undefined {
    return this.#providers.get(name);
  }

  // ——— start: GET /oauth/authorize ———

  /** The client an authorization request names, when it may start a 1-Click flow (active, set up). */
  authorizationTarget(clientId: string) {
    return authorizationTarget(this.db, clientId);
  }

  /**
   * Starts a flow from a parsed authorization request once the client's own rules allow it: an
   * identity provider it may use (sandbox ones for sandbox clients only), a deposit the bank rail
   * takes, an OAuth secret to exchange the code with. `AuthorizeRefusal` when one says no.
   */
  async begin(input: BeginInput): Promise<OneClickRow> {
    if (!this.#providers.has(input.provider))
      throw new AuthorizeRefusal(
        "invalid_request",
        `identity_provider must be one of ${this.providerNames().join(", ")}`,
      );
    if (
      (await getClient(this.db, input.clientId)).mode !== "sandbox" &&
      input.provider.startsWith("sandbox-")
    )
      throw new AuthorizeRefusal("invalid_request", `${input.provider} serves sandbox clients only`);
    const deposit = await depositOf(this.db, input.clientId, input.amountText, input.currencyCode);
    await mustHaveSecret(this.db, input.clientId);
    if (deposit) await admitCurrency(this.db, input.clientId, deposit.currency);
    return this.start({
      ...input,
      amount: deposit?.amount,
      currency: deposit?.currency,
      fee: deposit ? await this.priced(input.clientId, deposit) : 0n,
    });
  }

  /**
   * The deposit's fee from the core's quote stage; a refusal of the quote (a currency with no USD
   * value yet, an amount too large) goes back to the redirect_uri like any other bad request.
   */
  private async priced(clientId: string, deposit: { amount: bigint; currency: string }): Promise<bigint> {
    try {
      return await this.deps.core.fee(clientId, "DEPOSIT", deposit.currency, deposit.amount);
    } catch (error) {
      if (error instanceof DomainError && (error.kind === "INVALID" || error.kind === "CONFLICT"))
        throw new AuthorizeRefusal("invalid_request", error.message);
      throw error;
    }
  }

  /** Records a new flow waiting for the identity provider (300); its session id is the page's capability. */
  private async start(input: StartInput & { fee: bigint }): Promise<OneClickRow> {
    const fee = input.fee;
    const sessionId = randomBytes(32).toString("base64url");
    return inTransaction(this.db, (tx) =>
      this.engine.start(
        tx,
        {
          client_id: input.clientId,
          session_id: sessionId,
          identity_provider: input.provider,
          redirect_uri: input.redirectUri,
          redirect_uri_given: input.redirectUriGiven,
          state: input.state ?? null,
          scope: input.scope,
          locale: input.locale ?? null,
          iframe: input.iframe,
          code_challenge: input.codeChallenge ?? null,
          // Personal data: sealed like the proven identity (its AAD the session, known before the tx_id).
          end_user_ip: input.endUserIp
            ? this.deps.sealer.seal(input.endUserIp, `oneclick-ip:${sessionId}`)
            : null,
          attributes: input.attributes ? JSON.stringify(input.attributes) : null,
          amount: input.amount?.toString() ?? null,
          currency: input.currency ?? null,
          fee: fee.toString(),
          expires_at: new Date(Date.now() + this.deps.config.sessionTtlSeconds * 1000),
        },
        { kind: "client", id: input.clientId },
      ),
    );
  }

  // ——— the provider's page ———

  async bySession(sessionId: string): Promise<OneClickRow | undefined> {
    if (!/^[A-Za-z0-9_-]{43}$/.test(sessionId)) return undefined;
    return repo.bySession(this.db, sessionId);
  }

  /**
   * The user's decision on the provider's page. Approve: the proven identity is kept (sealed) and
   * the operator callbacks start; deny: cancelled by the user (600). A decision on a flow that has
   * moved on changes nothing (the page shows where it is).
   */
  async decide(
    session: string | OneClickRow,
    decision: "approve" | "deny",
    personid: string | undefined,
  ): Promise<OneClickRow> {
    // The row as the caller read it by its session id (it is locked and read again below).
    const found = typeof session === "string" ? await this.bySession(session) : session;
    if (!found) throw new DomainError("NOT_FOUND", "NOT_FOUND", "no such sign-in");
    const provider = this.#providers.get(found.identity_provider);
    if (!provider) throw new DomainError("NOT_FOUND", "NOT_FOUND", "no such sign-in");
    let identity: ProvenIdentity | undefined;
    if (decision === "approve") {
      identity = personid === undefined ? undefined : provider.identify(personid);
      if (!identity)
        throw new DomainError(
          "INVALID",
          "UNKNOWN_PERSON",
          `${provider.displayName} knows no person with this personal id`,
          "personid",
        );
    }
    const monitoring = (await getClient(this.db, found.client_id)).settings as {
      monitoring?: MonitoringConfig;
    };
    return inTransaction(this.db, async (tx) => {
      const row = await repo.lock(tx, found.tx_id);
      if (row.status_code !== STATUS.WAITING_IDENTITY_PROVIDER) return row;
      const actor = providerActor(provider.name);
      if (new Date(row.expires_at).getTime() <= Date.now())
        return this.engine.must(tx, row, "EXPIRED", { actor, set: { err_msg: "the sign-in expired" } });
      if (!identity) return this.engine.must(tx, row, "USER_CANCELLED", { actor });
      const fingerprint = this.deps.sealer.fingerprint(
        `oneclick-person:${row.client_id}:${identity.personid}`,
      );
      const sealed = {
        identity_sealed: this.deps.sealer.seal(JSON.stringify(identity), `oneclick:${row.tx_id}`),
        person_fingerprint: fingerprint,
      };
      // The person screened before anything is sent on: a listed person's data never reaches the
      // operator, and they never become a user (their proven identity stays sealed for staff).
      // The deposit itself goes through the quote stage once the operator named its user.
      const reasons = screenPerson(
        { names: [`${identity.firstName} ${identity.lastName}`], countries: [identity.country] },
        monitoring.monitoring,
        this.deps.sanctions,
      );
      if (reasons.length > 0) {
        if (row.amount !== null)
          await this.deps.core.record(tx, [
            {
              type: "transaction.monitored",
              transaction: snapshotOf(row),
              monitoring: { status: "DENY", risk: "HIGH", reasons },
            },
          ]);
        return this.engine.must(tx, row, "SANCTIONED", {
          actor: { kind: "system", id: "monitoring" },
          set: { ...sealed, err_msg: `refused by screening: ${reasons.join(", ")}` },
        });
      }
      // A returning person at a provider that does not need signin: verified by the operator as the user it knows.
      const known = provider.signinRequired
        ? undefined
        : await repo.knownPerson(tx, row.client_id, fingerprint);
      if (known?.user_id)
        return this.engine.must(tx, row, "IDENTIFIED_RETURNING", {
          actor,
          set: { ...sealed, user_id: known.user_id, operator_session_id: known.operator_session_id },
        });
      return this.engine.must(tx, row, "IDENTIFIED", { actor, set: sealed });
    });
  }

  /** The identity the provider proved (for the callbacks and the token), or undefined before approval. */
  identityOf(row: OneClickRow): ProvenIdentity | undefined {
    return row.identity_sealed
      ? (JSON.parse(this.deps.sealer.open(row.identity_sealed, `oneclick:${row.tx_id}`)) as ProvenIdentity)
      : undefined;
  }

  /**
   * Runs the flow's due steps inline (the browser is waiting) until the browser's part is over, a
   * step waits for a later retry, or the deadline passes. The step runner's loop runs whatever is left.
   */
  async advance(txId: string, deadlineMs: number): Promise<OneClickRow> {
    const end = Date.now() + deadlineMs;
    let last: { stepId: string; statusCode: number } | undefined;
    for (;;) {
      const row = await this.get(txId);
      if (browserDone(row.status_code) || Date.now() >= end) return row;
      const due = await this.deps.steps.nextDue(this.db, row.client_id, PROCESS_TYPE, requestIdOf(txId));
      if (!due) return row;
      // The same step due again with the flow where it was: it failed and waits for its retry.
      if (last?.stepId === due && last.statusCode === row.status_code) return row;
      last = { stepId: due, statusCode: row.status_code };
      await this.deps.steps.run(due);
    }
  }

  async get(txId: string): Promise<OneClickRow> {
    const row = await repo.find(this.db, txId);
    if (!row) throw new DomainError("NOT_FOUND", "NOT_FOUND", `no 1-Click transaction ${txId}`);
    return row;
  }

  /** A client's flow by its txId (another client's is not found). */
  async ofClient(clientId: string, txId: string): Promise<OneClickRow> {
    const row = /^\d{1,18}$/.test(txId) ? await repo.findOfClient(this.db, clientId, txId) : undefined;
    if (!row) throw new DomainError("NOT_FOUND", "NOT_FOUND", `no 1-Click transaction ${txId}`);
    return row;
  }

  /**
   * Where the browser goes when its part is over: `redirect_uri` with a one-time code (valid 60 s;
   * a new visit replaces an unused one) or with the RFC 6749 error. Undefined while the flow runs,
   * and once its code was exchanged (the operator has its token). A deposit waiting for manual
   * review gets its code: the person is signed up and signed in at the operator; the money follows
   * (authorize, payment, transfer) once staff approve it, or never.
   */
  async finalRedirect(txIdOrRow: string | OneClickRow): Promise<string | undefined> {
    const row = typeof txIdOrRow === "string" ? await this.get(txIdOrRow) : txIdOrRow;
    if (!browserDone(row.status_code)) return undefined;
    const state = stateOf(row.status_code);
    if (state === "SUCCESSFUL" || state === "WAITING_APPROVAL") {
      const code = await this.codeFor(row);
      return code ? answerUrl(row.redirect_uri, { code }, row.state, this.issuer()) : undefined;
    }
    return answerUrl(
      row.redirect_uri,
      {
        error: oauthError(row.status_code),
        // PaymentIQ's status name in lower case (`err_cancelled_by_user`, `err_not_authenticated`).
        error_description: statusNameOf(row.status_code).toLowerCase(),
        errCode: row.err_code,
        // The browser carries this URL: screening's reasons stay with staff and the operator's
        // TRANSACTION_MONITORING event (telling a listed person they matched is tipping them off).
        errMsg: row.status_code === STATUS.FRAUD ? null : row.err_msg,
      },
      row.state,
      this.issuer(),
    );
  }

  /**
   * The flow's one-time code: the one already issued while it is unused and valid (a second visit
   * of the page — a double submit, a refresh — lands with the same code), else a new one valid
   * 60 s. Kept sealed for that, and as its SHA-256 for the exchange. Undefined once exchanged.
   */
  private async codeFor(row: OneClickRow): Promise<string | undefined> {
    if (row.code_used_at) return undefined;
    const aad = `oneclick-code:${row.tx_id}`;
    if (row.code_sealed && row.code_expires_at && new Date(row.code_expires_at).getTime() > Date.now() + 5000)
      return this.deps.sealer.open(row.code_sealed, aad);
    const code = randomBytes(32).toString("base64url");
    const issued = await repo.issueCode(this.db, row, {
      hash: sha256(code),
      sealed: this.deps.sealer.seal(code, aad),
      expiresAt: new Date(Date.now() + CODE_TTL_MS),
    });
    if (issued) return code;
    const now = await this.get(row.tx_id);
    return now.code_used_at || !now.code_sealed ? undefined : this.deps.sealer.open(now.code_sealed, aad);
  }

  // ——— what the steps (steps.ts) and the engine need ———

  lock(tx: Db, txId: string): Promise<OneClickRow> {
    return repo.lock(tx, txId);
  }

  /**
   * The person as a user of the client in the core: created with the proven identity as PII, or
   * completed (merged) if the operator's id is already a user; the tier the provider's proof
   * supports, never lowered.
   */
  async ensureUser(tx: Db, row: OneClickRow): Promise<void> {
    if (!row.user_id) return;
    const provider = this.#providers.get(row.identity_provider);
    const identity = this.identityOf(row);
    if (!provider || !identity) throw new Error(`1-Click transaction ${row.tx_id} lost its provider`);
    const info: UserInfo = {
      name: { firstName: identity.firstName, lastName: identity.lastName },
      dateOfBirth: identity.dob,
      addresses: [
        {
          type: "HOME",
          street: identity.street,
          city: identity.city,
          postalCode: identity.zip,
          country: identity.country,
        },
      ],
      countryOfResidence: identity.country,
      piis: [{ type: "NATIONAL_ID", value: identity.personid }],
    };
    if (!(await this.deps.users.find(tx, row.client_id, row.user_id)))
      await this.deps.users.create(tx, { clientId: row.client_id, id: row.user_id, type: "PERSON", info });
    else await this.deps.users.writeInfo(tx, row.client_id, row.user_id, info, "merge");
    await this.deps.kyc.recordProven(tx, {
      clientId: row.client_id,
      userId: row.user_id,
      requestId: `${requestIdOf(row.tx_id)}-identity`,
      provider: provider.name,
      tier: provider.tier,
    });
  }

  /** Whether the client's user `userId` is a different person (another proven national id) than `personid`. */
  async userIsAnotherPerson(tx: Db, clientId: string, userId: string, personid: string): Promise<boolean> {
    if (!(await this.deps.users.find(tx, clientId, userId))) return false;
    const info = await this.deps.users.info(tx, clientId, userId);
    const ids = (info.piis ?? []).filter((p) => p.type === "NATIONAL_ID").map((p) => p.value);
    return ids.length > 0 && !ids.includes(personid);
  }

  /** Where and how the operator is called for this client. */
  async callbackTarget(clientId: string) {
    const settings = await oneClickOf(this.db, clientId);
    if (!settings) throw new Error(`client ${clientId} has no 1-Click settings`);
    const mode = (await getClient(this.db, clientId)).mode;
    return {
      clientId,
      settings,
      publicOnly: mustBePublic(mode),
      timeoutMs: this.deps.config.callbackTimeoutMs,
    };
  }

  /** The amounts as the callbacks send them: decimal strings in major units. */
  async amountsOf(
    row: OneClickRow,
  ): Promise<{ txAmount: string; fee: string; currency: string } | undefined> {
    if (row.amount === null || row.currency === null) return undefined;
    const scale = (await ledger.getCurrency(this.db, row.client_id, row.currency)).scale;
    return {
      txAmount: formatAmount(BigInt(row.amount), scale),
      fee: formatAmount(BigInt(row.fee), scale),
      currency: row.currency,
    };
  }

  // ——— the operator's backend: token, check_token, status ———

  /**
   * Exchanges a one-time code (RFC 6749 §4.1.3): the client's, for the same redirect_uri, within
   * 60 s, once, with the PKCE verifier if the flow had a challenge. A second exchange fails and
   * revokes the token the first one got.
   */
  async exchange(
    clientId: string,
    input: { code: string; redirectUri: string | undefined; codeVerifier: string | undefined },
  ) {
    const outcome = await inTransaction(this.db, async (tx) => {
      const row = await repo.lockByCode(tx, sha256(input.code));
      if (!row || row.client_id !== clientId)
        return { error: new OAuthError("invalid_grant", "the code is not valid") };
      if (row.code_used_at) {
        await repo.revokeToken(tx, row.tx_id);
        await writeAudit(
          tx,
          { clientId, actor: { kind: "client", id: clientId }, requestId: requestIdOf(row.tx_id) },
          {
            action: "oneclick.code_reused",
            entityType: "oneclick",
            entityId: row.tx_id,
            after: { tokenRevoked: true },
          },
        );
        return { error: new OAuthError("invalid_grant", "the code was already used; its token is revoked") };
      }
      if (!row.code_expires_at || new Date(row.code_expires_at).getTime() <= Date.now())
        return { error: new OAuthError("invalid_grant", "the code has expired") };
      // RFC 6749 §4.1.3: required and equal when the authorization request had it; equal if given.
      if (
        (row.redirect_uri_given || input.redirectUri !== undefined) &&
        input.redirectUri !== row.redirect_uri
      )
        return {
          error: new OAuthError("invalid_grant", "redirect_uri does not match the authorization request"),
        };
      if (row.code_challenge) {
        const verifier = input.codeVerifier ?? "";
        const computed = createHash("sha256").update(verifier).digest("base64url");
        if (!/^[A-Za-z0-9._~-]{43,128}$/.test(verifier) || computed !== row.code_challenge)
          return {
            error: new OAuthError("invalid_grant", "code_verifier does not match the code_challenge"),
          };
      }
      const jti = randomBytes(16).toString("hex");
      const used = await repo.update(tx, row.tx_id, { code_used_at: new Date(), token_jti: jti });
      return { row: used, jti };
    });
    if ("error" in outcome) throw outcome.error;
    const { row, jti } = outcome;
    const claims = this.claimsOf(row);
    const key = await this.deps.signingKeys.current();
    const ttl = this.deps.config.tokenTtlSeconds;
    const exp = Math.floor(Date.now() / 1000) + ttl;
    // PaymentIQ's claims: scope and aud as arrays, the merchant, the end user's ip, exp and jti in
    // the answer as in the token. aud names the client (what check_token verifies) and the API.
    const scope = row.scope.split(" ");
    const aud = [clientId, "identity_api"];
    const accessToken = await new SignJWT({ ...claims, scope })
      .setProtectedHeader({ alg: FERRY_SIGNING_ALG, kid: key.kid, typ: "JWT" })
      .setIssuer(this.issuer())
      .setAudience(aud)
      .setSubject(claims.userId ?? `oc-${row.tx_id}`)
      .setJti(jti)
      .setIssuedAt()
      .setExpirationTime(exp)
      .sign(key.privateKey);
    return {
      access_token: accessToken,
      token_type: "bearer" as const,
      expires_in: ttl,
      scope,
      ...claims,
      exp,
      jti,
      aud,
    };
  }

  issuer(): string {
    return this.deps.config.publicUrl;
  }

  /** The person's claims (token response and JWT): the proven identity, country in ISO-3. */
  claimsOf(row: OneClickRow) {
    const identity = this.identityOf(row);
    return {
      userId: row.user_id,
      // PaymentIQ's merchant is Ferry's client: its id is a string here (PaymentIQ's is a number).
      merchantId: row.client_id,
      clientId: row.client_id,
      txRefId: txRefIdOf(row.client_id, row.tx_id),
      name: identity ? `${identity.firstName} ${identity.lastName}` : null,
      firstName: identity?.firstName ?? null,
      lastName: identity?.lastName ?? null,
      personid: identity?.personid ?? null,
      street: identity?.street ?? null,
      city: identity?.city ?? null,
      zip: identity?.zip ?? null,
      country: identity ? (toAlpha3(identity.country) ?? identity.country) : null,
      dob: identity?.dob ?? null,
      ip: row.end_user_ip ? this.deps.sealer.open(row.end_user_ip, `oneclick-ip:${row.session_id}`) : null,
      identityProvider: row.identity_provider,
    };
  }

  /** Whether the token's flow still stands behind it (not revoked by a reused code). */
  async tokenLive(clientId: string, txRefId: unknown, jti: unknown): Promise<boolean> {
    if (typeof txRefId !== "string" || typeof jti !== "string") return false;
    const prefix = `${clientId}A`;
    if (!txRefId.startsWith(prefix)) return false;
    const txId = txRefId.slice(prefix.length);
    if (!/^\d{1,18}$/.test(txId)) return false;
    const row = await repo.tokenOf(this.db, clientId, txId);
    return row?.token_jti === jti && row.token_revoked_at === null;
  }

  // ——— staff: deposits waiting for review, INCONSISTENT flows ———

  async list(
    clientId: string,
    filter: { state?: TxState | undefined },
    page: { offset: number; limit: number },
  ) {
    return repo.list(this.db, clientId, filter, page);
  }

  /** The flow's failed step (the transfer, or a payment without an answer), if any. */
  async failedStep(row: OneClickRow) {
    return (await this.stepsOf(row)).find((s) => s.status === "FAILED");
  }

  async stepsOf(row: OneClickRow) {
    return this.deps.steps.stepsOf(this.db, row.client_id, PROCESS_TYPE, requestIdOf(row.tx_id));
  }

  /**
   * Staff decide on a deposit monitoring held (350): approve → authorize and the rest of the flow,
   * without the browser; deny → FRAUD (nothing was reserved or paid). Two staff at once: one decides.
   */
  async review(
    clientId: string,
    txId: string,
    decision: "APPROVE" | "DENY",
    note: string,
    actor: Actor,
  ): Promise<OneClickRow> {
    await this.ofClient(clientId, txId);
    const decided = await inTransaction(this.db, async (tx) =>
      this.engine.apply(tx, await repo.lock(tx, txId), decision, {
        actor,
        set: {
          resolution: JSON.stringify({ decision, note, at: new Date().toISOString(), by: actor }),
          ...(decision === "DENY" ? { err_msg: "refused after review" } : {}),
        },
      }),
    );
    if (!decided)
      throw new DomainError(
        "CONFLICT",
        "NOT_IN_REVIEW",
        `1-Click transaction ${txId} is not waiting for review`,
      );
    return decision === "APPROVE" ? this.advance(txId, this.deps.config.callbackTimeoutMs + 2000) : decided;
  }

  /**
   * Staff try the flow's failed step again (same key, same txId). The same path as
   * `POST /admin/steps/{id}/retry`: the step kind's `retrying` moves the flow (steps.ts).
   */
  async retry(clientId: string, txId: string, actor: Actor): Promise<OneClickRow> {
    const row = await this.ofClient(clientId, txId);
    const step = stateOf(row.status_code) === "INCONSISTENT" ? await this.failedStep(row) : undefined;
    if (!step)
      throw new DomainError(
        "CONFLICT",
        "NOT_INCONSISTENT",
        `1-Click transaction ${txId} is not INCONSISTENT`,
      );
    const retried = await this.deps.steps.retry(clientId, step.id, actor);
    if (!retried)
      throw new DomainError("CONFLICT", "NOT_INCONSISTENT", `1-Click transaction ${txId} changed meanwhile`);
    return this.advance(txId, this.deps.config.callbackTimeoutMs + 2000);
  }

  /** Staff mark an INCONSISTENT transfer resolved with what the operator told them (credited by hand). */
  async resolve(clientId: string, txId: string, note: string, actor: Actor): Promise<OneClickRow> {
    const row = await this.ofClient(clientId, txId);
    const step = stateOf(row.status_code) === "INCONSISTENT" ? await this.failedStep(row) : undefined;
    if (step?.kind !== "OC_TRANSFER")
      throw new DomainError(
        "CONFLICT",
        "NOT_RESOLVABLE",
        step
          ? "the payment's outcome is unknown: retry it"
          : `1-Click transaction ${txId} is not INCONSISTENT`,
      );
    const resolved = await this.deps.steps.resolve(step.id, { outcome: "EXECUTED", note }, actor);
    if (!resolved)
      throw new DomainError("CONFLICT", "NOT_INCONSISTENT", `1-Click transaction ${txId} changed meanwhile`);
    return this.get(txId);
  }

  /** Flows nobody decided on in time: cancelled by the PSP (602). */
  async expireWaiting(limit = 100): Promise<number> {
    const txIds = await repo.expiredWaiting(this.db, limit);
    for (const txId of txIds)
      await inTransaction(this.db, async (tx) => {
        const row = await repo.lock(tx, txId);
        if (row.status_code !== STATUS.WAITING_IDENTITY_PROVIDER) return;
        await this.engine.must(tx, row, "EXPIRED", {
          actor: { kind: "system", id: "oneclick-expiry" },
          set: { err_msg: "the sign-in expired" },
        });
      });
    return txIds.length;
  }
}

/** Whether the browser's part is over: the flow is final, or its deposit waits for staff (350–399). */
export const browserDone = (code: number) => isFinal(code) || stateOf(code) === "WAITING_APPROVAL";

function oauthError(code: number): string {
  if (code === STATUS.MERCHANT_OUT_OF_SERVICE) return "temporarily_unavailable";
  // Paid, but the operator has not confirmed it (staff resolve it): not the user's refusal.
  if (stateOf(code) === "INCONSISTENT") return "server_error";
  if (code === STATUS.SYSTEM_ERROR || code === STATUS.INVALID_RESPONSE) return "server_error";
  return "access_denied";
}

export type { OneClickSettings };
