import { freePort } from '../../test/support/node-processes.ts';

/** `count` distinct free loopback ports (a probe can hand out a port it handed out before). */
export async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}
