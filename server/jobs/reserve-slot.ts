/**
 * A job takes its place in admission when it is accepted, like a synchronous upload does, but
 * does not wait there: the answer is 202 at once, and the job waits for its slot in the
 * background. Admission.enter() settles synchronously when there is no place (BUSY,
 * SHUTTING_DOWN), so after one macrotask an early refusal has been seen and is thrown here.
 */
import type { Admission } from '../admission.js';

export async function reserveSlot(admission: Admission, signal: AbortSignal): Promise<{ slot: Promise<() => void> }> {
  const slot = admission.enter(signal);
  let refused: { reason: unknown } | null = null;
  slot.catch((reason: unknown) => {
    refused ??= { reason };
  });
  await new Promise((resolve) => setImmediate(resolve));
  if (refused) throw (refused as { reason: unknown }).reason;
  // Wrapped in an object: returning the promise itself would make the caller await the slot.
  return { slot };
}

/** Gives a reserved slot back when the job never started (upload refused, cancelled). */
export function giveBack(slot: Promise<() => void>): void {
  slot.then(
    (release) => release(),
    () => undefined,
  );
}
