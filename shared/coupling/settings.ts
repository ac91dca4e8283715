import { DomainError } from '../domain/errors';
import type { CouplingSettings, SyncContext } from '../operations/context';

/** The coupling settings, or a clear refusal when no Dataverse environment is configured. */
export function couplingSettings(ctx: SyncContext): CouplingSettings {
  if (!ctx.coupling) {
    throw new DomainError(
      'COUPLING_NOT_CONFIGURED',
      'Coupling with a CRM is not configured: set DATAVERSE_URL to a Dataverse environment.',
    );
  }
  return ctx.coupling;
}
