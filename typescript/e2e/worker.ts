// A real Temporal TypeScript worker (@temporalio/worker) that runs the example onboarding workflow
// with EnvelopeCodec: every payload it sends to Temporal is sealed in envelope/v2, with the same
// keys as the Go examples. Settings from the environment: TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE,
// TASK_QUEUE, and the keyring's (e2e/keyring.ts).

import { NativeConnection, Worker } from '@temporalio/worker';
import { EnvelopeCodec } from '../src';
import * as activities from './activities';
import { keyringFromEnv } from './keyring';

async function main(): Promise<void> {
  const namespace = process.env.TEMPORAL_NAMESPACE || 'default';
  const taskQueue = process.env.TASK_QUEUE || 'envelope-onboarding';
  const keyring = await keyringFromEnv();
  const connection = await NativeConnection.connect({ address: process.env.TEMPORAL_ADDRESS || '127.0.0.1:7233' });
  const worker = await Worker.create({
    connection,
    namespace,
    taskQueue,
    workflowsPath: require.resolve('./workflows'),
    activities,
    dataConverter: { payloadCodecs: [new EnvelopeCodec(keyring, { namespace })] },
  });
  for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => worker.shutdown());
  console.log(`worker started task_queue=${taskQueue} namespace=${namespace}`);
  await worker.run();
  keyring.close?.();
  await connection.close();
  console.log('worker stopped');
}

main().catch((err) => {
  console.error('worker:', err);
  process.exit(1);
});
