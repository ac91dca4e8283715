/**
 * The slice of rhea the broker relies on, typed. rhea's public typings omit the outcome constructors, the
 * encoder helpers and a few link internals that a server needs (credit accounting, drain echo), so they are
 * declared here once instead of scattering casts.
 */
import type { Connection, Delivery, Sender, Session, Typed } from 'rhea';
// Named imports on purpose: rhea exports a Container instance whose API sits on its prototype, which a
// compiled `import * as` (__importStar copies own properties only) would lose.
import { message, string_to_uuid, types, uuid_to_string } from 'rhea';

/** A decoded message as rhea represents it: header and properties fields flattened onto one object. */
export interface AmqpMessage {
  [field: string]: unknown;
  message_id?: unknown;
  ttl?: number;
  delivery_count?: number;
  delivery_annotations?: Record<string, unknown>;
  message_annotations?: Record<string, unknown>;
  application_properties?: Record<string, unknown>;
  body?: unknown;
}

export interface AmqpError {
  condition: string;
  description?: string;
  info?: Record<string, unknown>;
}

/** What Service Bus answers for a settle or renew with an unknown or expired lock token. */
export const LOCK_LOST = {
  condition: 'com.microsoft:message-lock-lost',
  description: 'The lock supplied is invalid. Either the lock expired, or the message has already been removed.',
} satisfies AmqpError;

interface Outcome {
  described(): unknown;
}

interface MessageCodec {
  encode(message: object): Buffer;
  decode(buffer: Buffer): AmqpMessage;
  accepted(): Outcome;
  released(): Outcome;
  rejected(fields?: { error?: AmqpError }): Outcome;
  modified(fields?: { delivery_failed?: boolean; undeliverable_here?: boolean }): Outcome;
}

interface TypeCodec {
  wrap_long(value: number): Typed;
  wrap_array(items: unknown[], typecode: number, descriptor?: unknown): Typed;
}

export const codec = message as unknown as MessageCodec;
export const amqpTypes = types as unknown as TypeCodec;

/** Server-side sender fields rhea keeps private but which a broker must drive (credit, drain echo, attach). */
export interface SenderInternals extends Sender {
  credit: number;
  delivery_count: number;
  _draining: boolean;
  issue_flow: boolean;
  _get_drain(): boolean;
  local: { attach: AttachFields };
  session: Session & { outgoing: { available(): number } };
  connection: Connection & { _register(): void };
}

interface AttachFields {
  source?: unknown;
  target?: unknown;
  snd_settle_mode?: number;
  rcv_settle_mode?: number;
  max_message_size?: number;
}

interface LinkWithAttach {
  local: { attach: AttachFields };
  remote: { attach?: AttachFields };
  set_source(fields: object): void;
  set_target(fields: object): void;
}

/** Service Bus Standard tier limit; the SDK sizes batches from the max-message-size of our attach. */
const MAX_MESSAGE_SIZE = 256 * 1024;

/**
 * rhea answers a peer's attach with empty terminus and default settle modes. Echo what the peer asked for:
 * a null source/target in the reply would mean "link refused", and the settle modes decide peek-lock
 * (unsettled, receiver settles second) versus receive-and-delete (pre-settled).
 */
export function acceptAttach(link: object): void {
  const l = link as LinkWithAttach;
  const remote = l.remote.attach ?? {};
  if (remote.source && typeof remote.source === 'object') l.set_source(remote.source);
  if (remote.target && typeof remote.target === 'object') l.set_target(remote.target);
  if (remote.snd_settle_mode !== undefined) l.local.attach.snd_settle_mode = remote.snd_settle_mode;
  if (remote.rcv_settle_mode !== undefined) l.local.attach.rcv_settle_mode = remote.rcv_settle_mode;
  l.local.attach.max_message_size = MAX_MESSAGE_SIZE;
}

export function addressOf(terminus: unknown): string | undefined {
  const address = (terminus as { address?: unknown } | undefined)?.address;
  return typeof address === 'string' && address.length > 0 ? address : undefined;
}

/**
 * The SDK renders a delivery tag as a lock token after swapping the first three GUID groups (the .NET byte
 * order Service Bus uses on the wire), and sends lock tokens back to $management in plain string order.
 * Swapping is its own inverse, so one function maps both ways.
 */
function dotNetGuidOrder(bytes: Buffer): Buffer {
  const swapped = Buffer.from(bytes);
  swapped.subarray(0, 4).swap32();
  swapped.subarray(4, 6).swap16();
  swapped.subarray(6, 8).swap16();
  return swapped;
}

export function deliveryTagFor(lockToken: string): Buffer {
  return dotNetGuidOrder(string_to_uuid(lockToken));
}

export function lockTokenFromTag(tag: Buffer | string): string | undefined {
  const bytes = typeof tag === 'string' ? Buffer.from(tag) : tag;
  return bytes.length === 16 ? uuid_to_string(dotNetGuidOrder(bytes)) : undefined;
}

export function lockTokenFromUuid(value: unknown): string | undefined {
  if (Buffer.isBuffer(value) && value.length === 16) return uuid_to_string(value);
  return typeof value === 'string' ? value.toLowerCase() : undefined;
}

/** Settle a delivery we sent, from our side; the peer is in rcv-settle-mode "second" and waits for this. */
export function settle(delivery: Delivery, outcome: Outcome): void {
  delivery.update(true, outcome.described());
  // rhea frees an outgoing slot only once both ends settled, but a receiver in mode "second" never reports
  // its own settlement; without this the session's delivery buffer fills up and sending stalls.
  (delivery as { remote_settled: boolean }).remote_settled = true;
}
