// Opens the keyring the e2e programs use from the environment: ENVELOPE_KEYS_FILE, or Vault
// transit (VAULT_ADDR, VAULT_KEY, and VAULT_TOKEN or VAULT_ROLE_ID + VAULT_SECRET_ID).

import { FileKeyring, VaultTransitKeyring, type Keyring } from '../src';

export async function keyringFromEnv(env = process.env): Promise<Keyring & { close?: () => void }> {
  if (env.ENVELOPE_KEYS_FILE) {
    const kr = await FileKeyring.open(env.ENVELOPE_KEYS_FILE);
    const stop = kr.watch(10_000, (e) => console.error('keyring: key file reload failed; keeping the loaded keys:', e.message));
    return Object.assign(kr, { close: stop });
  }
  if (env.VAULT_ADDR) {
    return VaultTransitKeyring.create({
      address: env.VAULT_ADDR,
      keyName: env.VAULT_KEY ?? '',
      mount: env.VAULT_MOUNT,
      token: env.VAULT_TOKEN,
      appRole: env.VAULT_ROLE_ID ? { roleId: env.VAULT_ROLE_ID, secretId: env.VAULT_SECRET_ID ?? '' } : undefined,
    });
  }
  throw new Error('set ENVELOPE_KEYS_FILE, or VAULT_ADDR and VAULT_KEY');
}
