export default async function globalTeardown(): Promise<void> {
  await (globalThis as { __aeDevServer?: { stop(): Promise<void> } }).__aeDevServer?.stop();
}
