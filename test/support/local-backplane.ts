import type { Backplane, BackplaneMessage } from '../../shared/backplane.js';

/** Engines of one process sharing a registry: the bus is a map of handlers. Messages are copied as a real bus would. */
export class LocalBackplane implements Backplane {
  readonly published: Array<{ instanceId: string; message: BackplaneMessage }> = [];
  private readonly handlers = new Map<string, (message: BackplaneMessage) => void>();

  async publish(instanceId: string, message: BackplaneMessage): Promise<void> {
    this.published.push({ instanceId, message });
    const copy = JSON.parse(JSON.stringify(message)) as BackplaneMessage;
    queueMicrotask(() => this.handlers.get(instanceId)?.(copy));
  }

  /** To every engine, the sender's too: only registries with ownRoomIds send these, and the in-memory one has none. */
  async publishToAll(message: BackplaneMessage): Promise<void> {
    for (const instanceId of this.handlers.keys()) await this.publish(instanceId, message);
  }

  async subscribe(instanceId: string, handler: (message: BackplaneMessage) => void): Promise<void> {
    this.handlers.set(instanceId, handler);
  }

  async close(): Promise<void> {
    this.handlers.clear();
  }
}
