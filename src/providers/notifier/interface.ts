/**
 * The notifier: how Ferry reaches a person outside the API — an e-mail or a text message with a
 * one-time code or their first credentials. A real installation plugs in its mail or SMS provider;
 * Ferry ships the sandbox one (sandbox.ts), which keeps every message for the platform admin to read.
 */
export type NotificationKind = "REGISTRATION" | "LOGIN" | "CREDENTIALS" | "PASSWORD_RESET";

export interface Notification {
  clientId: string;
  /** The login it goes to: an e-mail address or a phone number (digits). */
  to: string;
  kind: NotificationKind;
  /** The one-time code, where the message carries one. */
  otp?: string | undefined;
  text: string;
}

export interface Notifier {
  readonly name: string;
  send(notification: Notification): Promise<void>;
}
