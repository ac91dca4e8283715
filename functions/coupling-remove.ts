import { app } from '@azure/functions';

import { removeCoupling } from '../shared/coupling/couplings';
import { endpoint, OPERATORS } from '../shared/http/endpoint';
import { accountParams } from '../shared/http/schemas';

const couplingRemove = endpoint({
  name: 'coupling-remove',
  method: 'DELETE',
  route: 'couplings/{account}',
  summary: 'Remove coupling: stop synchronizing the pair; matching will not couple them again (Sync.Operator)',
  access: OPERATORS,
  request: { params: accountParams },
  responses: { 204: { description: 'Removed' } },
  problems: [404],
  handle: async ({ params, principal, ctx }) => {
    await removeCoupling(ctx, params.account, principal.subject);
    return { status: 204 };
  },
});
app.http(couplingRemove.name, couplingRemove.trigger);
