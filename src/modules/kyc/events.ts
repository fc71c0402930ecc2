import type { Db } from "../../db/database.ts";
import type { Assessment } from "./service.ts";

/** The KYC module's domain events: an assessment recorded or decided (the user's tier with it). */
export interface AssessmentEvent {
  type: "assessment.changed";
  clientId: string;
  assessment: Assessment;
}

export interface AssessmentEventSink {
  record(tx: Db, event: AssessmentEvent, options: { suppressDelivery?: boolean | undefined }): Promise<void>;
}
