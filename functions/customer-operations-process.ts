import { app } from '@azure/functions';

import { services } from '../shared/app';
import { handleDoorbell } from '../shared/operations/doorbell-handler';

/**
 * Queue trigger: one message = one customer's doorbell. Returning completes the message; throwing (storage
 * unreachable, say) abandons it, so the broker redelivers it and, past the queue's max delivery count,
 * dead-letters it. A message that is not a doorbell is recorded in DeadLetters and completed at once.
 */
app.serviceBusQueue('customer-operations-process', {
  connection: 'SERVICEBUS_CONNECTION',
  queueName: '%CUSTOMER_OPERATIONS_QUEUE%',
  handler: async (message, context) => {
    await handleDoorbell(await services().context(), message, {
      messageId: String(context.triggerMetadata?.messageId ?? ''),
      applicationProperties: context.triggerMetadata?.applicationProperties,
    });
  },
});
