/**
 * A stored value with the version it was read at. Writes that must not overwrite someone else's change carry
 * the version back: the store applies them only if the value is still at that version.
 */
export interface Versioned<T> {
  value: T;
  etag: string;
}

/**
 * A conditional write that lost a race: `changed`, the entity is no longer at the version it was read at;
 * `exists`, an insert found its key taken. Repositories throw it instead of a storage status code; a use case
 * reads again and decides again.
 */
export class WriteConflict extends Error {
  constructor(
    readonly reason: 'changed' | 'exists',
    message = reason === 'changed' ? 'The entity changed since it was read.' : 'The key is already taken.',
  ) {
    super(message);
    this.name = 'WriteConflict';
  }
}

export const isWriteConflict = (error: unknown): error is WriteConflict => error instanceof WriteConflict;
