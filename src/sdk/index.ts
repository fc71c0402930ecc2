/** What integrators import: the request signer and the webhook receiver. */
export { keyId, type SigningAlgorithm, signRequest, stringToSign } from "./signing.ts";
export {
  createWebhookReceiver,
  type FerryWebhookEvent,
  WebhookVerificationError,
} from "./webhook-receiver.ts";
