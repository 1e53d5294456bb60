// The activity of the example onboarding workflow (examples/internal/onboarding), in TypeScript.

import type { Assessment, Customer } from './types';

/** CheckCustomer assesses a customer, as the Go activity of the same name does. */
export async function CheckCustomer(c: Customer): Promise<Assessment> {
  if (!c.Name || !c.Card) throw new Error(`customer ${c.ID}: name and card are required`);
  const digits = c.Card.replace(/[^0-9]/g, '');
  return {
    CustomerID: c.ID,
    Risk: c.Email.includes('@') ? 'low' : 'high',
    MaskedCard: digits.length <= 4 ? '*'.repeat(digits.length) : '**** ' + digits.slice(-4),
    Contact: `${c.Name} <${c.Email}>, ${c.Address}`,
  };
}
