import type { Db } from "../../db/database.ts";
import type { User } from "./service.ts";

/** The users module's domain events; the faces map them to their wire shapes (no PII, ever). */
export interface UserEvent {
  type: "user.created" | "user.status_changed";
  user: User;
}

export interface UserEventSink {
  record(tx: Db, event: UserEvent, options: { suppressDelivery?: boolean | undefined }): Promise<void>;
}
