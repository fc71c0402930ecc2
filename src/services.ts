import type { Config } from "./config.ts";
import type { FerryDatabase } from "./db/database.ts";
import { platformTransactionEvents } from "./faces/platform/transaction-events.ts";
import { platformAssessmentEvents, platformUserEvents } from "./faces/platform/user-events.ts";
import type { Metrics } from "./http/metrics.ts";
import type { Sealer } from "./lib/sealer.ts";
import { CommissionProfiles } from "./modules/commissions/service.ts";
import { SigningKeys } from "./modules/keys/service.ts";
import { Kyc } from "./modules/kyc/service.ts";
import { Ledger } from "./modules/ledger/service.ts";
import { Logins } from "./modules/logins/service.ts";
import { SanctionsList } from "./modules/monitoring/rules.ts";
import { OneClick } from "./modules/oneclick/service.ts";
import { PaymentMethods } from "./modules/payment-methods/service.ts";
import { type ReconciliationReport, reconcile } from "./modules/reconciliation/service.ts";
import { StepRunner } from "./modules/steps/runner.ts";
import { Transactions, transactionsUsage } from "./modules/transactions/service.ts";
import { Users } from "./modules/users/service.ts";
import { Wallets } from "./modules/wallets/service.ts";
import { SandboxAcquirer } from "./providers/acquirer/sandbox.ts";
import { SandboxBank } from "./providers/bank/sandbox.ts";
import { SandboxChain } from "./providers/chain/sandbox.ts";
import { SandboxIdentityProvider, sandboxIdentityPayments } from "./providers/identity/sandbox.ts";
import { SandboxKycProvider } from "./providers/kyc/sandbox.ts";
import { SandboxNotifier } from "./providers/notifier/sandbox.ts";
import { SandboxRatesProvider } from "./providers/rates/sandbox.ts";
import { SandboxGate } from "./providers/sandbox-gate.ts";

export type ServiceSettings = Pick<
  Config,
  | "ledgerBatchSize"
  | "ledgerBatchesInFlight"
  | "sandboxKycDelayMs"
  | "userTokenTtlSeconds"
  | "rateLimitPerMinute"
  | "idempotencyTtlHours"
  | "publicUrl"
  | "webhookRetrySchedule"
  | "webhookTimeoutMs"
  | "sanctionsFile"
  | "sandboxPayoutDelayMs"
  | "providerLeaseSeconds"
  | "stepRetryBaseMs"
  | "stepTimeoutMs"
  | "stepConcurrency"
  | "stepConcurrencyPerClient"
  | "accessTokenTtlSeconds"
  | "defaultClient"
  | "loginSlowStepMs"
  | "sandboxChainConfirmMs"
  | "sandboxAcquirerAnswerDelayMs"
  | "oneClickCallbackTimeoutMs"
  | "oneClickCallbackAttempts"
  | "oneClickTransferAttempts"
  | "oneClickRetryBaseMs"
  | "oneClickTokenTtlSeconds"
  | "oneClickSessionTtlSeconds"
>;

/** The modules' long-lived objects, built once per process and handed to the faces and workers. */
export interface Services {
  database: FerryDatabase;
  sealer: Sealer;
  settings: ServiceSettings;
  ledger: Ledger;
  signingKeys: SigningKeys;
  users: Users;
  kyc: Kyc;
  wallets: Wallets;
  paymentMethods: PaymentMethods;
  transactions: Transactions;
  /** The durable step runner every provider call goes through. */
  steps: StepRunner;
  acquirer: SandboxAcquirer;
  bank: SandboxBank;
  chain: SandboxChain;
  /** The rates provider (pairs, prices). */
  rates: SandboxRatesProvider;
  /** Test control of the sandbox providers (hold an answer, inject a failure). */
  sandboxGate: SandboxGate;
  metrics: Metrics | undefined;
  /** Wallet API logins, roles, tokens, one-time codes. */
  logins: Logins;
  /** What the sandbox notifier "sent" (OTPs, credentials). */
  notifier: SandboxNotifier;
  commissions: CommissionProfiles;
  /** The 1-Click flow (/oauth): identity providers, operator callbacks, codes and tokens. */
  oneClick: OneClick;
  /** Compares the providers' records with the ledger (all clients, or one). */
  reconcile(clientId?: string): Promise<ReconciliationReport>;
}

export function createServices(
  database: FerryDatabase,
  sealer: Sealer,
  settings: ServiceSettings,
  metrics?: Metrics,
): Services {
  const db = database.db;
  const users = new Users(db, sealer, platformUserEvents);
  const rates = new SandboxRatesProvider();
  const kyc = new Kyc(
    db,
    users,
    new SandboxKycProvider(settings.sandboxKycDelayMs),
    rates,
    transactionsUsage(db),
    platformAssessmentEvents,
  );
  const wallets = new Wallets(db);
  const paymentMethods = new PaymentMethods(db, sealer);
  const sandboxGate = new SandboxGate();
  const acquirer = new SandboxAcquirer(
    db,
    settings.publicUrl,
    sandboxGate,
    settings.sandboxPayoutDelayMs,
    settings.sandboxAcquirerAnswerDelayMs,
  );
  const bank = new SandboxBank(db, settings.sandboxPayoutDelayMs, sandboxGate);
  const chain = new SandboxChain(db, settings.sandboxChainConfirmMs, sandboxGate);
  const steps = new StepRunner(db, {
    leaseSeconds: settings.providerLeaseSeconds,
    backoffMs: (attempt) => Math.min(300_000, settings.stepRetryBaseMs * 2 ** (attempt - 1)),
    callTimeoutMs: settings.stepTimeoutMs,
    concurrency: settings.stepConcurrency,
    perClient: settings.stepConcurrencyPerClient,
    onFinished: metrics?.recordStepFinished,
  });
  const sanctions = SanctionsList.load(settings.sanctionsFile);
  const signingKeys = new SigningKeys(db, sealer);
  const transactions = new Transactions({
    db,
    users,
    kyc,
    wallets,
    paymentMethods,
    acquirer,
    bank,
    chain,
    rates,
    sanctions,
    steps,
    events: platformTransactionEvents,
    groupCommit: {
      maxBatchSize: settings.ledgerBatchSize,
      maxInFlight: settings.ledgerBatchesInFlight,
      onBatch: metrics?.recordGroupCommit,
    },
  });
  const oneClick = new OneClick({
    db,
    sealer,
    users,
    kyc,
    usage: transactionsUsage(db),
    steps,
    signingKeys,
    sanctions,
    rates,
    providers: [
      new SandboxIdentityProvider("sandbox-bankid", db, sandboxGate),
      new SandboxIdentityProvider("sandbox-trustly", db, sandboxGate),
    ],
    config: {
      publicUrl: settings.publicUrl,
      callbackTimeoutMs: settings.oneClickCallbackTimeoutMs,
      callbackAttempts: settings.oneClickCallbackAttempts,
      transferAttempts: settings.oneClickTransferAttempts,
      retryBaseMs: settings.oneClickRetryBaseMs,
      tokenTtlSeconds: settings.oneClickTokenTtlSeconds,
      sessionTtlSeconds: settings.oneClickSessionTtlSeconds,
    },
  });
  const notifier = new SandboxNotifier(db);
  const logins = new Logins(db, users, notifier, sealer, {
    tokenTtlSeconds: settings.accessTokenTtlSeconds,
    slowStepMs: settings.loginSlowStepMs,
  });
  return {
    database,
    sealer,
    settings,
    logins,
    notifier,
    commissions: new CommissionProfiles(db),
    ledger: new Ledger(db, {
      maxBatchSize: settings.ledgerBatchSize,
      maxInFlight: settings.ledgerBatchesInFlight,
      onBatch: metrics?.recordLedgerBatch,
      onResult: metrics?.recordLedgerResult,
    }),
    signingKeys,
    oneClick,
    users,
    kyc,
    wallets,
    paymentMethods,
    transactions,
    steps,
    acquirer,
    bank,
    chain,
    rates,
    sandboxGate,
    metrics,
    reconcile: (clientId) =>
      reconcile(
        {
          db,
          acquirer,
          bank,
          steps,
          bankDepositOwners: (refs) => transactions.bankDepositOwners(refs),
          identityPayments: (prefix) => sandboxIdentityPayments(db, prefix),
        },
        clientId,
      ),
  };
}
