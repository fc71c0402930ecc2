import type { Config } from "./config.ts";
import type { FerryDatabase } from "./db/database.ts";
import { platformTransactionEvents } from "./faces/platform/transaction-events.ts";
import { platformAssessmentEvents, platformUserEvents } from "./faces/platform/user-events.ts";
import type { Metrics } from "./http/metrics.ts";
import type { Sealer } from "./lib/sealer.ts";
import { AdminAuthenticator } from "./modules/admins/service.ts";
import { CommissionProfiles } from "./modules/commissions/service.ts";
import { SigningKeys } from "./modules/keys/service.ts";
import { Kyc } from "./modules/kyc/service.ts";
import { Ledger } from "./modules/ledger/service.ts";
import { Logins } from "./modules/logins/service.ts";
import { SanctionsList } from "./modules/monitoring/rules.ts";
import { OneClick } from "./modules/oneclick/service.ts";
import { PayinCustomers } from "./modules/payin/customers.ts";
import { Offers } from "./modules/payin/offers.ts";
import { Payin } from "./modules/payin/purchases.ts";
import { PaymentMethods } from "./modules/payment-methods/service.ts";
import { CurrencyRates } from "./modules/rates/service.ts";
import { type ReconciliationReport, reconcile } from "./modules/reconciliation/service.ts";
import { SmartCards } from "./modules/smart-cards/service.ts";
import { StepRunner } from "./modules/steps/runner.ts";
import { Templates } from "./modules/templates/service.ts";
import { Transactions, transactionsUsage } from "./modules/transactions/service.ts";
import { Users } from "./modules/users/service.ts";
import { WalletOperations } from "./modules/wallet-operations/service.ts";
import { WalletTransfers } from "./modules/wallet-operations/transfers.ts";
import { Wallets } from "./modules/wallets/service.ts";
import type { Acquirer } from "./providers/acquirer/interface.ts";
import { SandboxAcquirer } from "./providers/acquirer/sandbox.ts";
import type { Bank } from "./providers/bank/interface.ts";
import { SandboxBank } from "./providers/bank/sandbox.ts";
import type { Chain } from "./providers/chain/interface.ts";
import { SandboxChain } from "./providers/chain/sandbox.ts";
import { SandboxIdentityProvider, sandboxIdentityPayments } from "./providers/identity/sandbox.ts";
import { SandboxKycProvider } from "./providers/kyc/sandbox.ts";
import { SandboxKycVerifications } from "./providers/kyc/sandbox-verification.ts";
import type { Notifier } from "./providers/notifier/interface.ts";
import { SandboxNotifier } from "./providers/notifier/sandbox.ts";
import type { RatesProvider } from "./providers/rates/interface.ts";
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
  | "adminMaxFailures"
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
  acquirer: Acquirer;
  bank: Bank;
  chain: Chain;
  /** The rates provider (pairs, prices). */
  rates: RatesProvider;
  /** USD rates per client: the provider's price, or the client's own rate (its history, who set it). */
  currencyRates: CurrencyRates;
  /** The sandbox providers themselves, for the sandbox face's control routes and the tests only. */
  sandbox: {
    acquirer: SandboxAcquirer;
    bank: SandboxBank;
    chain: SandboxChain;
    notifier: SandboxNotifier;
    rates: SandboxRatesProvider;
  };
  /** Test control of the sandbox providers (hold an answer, inject a failure). */
  sandboxGate: SandboxGate;
  metrics: Metrics | undefined;
  /** Wallet API logins, roles, tokens, one-time codes. */
  logins: Logins;
  /** Where one-time codes and credentials are sent. */
  notifier: Notifier;
  commissions: CommissionProfiles;
  /** The 1-Click flow (/oauth): identity providers, operator callbacks, codes and tokens. */
  oneClick: OneClick;
  /** The Wallet API's operations (/api/v1): top-ups, withdrawals, transfers, decisions, on the core. */
  walletOperations: WalletOperations;
  /** The Wallet API's transfers, templates and smart cards. */
  walletTransfers: WalletTransfers;
  smartCards: SmartCards;
  templates: Templates;
  /** Pay-in offers (/v3/payin): quotes that hold their rate for 20 s. */
  offers: Offers;
  /** Pay-in purchases: KYC levels, offers, their payment and status, on the core. */
  payin: Payin;
  /** Pay-in customers (/v2/customer): profile, KYC levels, the KYC_1 check on the hosted page. */
  payinCustomers: PayinCustomers;
  /** The platform admin's HTTP Basic check (with its short cache of verified passwords). */
  adminAuthenticator: AdminAuthenticator;
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
  const currencyRates = new CurrencyRates(db, rates);
  const steps = new StepRunner(db, {
    leaseSeconds: settings.providerLeaseSeconds,
    backoffMs: (attempt) => Math.min(300_000, settings.stepRetryBaseMs * 2 ** (attempt - 1)),
    callTimeoutMs: settings.stepTimeoutMs,
    concurrency: settings.stepConcurrency,
    perClient: settings.stepConcurrencyPerClient,
    onFinished: metrics?.recordStepFinished,
  });
  const kyc = new Kyc(
    db,
    users,
    new SandboxKycProvider(settings.sandboxKycDelayMs),
    currencyRates,
    transactionsUsage(db),
    platformAssessmentEvents,
    steps,
  );
  const wallets = new Wallets(db);
  const sandboxGate = new SandboxGate();
  const acquirer = new SandboxAcquirer(
    db,
    settings.publicUrl,
    sandboxGate,
    settings.sandboxPayoutDelayMs,
    settings.sandboxAcquirerAnswerDelayMs,
  );
  const paymentMethods = new PaymentMethods(db, sealer, acquirer);
  const bank = new SandboxBank(db, settings.sandboxPayoutDelayMs, sandboxGate);
  const chain = new SandboxChain(db, settings.sandboxChainConfirmMs, sandboxGate);
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
    rates: currencyRates,
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
    core: transactions.external,
    steps,
    signingKeys,
    sanctions,
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
  const commissions = new CommissionProfiles(db);
  const smartCards = new SmartCards(db, sealer);
  const templates = new Templates(db);
  const walletOperations = new WalletOperations({
    db,
    wallets,
    transactions,
    commissions,
    logins,
  });
  const walletTransfers = new WalletTransfers(walletOperations, {
    wallets,
    transactions,
    smartCards,
    templates,
  });
  const offers = new Offers(db);
  const payin = new Payin({ db, offers, transactions, paymentMethods, users, logins, rates, chain });
  const payinCustomers = new PayinCustomers({
    db,
    users,
    kyc,
    logins,
    verifications: new SandboxKycVerifications(db, settings.publicUrl),
  });
  return {
    database,
    sealer,
    settings,
    logins,
    notifier,
    commissions,
    walletOperations,
    walletTransfers,
    smartCards,
    templates,
    offers,
    payin,
    payinCustomers,
    adminAuthenticator: new AdminAuthenticator(db, {
      maxFailures: settings.adminMaxFailures,
      lockMinutes: 15,
    }),
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
    currencyRates,
    sandbox: { acquirer, bank, chain, notifier, rates },
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
