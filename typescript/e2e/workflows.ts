// The example onboarding workflow (examples/internal/onboarding) in TypeScript: same workflow
// type, activity, query and signal names, so the Go starter can start it on a TypeScript worker.

import { condition, defineQuery, defineSignal, proxyActivities, setHandler } from '@temporalio/workflow';
import type * as activities from './activities';
import type { Approval, Customer, Result, Status } from './types';

const { CheckCustomer } = proxyActivities<typeof activities>({ startToCloseTimeout: '30 seconds' });

export const statusQuery = defineQuery<Status>('status');
export const approveSignal = defineSignal<[Approval]>('approve');

/** Onboard checks the customer with an activity, waits for an approval signal and returns a welcome. */
export async function Onboard(c: Customer): Promise<Result> {
  const status: Status = { Stage: 'checking', Customer: c.Name };
  setHandler(statusQuery, () => status);
  let approval: Approval | undefined;
  setHandler(approveSignal, (ap) => {
    approval = ap;
  });
  const a = await CheckCustomer(c);
  status.Stage = 'awaiting-approval';
  await condition(() => approval !== undefined);
  status.Stage = 'approved';
  return {
    CustomerID: c.ID,
    Welcome: `Welcome aboard, ${c.Name}!`,
    Contact: a.Contact,
    MaskedCard: a.MaskedCard,
    Risk: a.Risk,
    ApprovedBy: approval!.By,
    Note: approval!.Note,
  };
}
