import type { ListedOperation, Operation } from '../domain/operation';

/** The API's shapes (API.md). One mapping, so list, detail, failures and exports cannot drift apart. */
export function toSummary(op: ListedOperation) {
  return {
    operationId: op.operationId,
    channel: op.channel,
    type: op.type,
    ...(op.customerAccount ? { customerAccount: op.customerAccount } : {}),
    ...(op.asyncCustomerAccount ? { asyncCustomerAccount: op.asyncCustomerAccount } : {}),
    operationTimestamp: op.operationTimestamp,
    status: op.status,
    changeDescription: op.changeDescription,
    ...(op.lastError ? { lastError: op.lastError } : {}),
  };
}

export function toDetail(op: Operation) {
  return {
    ...toSummary(op),
    attributes: op.attributes,
    ...(op.submitted ? { submitted: op.submitted } : {}),
    attempts: op.attempts,
    ...(op.waitingOn ? { waitingOn: op.waitingOn } : {}),
    ...(op.nextAttemptAt ? { nextAttemptAt: op.nextAttemptAt } : {}),
    ...(op.appliedAt ? { appliedAt: op.appliedAt } : {}),
    history: op.history,
  };
}
