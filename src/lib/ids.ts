import { uuidv7 } from "uuidv7";

/** Ferry's own ids: UUIDv7, so they sort by creation time. */
export function newId(): string {
  return uuidv7();
}

/** Ids a client chooses (user ids, request ids). */
export const CLIENT_CHOSEN_ID = /^[A-Za-z0-9_-]{3,255}$/;

export const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
