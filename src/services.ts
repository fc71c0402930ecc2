import type { Config } from "./config.ts";
import type { FerryDatabase } from "./db/database.ts";
import type { Metrics } from "./http/metrics.ts";
import type { Sealer } from "./lib/sealer.ts";
import { SigningKeys } from "./modules/keys/service.ts";
import { Kyc } from "./modules/kyc/service.ts";
import { Ledger } from "./modules/ledger/service.ts";
import { SanctionsList } from "./modules/monitoring/rules.ts";
import { PaymentMethods } from "./modules/payment-methods/service.ts";
import { Transactions, transactionsUsage } from "./modules/transactions/service.ts";
import { Users } from "./modules/users/service.ts";
import { Wallets } from "./modules/wallets/service.ts";
import { SandboxAcquirer } from "./providers/acquirer/sandbox.ts";
import { SandboxBank } from "./providers/bank/sandbox.ts";
import { SandboxKycProvider } from "./providers/kyc/sandbox.ts";
import { SandboxRatesProvider } from "./providers/rates/sandbox.ts";

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
}

export function createServices(
  database: FerryDatabase,
  sealer: Sealer,
  settings: ServiceSettings,
  metrics?: Metrics,
): Services {
  const db = database.db;
  const users = new Users(db, sealer);
  const rates = new SandboxRatesProvider();
  const kyc = new Kyc(
    db,
    users,
    new SandboxKycProvider(settings.sandboxKycDelayMs),
    rates,
    transactionsUsage(db),
  );
  const wallets = new Wallets(db);
  const paymentMethods = new PaymentMethods(db, sealer);
  return {
    database,
    sealer,
    settings,
    ledger: new Ledger(db, {
      maxBatchSize: settings.ledgerBatchSize,
      maxInFlight: settings.ledgerBatchesInFlight,
      onBatch: metrics?.recordLedgerBatch,
      onResult: metrics?.recordLedgerResult,
    }),
    signingKeys: new SigningKeys(db, sealer),
    users,
    kyc,
    wallets,
    paymentMethods,
    transactions: new Transactions({
      db,
      users,
      kyc,
      wallets,
      paymentMethods,
      acquirer: new SandboxAcquirer(db, settings.publicUrl),
      bank: new SandboxBank(db, settings.sandboxPayoutDelayMs),
      rates,
      sanctions: SanctionsList.load(settings.sanctionsFile),
      leaseSeconds: settings.providerLeaseSeconds,
    }),
  };
}
