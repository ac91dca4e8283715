import { z } from 'zod';

/**
 * A doorbell says "customer K may have operations to apply" — nothing more. The operations table is the
 * truth, so a duplicate, late, lost or reordered doorbell is harmless: the processor always reads what is
 * actually pending, in submission order.
 */
export const doorbellSchema = z.strictObject({
  customerKey: z.string().regex(/^[A-Z][A-Z0-9-]{2,62}$/, 'must be a customer key'),
  /**
   * The ETag of the pending-index entry written before this ring. The processor clears the entry with it,
   * saving a read, and the clear fails (leaving the customer listed) if a later submit marked it again.
   */
  pending: z.string().min(1).max(200).optional(),
  /**
   * What the ringing submit wrote, as JSON: the customer's record and its operations not yet applied, with
   * their ETags, so the processor can apply without reading them first. Used only with a valid `sig`.
   */
  state: z.string().max(65_536).optional(),
  /** The state's signature (HMAC-SHA256, base64url) with a key only this service holds. */
  sig: z
    .string()
    .regex(/^[\w-]{43}$/, 'must be a signature')
    .optional(),
});
export type Doorbell = z.infer<typeof doorbellSchema>;

/** Rings doorbells on the queue the processor listens to (shared/messaging implements it on Service Bus). */
export interface DoorbellSender {
  /** Rings now, or at `at` (a scheduled message) for a retry after a delay. */
  ring(doorbells: readonly Doorbell[], at?: Date): Promise<void>;
  /** Throws if the broker cannot be reached (for the health endpoint). */
  check(): Promise<void>;
  close(): Promise<void>;
}
