/**
 * Kafka consumers the bridge runs for clients (group subscriptions, and broadcast ones when the hub
 * is off): each costs broker connections, a group member and a fetch buffer, so they are counted
 * per connection and across the bridge. Hub subscribers share one reader and are not counted.
 */
export class ConsumerBudget {
  #inUse = 0;

  /** `max` 0: no limit. */
  constructor(readonly max: number) {}

  get inUse(): number {
    return this.#inUse;
  }

  tryTake(): boolean {
    if (this.max > 0 && this.#inUse >= this.max) return false;
    this.#inUse++;
    return true;
  }

  give(): void {
    if (this.#inUse > 0) this.#inUse--;
  }
}
