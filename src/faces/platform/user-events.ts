import type { Db } from "../../db/database.ts";
import type { AssessmentEvent, AssessmentEventSink } from "../../modules/kyc/events.ts";
import type { UserEvent, UserEventSink } from "../../modules/users/events.ts";
import { recordEvent } from "../../modules/webhooks/service.ts";

/** The Platform face's `USER` webhook (webhooks.md): ids and status only, never PII. */
export const platformUserEvents: UserEventSink = {
  async record(tx: Db, { user }: UserEvent, { suppressDelivery }) {
    await recordEvent(tx, {
      clientId: user.clientId,
      userId: user.id,
      type: "USER",
      data: {
        userId: user.id,
        status: user.status,
        ...(user.statusReason ? { statusReason: user.statusReason } : {}),
        date: user.updatedAt.toISOString(),
      },
      suppressDelivery,
    });
  },
};

/** The Platform face's `USER_ASSESSMENT` webhook. */
export const platformAssessmentEvents: AssessmentEventSink = {
  async record(tx: Db, { clientId, assessment: a }: AssessmentEvent, { suppressDelivery }) {
    await recordEvent(tx, {
      clientId,
      userId: a.userId,
      type: "USER_ASSESSMENT",
      data: {
        requestId: a.requestId,
        userId: a.userId,
        status: a.status,
        tier: a.tier,
        ...(a.refusalReason ? { refusalReason: a.refusalReason } : {}),
        date: a.date.toISOString(),
      },
      suppressDelivery,
    });
  },
};
